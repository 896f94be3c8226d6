"""Aggregators that add ciphertexts under a key the clients share: CKKS and packed Paillier (layer: ml).

The interface, the result type and :func:`~ml.aggregators.make_aggregator`
(names ``"ckks"`` and ``"paillier"``) are in :mod:`ml.aggregators`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

import numpy as np

from mpc.errors import ParameterError, ProtocolAbort

from .aggregators import AggregationResult, Aggregator, ServerMessage


class _HomomorphicAggregator(Aggregator):
    """Skeleton of the aggregators that add ciphertexts under a key the clients share.

    Protocol
    --------
    0. Setup (once): one client makes a key pair and gives the secret key to the
       other clients over pairwise authenticated, encrypted channels (simulated:
       the client roles share one key object); the server receives only the
       public (evaluation) key, as bytes.
    1. Each surviving client encrypts its vector and uploads the ciphertext.
       A client that drops out of the round uploads nothing.
    2. The server adds the ciphertexts it received.
    3. The server sends the encrypted sum to one surviving client (the lowest id),
       which decrypts it and returns the plaintext sum.

    Subclasses provide ``_keygen``, ``_server_key``, ``_encrypt``, ``_load``,
    ``_sum``, ``_decrypt``, ``_export_secret`` and ``_import_secret``; ciphertexts
    cross the boundary as bytes only. Over a network (:mod:`ml.federated.he_network`)
    the same methods run in the server and client processes: there step 0 is a
    signed, encrypted key delivery from one client to the others through the server.
    """

    min_survivors = 2

    def __init__(self) -> None:
        super().__init__()
        self._client_key: Any = None   # held by the client roles only
        self._server_pub: Any = None   # the server's public (evaluation) key
        self.setup_bytes = 0

    def setup(self, n_clients: int, dim: int, value_bound: float) -> None:
        super().setup(n_clients, dim, value_bound)
        self._client_key, blob = self._keygen()
        self.setup_bytes = len(blob)
        self._server_pub = self._server_key(blob)  # the server sees only these bytes

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        ids, drop, vecs = self._check(vectors, dropped)
        survivors = [i for i in ids if i not in drop]
        if len(survivors) < self.min_survivors:
            raise ProtocolAbort(f"{self.name}: {len(survivors)} client(s) survived, at least "
                                f"{self.min_survivors} needed so that the sum hides each input")
        t0 = time.perf_counter()
        uploads = {i: self._encrypt(self._client_key, vecs[i], len(survivors))
                   for i in survivors}
        t1 = time.perf_counter()
        transcript = [ServerMessage(i, "ciphertext", blob, len(blob)) for i, blob in uploads.items()]
        encrypted_sum = self._add(self._server_pub, list(uploads.values()))
        t2 = time.perf_counter()
        decryptor = survivors[0]
        total = self._decrypt(self._client_key, encrypted_sum, len(survivors))
        t3 = time.perf_counter()
        transcript.append(ServerMessage(decryptor, "decrypted sum", total.copy(), total.nbytes))
        up = sum(len(b) for b in uploads.values())
        # per client: its upload and the model (8 d); the decryptor also moves the sum
        per_client = (up + len(encrypted_sum) + total.nbytes) / len(survivors) + 8 * self.dim
        return AggregationResult(
            total, survivors, bytes_per_client=per_client, server_seconds=t2 - t1,
            client_seconds=(t1 - t0) / len(survivors) + (t3 - t2) / len(survivors),
            transcript=transcript,
            server_state={"public_key": self._server_pub, "encrypted_sum": encrypted_sum,
                          "total": total})

    def _keygen(self) -> tuple[Any, bytes]:
        raise NotImplementedError

    def _server_key(self, blob: bytes) -> Any:
        raise NotImplementedError

    def _encrypt(self, key: Any, vector: np.ndarray, n_summands: int) -> bytes:
        raise NotImplementedError

    def _add(self, pub: Any, blobs: list[bytes]) -> bytes:
        return self._sum([self._load(pub, b) for b in blobs])

    def _load(self, pub: Any, blob: bytes) -> Any:
        """One client's upload, parsed and checked against this round's layout
        (:class:`~mpc.errors.EncodingError` or ParameterError when it does not fit)."""
        raise NotImplementedError

    def _sum(self, loaded: list[Any]) -> bytes:
        """The serialized homomorphic sum of loaded ciphertexts (both schemes add with ``+``)."""
        total = loaded[0]
        for v in loaded[1:]:
            total = total + v
        return total.serialize()

    def _decrypt(self, key: Any, blob: bytes, n_summands: int) -> np.ndarray:
        raise NotImplementedError

    def _export_secret(self, key: Any) -> bytes:
        """The secret key as bytes, for another key holder only."""
        raise NotImplementedError

    def _import_secret(self, blob: bytes) -> Any:
        raise NotImplementedError

    def _key_id(self, key: Any) -> str:
        """The public key's fingerprint, from a secret key (a public key has ``key_id``)."""
        raise NotImplementedError

    def _max_upload_bytes(self, pub: Any) -> int:
        """The largest serialized upload of ``dim`` values a client can honestly send."""
        raise NotImplementedError


