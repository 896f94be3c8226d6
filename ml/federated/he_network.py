"""CKKS and Paillier aggregation between processes: a client-held key, a server that only adds (layer: ml).

The in-process :class:`~ml.he_aggregators.CKKSAggregator` and
:class:`~ml.he_aggregators.PaillierAggregator` run here with the server and
every client in its own process, over the pinned TLS star of
:mod:`ml.federated.network`. The same aggregator object (``configure``d, never
``setup``: no role makes a key at start-up) does the encryption, the
homomorphic sum and the decryption; this module moves its bytes.

Who holds the secret key
------------------------
The clients, never the server. One client (the *dealer*: the lowest-id client
reached in the first round) makes the key pair and delivers the secret key to
the other clients **through the server**, which cannot read it:

* the dealer encrypts the secret key to each recipient j under
  ECDH(fresh ephemeral P-256 key, j's certificate key) -> HKDF-SHA256 ->
  AES-256-GCM, the additional data naming (run digest, round, dealer, j);
* and signs (run digest, round, dealer, j, the public key's hash, the ephemeral
  key, the ciphertext) with its own certificate key (ECDSA P-256).

Every certificate is pinned in the config that all roles share, so the server
can neither read the key nor substitute its own (it cannot sign as a client).
A client reached in a later round without the key (it joined late or restarted)
receives it the same way from the lowest-id reached key holder; if no key
holder is reached, the lowest reached client deals a fresh key. The server
keeps only the public key.

Protocol of one round (tags ``fl/<r>/...``)
-------------------------------------------
0. (only for clients without the key) ``he/deal`` to the dealer, its
   ``he/keys`` back, ``he/key`` to each recipient, its ``he/keyok`` back.
1. ``fit`` to each reached client; each trains, encrypts its upload under the
   shared public key and sends ``update``: the ciphertext and its signature over
   (run digest, round, client, key, ciphertext hash). The server refuses an
   upload that is malformed, larger than an honest one, under another key, or
   whose signature does not verify for *this* client and *this* round (a
   message replayed from an earlier round, or another client's): the client is
   a dropout of the round, and the reason is in the round's note.
2. The server adds the ciphertexts of the survivors (at least 2).
3. ``he/decrypt`` to the lowest-id survivor: the encrypted sum, the survivors,
   and their signed upload hashes. The decryptor checks that at least 2
   distinct clients signed uploads of this round under this key (so a replayed
   or forged request is refused), decrypts once per round (CKKS: rounded to
   ``2^-round_bits``, as in process), and returns the signed plaintext sum
   (``he/sum``). A decryptor that does not answer by ``round_timeout`` is
   replaced by the next survivor; when none answers the round is skipped.

Threat model
------------
Semi-honest server; clients are honest but may drop out at any step. The
server learns the sum of the survivors and who survived, nothing about an
individual update (IND-CPA of CKKS under RLWE, of Paillier under DCR). It
must not collude with any client: every client holds the secret key (as in
process). Transport: TLS 1.3 with pinned certificates on every link, so no
outsider reads or injects messages; the signatures make every client message
bound to its sender, round and key, which the server and the decryptor check.
Not covered: a *malicious* server can still hand the decryptor one client's
ciphertext labelled as the sum together with genuine signatures of other
uploads (the decryptor cannot recompute a sum it does not receive), and can
return a wrong model; Paillier's packed header carries the number of summands,
which the decryptor checks, CKKS's does not. The key delivery has no forward
secrecy: whoever records it and later steals a client's certificate key learns
the HE secret key.

Cost
----
Key delivery, once per client: the secret key (CKKS ``aggregate``: about
0.5 MB; Paillier 2048: 1 kB) and the public key (the CKKS public context, or
the Paillier modulus) plus 8 + 65 + 16 + ~72 bytes (dealer id, ephemeral
key, GCM tag, signature). Per round and client: the
upload of the in-process aggregator plus a 72-byte signature; the decryptor
also downloads the sum and 121 bytes per survivor (its id, upload hash and
signature row: 8 + 32 + 81), and uploads 8 d bytes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mpc.errors import EncodingError, IntegrityError, ParameterError

from ..aggregators import Aggregator
from ..he_aggregators import _HomomorphicAggregator

HE_AGGREGATORS = ("ckks", "paillier")
_LABEL = b"concilium-fl-he-v1\0"
_SIG_BYTES = 80      # an ECDSA P-256 DER signature is at most 72 bytes
_POINT_BYTES = 65    # an uncompressed P-256 point


def homomorphic(agg: Aggregator) -> _HomomorphicAggregator:
    """``agg`` as a homomorphic aggregator (ParameterError otherwise)."""
    if not isinstance(agg, _HomomorphicAggregator):
        raise ParameterError(f"an HE round needs the ckks or paillier aggregator, not {agg.name}")
    return agg


# -- signatures and key wrapping ------------------------------------------------------------
def statement(digest: bytes, step: str, r: int, sender: int, *parts: bytes | str | int) -> bytes:
    """SHA-256 of what a client signs: the run, the step, the round, the sender and ``parts``."""
    h = hashlib.sha256(_LABEL + digest + step.encode() + b"\0")
    h.update(int(r).to_bytes(8, "little", signed=True) + int(sender).to_bytes(8, "little", signed=True))
    for p in parts:
        b = p.encode() if isinstance(p, str) else int(p).to_bytes(8, "little", signed=True) \
            if isinstance(p, int) else bytes(p)
        h.update(len(b).to_bytes(8, "little") + b)
    return h.digest()


def _sign(key: ec.EllipticCurvePrivateKey, stmt: bytes) -> np.ndarray:
    return np.frombuffer(key.sign(stmt, ec.ECDSA(hashes.SHA256())), np.uint8).copy()


def _verify(der: bytes, stmt: bytes, sig: np.ndarray, what: str) -> None:
    """Raise IntegrityError naming ``what`` unless ``sig`` signs ``stmt`` under ``der``'s key."""
    pub = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or sig.dtype != np.uint8 or sig.ndim != 1 \
            or not 0 < sig.size <= _SIG_BYTES:
        raise IntegrityError(f"{what}: no valid signature")
    try:
        pub.verify(sig.tobytes(), stmt, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise IntegrityError(f"{what}: the signature does not verify for this sender, round and "
                             "key (a replayed, redirected or forged message)") from None


def _wrap_key(digest: bytes, r: int, dealer: int, recipient: int) -> tuple[bytes, bytes]:
    info = statement(digest, "wrap", r, dealer, recipient)
    return info, info[:12]


def _kdf(shared: bytes, info: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(shared))


def _blob(a: np.ndarray, what: str, limit: int) -> bytes:
    if a.dtype != np.uint8 or a.ndim != 1 or not 0 < a.size <= limit:
        raise EncodingError(f"{what}: expected at most {limit} bytes, got an array of shape "
                            f"{a.shape} and type {a.dtype}")
    return a.tobytes()


def _u8(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).copy()


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# -- the client's side ---------------------------------------------------------------------
@dataclass
class HEClient:
    """One client's HE state across rounds: its key (once dealt) and what it refused."""

    agg: _HomomorphicAggregator
    me: int
    digest: bytes
    certificates: dict[int, bytes]           # client id -> certificate DER (from the config)
    signing_key: ec.EllipticCurvePrivateKey
    key: Any = None
    key_id: str = ""
    public_blob: bytes = b""
    decrypted: set[int] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    last_upload: tuple[np.ndarray, ...] = ()

    @classmethod
    def load(cls, agg: Aggregator, me: int, digest: bytes, certificates: dict[int, bytes],
             key_path: str | Path) -> "HEClient":
        try:
            pem = Path(key_path).read_bytes()
        except OSError as exc:
            raise ParameterError(f"client {me}: cannot read its key {key_path}: {exc.strerror}") from None
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ParameterError(f"client {me}: {key_path} is not an EC (P-256) key")
        return cls(homomorphic(agg), me, digest, certificates, key)

    def _refuse(self, text: str) -> tuple:
        self.refused.append(text)
        return ()

    def deal(self, r: int, arrays: tuple[np.ndarray, ...]) -> tuple:
        """``he/deal``: (fresh flag, recipients...) -> public key, ephemeral key, per recipient
        (wrapped secret key, signature)."""
        a = arrays[0] if len(arrays) == 1 else np.zeros(0)
        if a.dtype.kind != "i" or a.ndim != 1 or a.size < 2:
            return self._refuse(f"round {r}: malformed key-deal request")
        fresh, recipients = bool(a[0]), [int(j) for j in a[1:]]
        if len(set(recipients)) != len(recipients) or any(
                j == self.me or j not in self.certificates for j in recipients):
            return self._refuse(f"round {r}: key-deal request names unknown recipients {recipients}")
        if fresh:
            self.key, self.public_blob = self.agg._keygen()
            self.key_id = self.agg._key_id(self.key)
        elif self.key is None:
            return self._refuse(f"round {r}: asked to deal a key it does not hold")
        secret = self.agg._export_secret(self.key)
        eph = ec.generate_private_key(ec.SECP256R1())
        point = eph.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        out: list[np.ndarray] = [_u8(self.public_blob), _u8(point)]
        for j in recipients:
            pub = x509.load_der_x509_certificate(self.certificates[j]).public_key()
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                return self._refuse(f"round {r}: client {j}'s certificate has no P-256 key to "
                                    "deliver the secret key to")
            info, nonce = _wrap_key(self.digest, r, self.me, j)
            wrapped = _kdf(eph.exchange(ec.ECDH(), pub), info).encrypt(nonce, secret, info)
            stmt = statement(self.digest, "key", r, self.me, j, _sha(self.public_blob), point,
                             _sha(wrapped))
            out += [_u8(wrapped), _sign(self.signing_key, stmt)]
        return tuple(out)

    def receive_key(self, r: int, arrays: tuple[np.ndarray, ...]) -> tuple:
        """``he/key``: (dealer, public key, ephemeral key, wrapped secret key, signature) ->
        the key id, signed."""
        try:
            if len(arrays) != 5 or arrays[0].shape != (1,) or arrays[0].dtype.kind != "i":
                raise EncodingError("malformed key delivery")
            dealer = int(arrays[0][0])
            if dealer == self.me or dealer not in self.certificates:
                raise EncodingError(f"key delivery names dealer {dealer}, not another client")
            public = _blob(arrays[1], "public key", 1 << 24)
            point = _blob(arrays[2], "ephemeral key", _POINT_BYTES)
            wrapped = _blob(arrays[3], "wrapped key", 1 << 26)
            stmt = statement(self.digest, "key", r, dealer, self.me, _sha(public), point, _sha(wrapped))
            _verify(self.certificates[dealer], stmt, arrays[4],
                    f"round {r}: key delivery from client {dealer}")
            eph = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            info, nonce = _wrap_key(self.digest, r, dealer, self.me)
            secret = _kdf(self.signing_key.exchange(ec.ECDH(), eph), info).decrypt(nonce, wrapped, info)
            key = self.agg._import_secret(secret)
            if self.agg._server_key(public).key_id != self.agg._key_id(key):
                raise EncodingError("the public key does not belong to the dealt secret key")
        except (EncodingError, IntegrityError, ParameterError, ValueError, InvalidTag) as exc:
            return self._refuse(f"round {r}: refused a key delivery: {exc or type(exc).__name__}")
        self.key, self.key_id, self.public_blob = key, self.agg._key_id(key), public
        return (_u8(self.key_id.encode()),
                _sign(self.signing_key, statement(self.digest, "keyok", r, self.me, self.key_id)))

    def upload(self, r: int, vector: np.ndarray, fault: str = "") -> tuple:
        """``update``: the encrypted vector and its signature (empty without a key)."""
        if self.key is None:
            return self._refuse(f"round {r}: no key to encrypt under; left the round")
        if fault == "replay" and self.last_upload:
            return self.last_upload   # test hook: last round's message again, under this round's tag
        blob = self.agg._encrypt(self.key, vector, 0)
        if fault == "garble":         # test hook: a malformed ciphertext, correctly signed
            blob = blob[:len(blob) // 2] + bytes(8) + blob[len(blob) // 2 + 8:]
        elif fault == "oversize":
            blob = blob + bytes(self.agg._max_upload_bytes(self.agg._server_key(self.public_blob)))
        sig = _sign(self.signing_key, statement(self.digest, "update", r, self.me, self.key_id,
                                                _sha(blob)))
        self.last_upload = (_u8(blob), sig)
        return self.last_upload

    def decrypt(self, r: int, arrays: tuple[np.ndarray, ...]) -> tuple:
        """``he/decrypt``: (sum, survivors, their upload hashes, their signatures) -> the sum, signed."""
        try:
            if self.key is None:
                raise EncodingError("no key")
            if r in self.decrypted:
                raise IntegrityError("a second decryption request in one round")
            if len(arrays) != 4:
                raise EncodingError("malformed decryption request")
            blob = _blob(arrays[0], "encrypted sum", 1 << 30)
            ids, hashes, sigs = arrays[1], arrays[2], arrays[3]
            n = ids.size
            if ids.dtype.kind != "i" or ids.shape != (n,) or hashes.shape != (n, 32) \
                    or sigs.shape != (n, _SIG_BYTES + 1) or hashes.dtype != np.uint8 \
                    or sigs.dtype != np.uint8:
                raise EncodingError("malformed decryption request")
            who = [int(i) for i in ids]
            if len(set(who)) != n or n < self.agg.min_survivors or \
                    any(i not in self.certificates for i in who):
                raise IntegrityError(f"the sum must be of at least {self.agg.min_survivors} "
                                     f"distinct clients, got {who}")
            for i, h, s in zip(who, hashes, sigs):
                _verify(self.certificates[i], statement(self.digest, "update", r, i, self.key_id,
                                                        h.tobytes()),
                        s[1:1 + int(s[0])], f"round {r}: client {i}'s upload in the sum")
            self._check_summands(blob, n)
            total = self.agg._decrypt(self.key, blob, n)
        except (EncodingError, IntegrityError, ParameterError) as exc:
            return self._refuse(f"round {r}: refused to decrypt: {exc}")
        self.decrypted.add(r)
        total = np.asarray(total, np.float64)
        sig = _sign(self.signing_key, statement(self.digest, "sum", r, self.me, self.key_id,
                                                _sha(blob), total.tobytes()))
        return total, sig

    def _check_summands(self, blob: bytes, n: int) -> None:
        if self.agg.name == "paillier":   # the packed header counts the summands
            from mpc.he.packing import PackedArray
            packed = PackedArray.load(self.key.public, blob)
            if packed.weight != n or packed.length != self.agg.dim:
                raise IntegrityError(f"the encrypted sum holds {packed.weight} summand(s) of "
                                     f"{packed.length} values, the request says {n} of {self.agg.dim}")


# -- the server's side ---------------------------------------------------------------------
def pack_signatures(sigs: list[np.ndarray]) -> np.ndarray:
    """Signatures as rows of (length, bytes padded to 80)."""
    out = np.zeros((len(sigs), _SIG_BYTES + 1), np.uint8)
    for i, s in enumerate(sigs):
        out[i, 0] = s.size
        out[i, 1:1 + s.size] = s
    return out


@dataclass
class HEServer:
    """The server's HE state across rounds: the public key and who holds its secret key."""

    agg: _HomomorphicAggregator
    digest: bytes
    certificates: dict[int, bytes]
    public_blob: bytes = b""
    key_id: str = ""
    pub: Any = None
    holders: dict[int, str] = field(default_factory=dict)
    max_upload: int = 0
    pending: list[int] = field(default_factory=list)   # key recipients of this round

    def distribute(self, link: Any, r: int, ids: list[int], timeouts: tuple[float, float],
                   notes: list[str]) -> None:
        """Step 0: deal the key to the reached clients ``ids`` that lack it (see the module)."""
        self.pending = []
        need = [k for k in ids if not self.key_id or self.holders.get(k) != self.key_id]
        if not need:
            return
        have = [k for k in ids if k not in need]
        fresh = not have
        dealer = min(have) if have else ids[0]
        recipients = [k for k in need if k != dealer]
        u = ids.index
        try:
            link.send(u(dealer), f"fl/{r}/he/deal", (np.array([int(fresh), *recipients], np.int64),))
        except Exception:  # noqa: BLE001 - a link gone since it was reached: the dealer is missing
            pass
        reply = link.recv(u(dealer), f"fl/{r}/he/keys", timeouts[0] if fresh else timeouts[1])
        if not reply or len(reply) != 2 + 2 * len(recipients):
            notes.append(f"key dealer client {dealer} did not deal the key")
            return
        try:
            public = _blob(reply[0], f"client {dealer}'s public key", 1 << 24)
            if fresh:
                pub = self.agg._server_key(public)
                self.public_blob, self.pub, self.key_id = public, pub, str(pub.key_id)
                self.holders = {dealer: self.key_id}
                self.max_upload = self.agg._max_upload_bytes(pub)
            elif public != self.public_blob:
                raise EncodingError("a key holder dealt another public key")
        except (EncodingError, IntegrityError, ParameterError) as exc:   # a corrupted key: a note
            notes.append(f"key dealer client {dealer}: {exc}")
            return
        for i, j in enumerate(recipients):
            try:
                link.send(u(j), f"fl/{r}/he/key", (np.array([dealer], np.int64), reply[0], reply[1],
                                                   reply[2 + 2 * i], reply[3 + 2 * i]))
            except Exception:  # noqa: BLE001 - gone: it has no key, and leaves the round
                pass
        self.pending = recipients

    def collect_acks(self, link: Any, r: int, ids: list[int], timeout: float,
                     notes: list[str]) -> None:
        """The recipients' ``he/keyok``: each confirms, signed, the key it now holds."""
        deadline = time.monotonic() + timeout
        for j in self.pending:
            m = link.recv(ids.index(j), f"fl/{r}/he/keyok", max(deadline - time.monotonic(), 1e-3))
            try:
                if not m or len(m) != 2:
                    raise EncodingError("no key acknowledgement")
                kid = _blob(m[0], "key id", 64).decode("ascii", "replace")
                _verify(self.certificates[j], statement(self.digest, "keyok", r, j, kid), m[1],
                        f"round {r}: client {j}'s key acknowledgement")
                if kid != self.key_id:
                    raise EncodingError(f"acknowledged key {kid}, not the run's {self.key_id}")
                self.holders[j] = kid
            except (EncodingError, IntegrityError) as exc:
                notes.append(f"client {j} has no key: {exc}")
        self.pending = []

    def check_upload(self, r: int, k: int, arrays: tuple[np.ndarray, ...]) -> tuple[Any, bytes, np.ndarray]:
        """Client ``k``'s ``update`` of round ``r``: (parsed ciphertext, its hash, its signature).

        Raises EncodingError (malformed, oversized, another key) or IntegrityError (a
        signature not made by client ``k`` for round ``r`` and this key: replayed or redirected).
        """
        where = f"round {r}: client {k}'s encrypted update"
        if len(arrays) != 2:
            raise EncodingError(f"{where}: expected a ciphertext and a signature, got "
                                f"{len(arrays)} array(s)")
        if self.holders.get(k) != self.key_id:
            raise IntegrityError(f"{where}: client {k} does not hold the run's key")
        blob = _blob(arrays[0], where, self.max_upload)
        digest = _sha(blob)
        _verify(self.certificates[k], statement(self.digest, "update", r, k, self.key_id, digest),
                arrays[1], where)
        try:
            loaded = self.agg._load(self.pub, blob)
        except (EncodingError, IntegrityError, ParameterError, ValueError) as exc:
            raise EncodingError(f"{where}: {exc}") from None
        return loaded, digest, arrays[1]

    def decrypt(self, link: Any, r: int, ids: list[int], survivors: list[int], blob: bytes,
                hashes: list[bytes], sigs: list[np.ndarray], timeout: float,
                notes: list[str]) -> np.ndarray | None:
        """Step 3: ask the survivors in order until one returns the signed plaintext sum."""
        request = (_u8(blob), np.array(survivors, np.int64),
                   np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), 32).copy(),
                   pack_signatures(sigs))
        for d in survivors:
            try:
                link.send(ids.index(d), f"fl/{r}/he/decrypt", request)
            except Exception:  # noqa: BLE001 - gone: try the next survivor
                notes.append(f"decryptor client {d} is gone")
                continue
            m = link.recv(ids.index(d), f"fl/{r}/he/sum", timeout)
            try:
                if not m or len(m) != 2 or m[0].shape != (self.agg.dim,) or m[0].dtype != np.float64 \
                        or not np.all(np.isfinite(m[0])):
                    raise EncodingError("no valid decrypted sum by the deadline")
                _verify(self.certificates[d], statement(self.digest, "sum", r, d, self.key_id,
                                                        _sha(blob), m[0].tobytes()), m[1],
                        f"round {r}: client {d}'s decrypted sum")
            except (EncodingError, IntegrityError) as exc:
                notes.append(f"decryptor client {d}: {exc}")
                continue
            return m[0]
        return None


