"""The SecAgg client: one method per round, state in the object (layer: protocols).

A :class:`Client` holds one input vector in Z_2^k and answers the server's four
requests in order; any other order raises :class:`~mpc.errors.ProtocolError`.
A client that finds the server's message malformed or unsafe raises
:class:`~mpc.errors.ProtocolAbort` and takes no further part (it is dropped).

Protocol (client u, Bonawitz et al. 2017, Fig. 4; neighbours N(u) for SecAgg+)
------------------------------------------------------------------------------
0. ``advertise_keys``: draw X25519 pairs (c_u^SK, c_u^PK), (s_u^SK, s_u^PK);
   send both public keys.
1. ``share_keys(ids, keys)``: receive the public keys of the live neighbours
   (at least t - 1 of them); draw the self-mask seed b_u; Shamir-share b_u and
   s_u^SK t-of-h among the h = |N(u)| + 1 holders; encrypt each neighbour's
   share with ChaCha20-Poly1305 under a key derived from DH(c_u^SK, c_v^PK).
2. ``masked_input(frm, ct)``: decrypt and keep the shares of the neighbours
   U2 that shared; send ``y_u = x_u + PRG(b_u) + sum_{v in U2} D_uv PRG(s_uv)``
   mod 2^k with ``D_uv = +1`` if u < v else -1 and s_uv derived from
   DH(s_u^SK, s_v^PK).
3. ``unmask(live, dropped)``: refuse if any client is named in both lists (the
   double-masking rule) or outside U2, or if fewer than t clients are listed
   alive (|U3| >= t, Bonawitz et al. Fig. 4 round 3; here U3 among this
   client's shareholders); else reveal the b-shares of ``live`` and the
   s^SK-shares of ``dropped``. Answers at most once.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from mpc.errors import IntegrityError, ParameterError, ProtocolAbort, ProtocolError
from mpc.rand import PRG, random_seed

from . import messages as msg
from .config import SecAggConfig
from .crypto import (KeyPair, MaskExpander, agree, decrypt_share, encrypt_share,
                     encryption_key, mask_seed)
from .sharing import ELEMS, SEED_ELEMS, VandermondeCache, pack_secrets, share_secrets

_STAGES = ("advertise_keys", "share_keys", "masked_input", "unmask", "done")


class Client:
    """Client ``cid`` (0-based) of a SecAgg session holding ``value`` in Z_2^k.

    Parameters
    ----------
    cid:
        This client's id in ``[0, config.n)``.
    config:
        The session's public parameters.
    value:
        Input vector of ``config.dim`` integers in ``[0, 2^k)``.
    vandermonde:
        Optional cache of public Vandermonde matrices (simulation of many clients).
    dh_cache:
        Optional dict shared by simulated clients so that the X25519 agreement of a
        pair is computed once (both ends derive the same value). Never on a
        real deployment: it would hold secrets of several clients.
    """

    def __init__(self, cid: int, config: SecAggConfig, value: np.ndarray, *,
                 vandermonde: VandermondeCache | None = None,
                 dh_cache: dict | None = None) -> None:
        if not 0 <= cid < config.n:
            raise ParameterError(f"client id {cid} out of range [0, {config.n})")
        arr = np.asarray(value)
        if arr.shape != (config.dim,) or arr.dtype.kind not in "ui":
            raise ParameterError(f"client {cid}: the input must be {config.dim} integers, "
                                 f"got {arr.dtype} {arr.shape}")
        if arr.size and (arr.min() < 0 or int(arr.max()) > config.modulus_mask):
            raise ParameterError(f"client {cid}: inputs must lie in [0, 2^{config.bits})")
        self.id = cid
        self.config = config
        self.value = arr.astype(config.dtype)
        self._vandermonde = vandermonde
        self._dh_cache = dh_cache
        self._stage = 0
        self._c = KeyPair()
        self._s = KeyPair()
        self._neighbours = np.empty(0, dtype=np.int64)
        self._c_pk: dict[int, bytes] = {}
        self._s_pk: dict[int, bytes] = {}
        self._enc: dict[int, bytes] = {}
        self._seed = b""
        self._shares: dict[int, np.ndarray] = {}  # holder-of shares by owner id (incl. self)
        self.u2 = np.empty(0, dtype=np.int64)  # neighbours that shared keys (U2 ∩ N(u))
        self.mask_seconds = 0.0
        self.mask_cpu_seconds = 0.0

    # -- helpers ------------------------------------------------------------------
    def _enter(self, stage: str) -> None:
        expected = _STAGES[self._stage]
        if stage != expected:
            raise ProtocolError(f"client {self.id}: asked for {stage!r} while at {expected!r}")
        self._stage += 1

    def _what(self, name: str) -> str:
        return f"client {self.id}, round {name!r}"

    def _agree(self, kind: str, secret: bytes, v: int, pk: bytes) -> bytes:
        if self._dh_cache is None:
            return agree(secret, pk)
        key = (kind, min(self.id, v), max(self.id, v))
        shared = self._dh_cache.get(key)
        if shared is None:
            shared = self._dh_cache[key] = agree(secret, pk)
        return shared

    # -- round 0 ---------------------------------------------------------------------
    def advertise_keys(self) -> tuple[np.ndarray]:
        """Round 0: this client's two public keys, uint8 (2, 32)."""
        self._enter("advertise_keys")
        return (np.frombuffer(self._c.public + self._s.public, np.uint8).reshape(2, 32).copy(),)

    # -- round 1 ---------------------------------------------------------------------
    def share_keys(self, ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Round 1: encrypted Shamir shares of (b_u, s_u^SK) for each listed neighbour."""
        self._enter("share_keys")
        what = self._what("advertise")
        ids, keys = msg.check((ids, keys), msg.ADVERTISE_DOWN, what)
        msg.same_length(what, (ids, keys))
        # compared pairwise, not by np.diff: a difference of int64 ids can wrap
        if ids.size and (np.any(ids[1:] <= ids[:-1]) or ids[0] < 0 or ids[-1] >= self.config.n
                         or np.any(ids == self.id)):
            raise ProtocolAbort(f"{what}: neighbour ids must be sorted, unique, other clients")
        t = self.config.threshold
        if len(ids) + 1 < t:
            raise ProtocolAbort(f"{what}: only {len(ids)} live neighbours, fewer than t - 1 = {t - 1}")
        if len(ids) > self.config.degree:
            raise ProtocolAbort(f"{what}: {len(ids)} neighbours exceed the degree {self.config.degree}")
        raw = [bytes(k) for k in keys.reshape(len(ids), 64)]
        seen = {self._c.public + self._s.public}
        for v, k in zip(ids.tolist(), raw):
            if k in seen or k[:32] == k[32:]:  # low-order keys fail at agreement (IntegrityError)
                raise ProtocolAbort(f"{what}: client {v}'s public keys are repeated")
            seen.add(k)
            self._c_pk[v], self._s_pk[v] = k[:32], k[32:]
        self._neighbours = ids.astype(np.int64)
        self._seed = random_seed()
        holders = np.sort(np.append(self._neighbours, self.id))
        shares = share_secrets(pack_secrets(self._seed, self._s.secret), holders, t, PRG.fresh(),
                               self._vandermonde)
        session = self.config.session
        cts = np.empty((len(ids), msg.CT_BYTES), dtype=np.uint8)
        row = 0
        for pos, h in enumerate(holders.tolist()):
            if h == self.id:
                self._shares[h] = shares[pos]
                continue
            try:
                shared = self._agree("c", self._c.secret, h, self._c_pk[h])
            except IntegrityError:
                raise ProtocolAbort(f"{what}: client {h}'s public key is invalid") from None
            key = encryption_key(shared, session, self.id, h)
            self._enc[h] = key
            plain = struct.pack("<II", self.id, h) + shares[pos].tobytes()
            cts[row] = np.frombuffer(encrypt_share(key, session, self.id, h, plain), np.uint8)
            row += 1
        return self._neighbours.copy(), cts

    # -- round 2 ---------------------------------------------------------------------
    def masked_input(self, frm: np.ndarray, ct: np.ndarray, *,
                     sim_peers: np.ndarray | None = None,
                     sim_pad: np.ndarray | None = None) -> tuple[np.ndarray]:
        """Round 2: store the received shares; return the masked input y_u.

        ``sim_peers`` and ``sim_pad`` are a simulation shortcut for benchmarks
        only (see :func:`protocols.secagg.simulate`): pairwise masks are added for
        the peers in ``sim_peers`` alone and ``sim_pad`` is added instead of the
        others, which the simulator makes sum to zero exactly like the masks of
        surviving pairs do. A real client never receives them.
        """
        self._enter("masked_input")
        what = self._what("share")
        frm, ct = msg.check((frm, ct), msg.SHARE_DOWN, what)
        msg.same_length(what, (frm, ct))
        if frm.size and (np.any(np.diff(frm) <= 0) or not np.all(np.isin(frm, self._neighbours))):
            raise ProtocolAbort(f"{what}: senders must be sorted, unique neighbours")
        t = self.config.threshold
        if len(frm) + 1 < t:
            raise ProtocolAbort(f"{what}: only {len(frm)} neighbours shared keys, fewer than t - 1")
        session = self.config.session
        for v, c in zip(frm.tolist(), ct):
            try:
                plain = decrypt_share(self._enc[v], session, v, self.id, c.tobytes())
            except IntegrityError:
                raise ProtocolAbort(f"{what}: the share from client {v} failed authentication") from None
            if len(plain) != msg.PLAIN_BYTES or struct.unpack("<II", plain[:8]) != (v, self.id):
                raise ProtocolAbort(f"{what}: the share from client {v} is mislabelled")
            self._shares[v] = np.frombuffer(plain[8:], np.uint32).copy()
        self.u2 = frm.astype(np.int64)
        peers = self.u2 if sim_peers is None else np.asarray(sim_peers, dtype=np.int64)
        return (self.compute_masked(peers, sim_pad),)

    def compute_masked(self, peers: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
        """``x_u + PRG(b_u) + sum_{v in peers} D_uv PRG(s_uv) (+ pad) mod 2^k``; sets mask_seconds and mask_cpu_seconds."""
        t0, c0 = time.perf_counter(), time.thread_time()
        session = self.config.session
        y = self.value.copy()
        expander = MaskExpander(self.config.dim, self.config.dtype)
        expander.add(y, self._seed)
        for v in np.asarray(peers).tolist():
            try:
                shared = self._agree("s", self._s.secret, v, self._s_pk[v])
            except IntegrityError:
                raise ProtocolAbort(f"client {self.id}: client {v}'s mask key is invalid") from None
            expander.add(y, mask_seed(shared, session, self.id, v), 1 if self.id < v else -1)
        if pad is not None:
            y += pad.astype(y.dtype)
        if self.config.bits < 8 * y.itemsize:
            y &= y.dtype.type(self.config.modulus_mask)
        self.mask_seconds = time.perf_counter() - t0
        self.mask_cpu_seconds = time.thread_time() - c0
        return y

    # -- round 3 ---------------------------------------------------------------------
    def unmask(self, live: np.ndarray, dropped: np.ndarray) -> tuple[np.ndarray, ...]:
        """Round 3: seed shares of ``live`` clients, key shares of ``dropped`` ones.

        Raises
        ------
        ProtocolAbort
            The request names a client in both lists (it would unmask that
            client's input), names this client as dropped, names clients
            whose shares this client does not hold, or lists fewer than t
            clients alive (an honest server then cannot rebuild this
            client's own seed, so only a lying one would ask).
        """
        self._enter("unmask")
        what = self._what("unmask")     # the round in which this client refuses
        live, dropped = msg.check((live, dropped), msg.REQUEST_DOWN, what)
        both = np.intersect1d(live, dropped)
        if both.size:
            raise ProtocolAbort(f"{what}: refused: the server asked for both the seed share and "
                                f"the key share of client(s) {both.tolist()[:5]}")
        for ids in (live, dropped):
            if ids.size and np.any(np.diff(ids) <= 0):
                raise ProtocolAbort(f"{what}: refused: request ids must be sorted and unique")
        holders = np.append(self.u2, self.id)
        if not (np.all(np.isin(live, holders)) and np.all(np.isin(dropped, self.u2))):
            raise ProtocolAbort(f"{what}: refused: the request names clients outside this "
                                f"client's share holdings")
        if self.id not in live.tolist():
            raise ProtocolAbort(f"{what}: refused: this client is alive but not listed as live")
        if len(live) < self.config.threshold:
            raise ProtocolAbort(f"{what}: refused: {len(live)} clients listed alive, fewer than "
                                f"t = {self.config.threshold}")
        seed = np.array([self._shares[v][:SEED_ELEMS] for v in live.tolist()],
                        dtype=np.uint32).reshape(-1, SEED_ELEMS)
        key = np.array([self._shares[v][SEED_ELEMS:ELEMS] for v in dropped.tolist()],
                       dtype=np.uint32).reshape(-1, ELEMS - SEED_ELEMS)
        return live.copy(), seed, dropped.copy(), key