class CKKSAggregator(_HomomorphicAggregator):
    """Sum of CKKS-encrypted vectors; the server holds only the public context.

    The clients share one CKKS secret key (:class:`mpc.he.ckks.SecretContext`,
    preset ``"aggregate"`` when it fits: N = 4096, primes [54, 54], scale 2^40,
    2048 slots per ciphertext); the server loads the serialized
    :class:`~mpc.he.ckks.PublicContext`, which has no secret key, and adds the
    ciphertexts. The steps are those of the homomorphic skeleton above. Without
    an explicit ``preset`` the ``"linear"`` preset (N = 8192, |sum| < 2^19) is
    used when a sum could exceed what ``"aggregate"`` decrypts (|sum| < 2^13).

    Security
    --------
    Semi-honest server, IND-CPA under RLWE (128-bit parameters, checked by
    :mod:`mpc.he.params`). Every client holds the secret key, so the server must
    not collude with any client; a client that eavesdrops on another client's
    upload can decrypt it (uploads must travel over channels the other clients
    cannot read). The server learns the sum of the survivors (at least 2). CKKS
    decryptions carry noise that can leak about the key (Li and Micciancio,
    Eurocrypt 2021): the decrypting client rounds the sum to ``2^-round_bits``
    before returning it, which removes the noise bits below that step. This
    is a mitigation, not a proof: the noise grows with the number of
    summands (measured: about 2^-27 for 4 clients, 2^-26 for 40 under
    ``"aggregate"``; up to 2^-23 for 500 clients under ``"linear"``), so the
    default step is 2^-24 for ``"aggregate"`` and 2^-20 for ``"linear"``, and
    ``round_bits`` above 26 (a step inside the noise) is refused. Noise
    flooding, which would be rigorous, is not implemented. No integrity: a
    malicious server can return a wrong model.

    Cost
    ----
    One round trip. Per client: ceil(d / (N/2)) ciphertexts up (about 62 kB
    each at N = 4096) and the model (8 d bytes) down; the decrypting client also
    downloads the sum's ciphertexts and uploads 8 d bytes. Setup: the public
    context once (about 0.25 MB at N = 4096). Error: half the rounding step
    plus the noise (about 2^-25 absolute by default under ``"aggregate"``,
    2^-21 under ``"linear"``).
    """

    name = "ckks"

    DEFAULT_ROUND_BITS = {"aggregate": 24, "linear": 20}
    MAX_ROUND_BITS = 26

    def __init__(self, preset: str | None = None, round_bits: int | None = None) -> None:
        super().__init__()
        from mpc.he import ckks  # noqa: F401 -- fail early if mpc.he is missing
        if round_bits is not None and (not isinstance(round_bits, (int, np.integer))
                                       or not 0 <= round_bits <= self.MAX_ROUND_BITS):
            raise ParameterError(
                f"round_bits must be an integer in [0, {self.MAX_ROUND_BITS}], got {round_bits!r}: a finer "
                "step keeps CKKS decryption noise in the returned sum (it leaks about the key)")
        self.preset, self.requested_round_bits = preset, round_bits
        self.round_bits = 24 if round_bits is None else int(round_bits)

    def configure(self, n_clients: int, dim: int, value_bound: float) -> None:
        from mpc.he.params import resolve
        peak = n_clients * value_bound  # largest |entry| of any sum
        presets = (self.preset,) if self.preset else ("aggregate", "linear")
        for name in presets:
            if peak < resolve(name).max_abs_value:
                self.chosen_preset = name
                if self.requested_round_bits is None:
                    self.round_bits = self.DEFAULT_ROUND_BITS.get(name, 20)
                break
        else:
            raise ParameterError(
                f"ckks: a sum of {n_clients} values of magnitude {value_bound:g} could exceed "
                f"what preset(s) {', '.join(presets)} decrypt "
                f"(|x| < {resolve(presets[-1]).max_abs_value:g}); lower the value bound")
        super().configure(n_clients, dim, value_bound)

    def _keygen(self) -> tuple[Any, bytes]:
        from mpc.he.ckks import SecretContext
        key = SecretContext.create(self.chosen_preset)
        return key, key.public().serialize()

    def _server_key(self, blob: bytes) -> Any:
        from mpc.he.ckks import PublicContext
        return PublicContext.load(blob)

    def _encrypt(self, key: Any, vector: np.ndarray, n_summands: int) -> bytes:
        return key.public().encrypt(vector).serialize()

    def _load(self, pub: Any, blob: bytes) -> Any:
        from mpc.errors import EncodingError
        vec = pub.load_vector(blob)
        if len(vec) != self.dim or vec.n_ciphertexts != -(-self.dim // pub.slots):
            raise EncodingError(f"ckks: a vector of {len(vec)} values in {vec.n_ciphertexts} "
                                f"ciphertext(s), expected {self.dim}")
        return vec

    def _export_secret(self, key: Any) -> bytes:
        return key.serialize_with_secret_key()

    def _key_id(self, key: Any) -> str:
        return str(key.public().key_id)

    def _max_upload_bytes(self, pub: Any) -> int:
        p = pub.params
        chunks = -(-self.dim // pub.slots)
        return chunks * (2 * p.poly_modulus_degree * 8 * len(p.coeff_mod_bit_sizes) + 4104) + 4096

    def _import_secret(self, blob: bytes) -> Any:
        from mpc.he.ckks import SecretContext
        key = SecretContext.load(blob)
        if key.params.name != self.chosen_preset:
            from mpc.errors import EncodingError
            raise EncodingError(f"ckks: the dealt key uses preset {key.params.name!r}, this run "
                                f"{self.chosen_preset!r}")
        return key

    def _decrypt(self, key: Any, blob: bytes, n_summands: int) -> np.ndarray:
        values = key.decrypt(key.public().load_vector(blob))
        step = 2.0 ** -self.round_bits
        return np.rint(values / step) * step


class PaillierAggregator(_HomomorphicAggregator):
    """Sum of packed Paillier ciphertexts; the server holds only the public key.

    The clients share one Paillier key pair (:func:`mpc.he.paillier.keygen`,
    2048 bits); the server loads the serialized public key and multiplies the
    ciphertexts (adds the plaintexts). Each vector is encoded with
    ``frac_bits`` fractional bits and packed many values per plaintext
    (:mod:`mpc.he.packing`) with headroom for a sum of ``n_clients`` vectors,
    so the sum is exact up to each value's rounding (2^-(frac_bits+1)). The
    steps are those of the homomorphic skeleton above.

    Security
    --------
    Semi-honest server, IND-CPA under the decisional composite residuosity
    assumption (keys under 2048 bits refused). As with CKKS every client holds
    the secret key: the server must not collude with any client, and uploads
    must travel over channels other clients cannot read. The server learns the
    sum of the survivors (at least 2). Decryption is exact, so no noise leaks.
    Ciphertexts are malleable: a malicious server can return a wrong sum.

    Cost
    ----
    One round trip. Per client ceil(d / s) ciphertexts of 512 bytes up, with
    s = 2047 // (value_bits + ceil(log2 n)) values per ciphertext (56 at
    frac_bits 24, |x| <= 10, n = 100), and the 8 d-byte model down; the
    decrypting client also downloads the sum's ciphertexts. Client: one
    fixed-base exponentiation per ciphertext (table precomputed once, ~0.2 s,
    5.6 MB); server: one product mod n^2 per ciphertext and client.
    """

    name = "paillier"

    def __init__(self, key_bits: int = 2048, frac_bits: int = 24,
                 insecure_for_testing: bool = False) -> None:
        super().__init__()
        from mpc.he import packing  # noqa: F401 -- fail early if mpc.he is missing
        self.key_bits, self.frac_bits = key_bits, frac_bits
        self.insecure_for_testing = insecure_for_testing

    def configure(self, n_clients: int, dim: int, value_bound: float) -> None:
        from mpc.he.packing import Packing
        value_bits = math.ceil(math.log2(value_bound * 2.0 ** self.frac_bits + 1)) + 1
        self.packing = Packing(value_bits, max_additions=n_clients, frac_bits=self.frac_bits)
        super().configure(n_clients, dim, value_bound)

    def _keygen(self) -> tuple[Any, bytes]:
        from mpc.he.paillier import keygen
        pair = keygen(self.key_bits, insecure_for_testing=self.insecure_for_testing)
        pair.public.precompute()  # fixed-base table for the clients' encryptions
        return pair, pair.public.serialize()

    def _server_key(self, blob: bytes) -> Any:
        from mpc.he.paillier import PaillierPublicKey
        return PaillierPublicKey.load(blob, insecure_for_testing=self.insecure_for_testing)

    def _encrypt(self, key: Any, vector: np.ndarray, n_summands: int) -> bytes:
        from mpc.he.packing import encrypt_packed
        return encrypt_packed(key.public, vector, self.packing).serialize()

    def _load(self, pub: Any, blob: bytes) -> Any:
        from mpc.errors import EncodingError
        from mpc.he.packing import PackedArray
        packed = PackedArray.load(pub, blob)
        if packed.packing != self.packing or packed.length != self.dim or packed.weight != 1:
            raise EncodingError(f"paillier: a packed array of {packed.length} values, weight "
                                f"{packed.weight}, packing {packed.packing}; expected {self.dim} "
                                f"values, weight 1, {self.packing}")
        return packed

    def _export_secret(self, key: Any) -> bytes:
        return key.secret.serialize()

    def _key_id(self, key: Any) -> str:
        return str(key.public.key_id)

    def _max_upload_bytes(self, pub: Any) -> int:
        width = (pub.n_squared.bit_length() + 7) // 8
        return -(-self.dim // self.packing.slots(pub)) * width + 4096

    def _import_secret(self, blob: bytes) -> Any:
        from mpc.he.paillier import PaillierKeypair, PaillierSecretKey
        secret = PaillierSecretKey.load(blob, insecure_for_testing=self.insecure_for_testing)
        if secret.public.bits < self.key_bits:
            from mpc.errors import EncodingError
            raise EncodingError(f"paillier: the dealt key has {secret.public.bits} bits, this run "
                                f"asks for {self.key_bits}")
        secret.public.precompute()
        return PaillierKeypair(secret.public, secret)

    def _decrypt(self, key: Any, blob: bytes, n_summands: int) -> np.ndarray:
        from mpc.he.packing import PackedArray, decrypt_packed
        return decrypt_packed(key.secret, PackedArray.load(key.public, blob))