def run_he_round(server: HEServer, link: Any, r: int, ids: list[int], send_fit: Callable[[], None],
                 fit_timeout: float, round_timeout: float) -> tuple[np.ndarray | None, list[int], list[str]]:
    """One HE round on the server (steps 0-3 of the module docstring).

    Returns (the plaintext sum or None, the survivors, notes naming every client
    refused or dropped and why).
    """
    notes: list[str] = []
    server.distribute(link, r, ids, (fit_timeout, round_timeout), notes)
    send_fit()
    server.collect_acks(link, r, ids, round_timeout, notes)
    deadline = time.monotonic() + fit_timeout
    loaded: dict[int, tuple[Any, bytes, np.ndarray]] = {}
    for u, k in enumerate(ids):
        m = link.recv(u, f"fl/{r}/update", max(deadline - time.monotonic(), 1e-3))
        if not m:
            notes.append(f"client {k} sent no update")
            continue
        try:
            loaded[k] = server.check_upload(r, k, m)
        except (EncodingError, IntegrityError) as exc:
            notes.append(f"rejected: {exc}")
    survivors = sorted(loaded)
    if len(survivors) < server.agg.min_survivors:
        notes.append(f"{len(survivors)} valid upload(s), {server.agg.name} needs "
                     f"{server.agg.min_survivors}")
        return None, survivors, notes
    blob = server.agg._sum([loaded[k][0] for k in survivors])
    total = server.decrypt(link, r, ids, survivors, blob, [loaded[k][1] for k in survivors],
                           [loaded[k][2] for k in survivors], round_timeout, notes)
    return total, survivors, notes


__all__ = ["HEClient", "HEServer", "HE_AGGREGATORS", "homomorphic", "pack_signatures",
           "run_he_round", "statement"]
