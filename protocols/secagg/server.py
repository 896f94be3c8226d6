"""The SecAgg server: one method per round over all clients' messages at once (layer: protocols).

Each method takes ``{client id: message}`` for the clients that answered (a
missing client has dropped) and returns ``{client id: reply}`` for the next
round. A message that fails its schema or the round's checks makes its sender
dropped (``Server.dropped`` records why). Fewer than t clients left at any
round raises :class:`~mpc.errors.ProtocolAbort`.

Protocol (server, Bonawitz et al. 2017 Fig. 4; Bell et al. 2020 for SecAgg+)
-----------------------------------------------------------------------------
0. ``collect_keys``: U1 = clients with valid, distinct key pairs; draw the
   neighbour graph (complete for SecAgg, random k-regular for SecAgg+); send
   each client the public keys of its neighbours in U1.
1. ``route_shares``: U2 = clients that sent one ciphertext per neighbour;
   forward each ciphertext to its recipient (the server cannot read them).
2. ``collect_masked``: U3 = clients that sent a masked input; add them up;
   ask each u in U3 for the seed shares of the live holders-of (U3) and the
   key shares of the dropped ones (U2 \\ U3): never both for one client.
3. ``unmask``: U4 = clients that answered exactly what was asked; rebuild
   each b_u (u in U3) and each s_v^SK (v in U2 \\ U3) from t shares, check
   s_v^SK against s_v^PK, and remove the self masks and the pairwise masks
   between dropped and surviving clients. Output ``sum_{u in U3} x_u mod 2^k``.

Cost (server, complete graph): |U3| + |U2 \\ U3| * |U3| mask expansions of d
elements, |U2 \\ U3| * |U3| X25519 agreements, one modular matrix product per
group of secrets with the same responders. SecAgg+ replaces |U3| by ~k.
"""

from __future__ import annotations

import time

import numpy as np

from mpc.errors import IntegrityError, ProtocolAbort, ProtocolError
from mpc.rand import PRG

from . import messages as msg
from .config import SecAggConfig
from .crypto import MaskExpander, agree, mask_seed, public_key, valid_public_key
from .graph import Graph, harary
from .sharing import KEY_ELEMS, PRIME, SEED_ELEMS, decode_keys, decode_seeds, reconstruct

Messages = dict[int, tuple[np.ndarray, ...]]


class Server:
    """The aggregation server of one session.

    Attributes
    ----------
    dropped:
        ``{client: reason}`` for every client that left (missing or malformed).
    survivors:
        U3 after round 2: the clients whose inputs the sum contains.
    seconds, cpu_seconds:
        Wall-clock and CPU (thread) time spent in each round's method.
    """

    def __init__(self, config: SecAggConfig, prg: PRG | None = None) -> None:
        self.config = config
        self._prg = prg or PRG.fresh()
        self._stage = 0
        self.dropped: dict[int, str] = {}
        self.seconds: dict[str, float] = {}  # wall clock per round
        self.cpu_seconds: dict[str, float] = {}  # this thread's CPU time per round
        self.graph: Graph | None = None
        self.u1 = self.u2 = self.u3 = self.u4 = np.empty(0, dtype=np.int64)
        self.survivors: list[int] = []
        self._keys = np.zeros((config.n, 2, 32), dtype=np.uint8)
        self._neigh: dict[int, np.ndarray] = {}
        self._frm: dict[int, np.ndarray] = {}
        self._requests: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._acc = np.zeros(config.dim, dtype=config.dtype)
        self.expansions = 0  # masks of d elements expanded while unmasking

    # -- helpers ------------------------------------------------------------------
    def _enter(self, stage: int, name: str) -> tuple[float, float]:
        if self._stage != stage:
            raise ProtocolError(f"server: {name!r} called out of order (stage {self._stage})")
        self._stage += 1
        return time.perf_counter(), time.thread_time()

    def _leave(self, name: str, t0: tuple[float, float]) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0[0]
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.thread_time() - t0[1]

    def _drop(self, u: int, reason: str) -> None:
        self.dropped.setdefault(u, reason)

    def _need(self, alive: np.ndarray, name: str) -> None:
        t = self.config.threshold
        if len(alive) < t:
            raise ProtocolAbort(f"SecAgg aborted in round {name!r}: {len(alive)} clients left, "
                                f"fewer than the threshold t = {t}")

    def _absent(self, expected: np.ndarray, got: Messages, name: str) -> None:
        for u in expected.tolist():
            if u not in got:
                self._drop(u, f"no message in round {name!r}")

    # -- round 0 ---------------------------------------------------------------------
    def collect_keys(self, msgs: Messages) -> Messages:
        """Round 0: validate public keys, draw the graph, send each client its neighbours' keys."""
        t0 = self._enter(0, "advertise")
        n = self.config.n
        self._absent(np.arange(n), msgs, "advertise")
        seen: set[bytes] = set()
        alive = []
        for u in sorted(msgs):
            if not 0 <= u < n:
                self._drop(u, f"unknown client id (clients are 0 .. {n - 1})")
                continue
            try:
                (keys,) = msg.check(msgs[u], msg.ADVERTISE_UP, f"client {u}, round 'advertise'")
            except msg.MalformedMessage as exc:
                self._drop(u, str(exc))
                continue
            c_pk, s_pk = keys[0].tobytes(), keys[1].tobytes()
            if c_pk == s_pk or c_pk in seen or s_pk in seen or not (
                    valid_public_key(c_pk) and valid_public_key(s_pk)):
                self._drop(u, "invalid or repeated public keys")
                continue
            seen.update((c_pk, s_pk))
            self._keys[u] = keys
            alive.append(u)
        self.u1 = np.array(alive, dtype=np.int64)
        self._need(self.u1, "advertise")
        self.graph = harary(n, self.config.degree, self._prg) if not self.config.complete else Graph(n)
        replies: Messages = {}
        in_u1 = np.zeros(n, dtype=bool)
        in_u1[self.u1] = True
        for u in self.u1.tolist():
            nb = self.graph.neighbours(u)
            nb = nb[in_u1[nb]]
            self._neigh[u] = nb
            replies[u] = (nb.copy(), self._keys[nb])
        self._leave("advertise", t0)
        return replies

    # -- round 1 ---------------------------------------------------------------------
    def route_shares(self, msgs: Messages) -> Messages:
        """Round 1: check each client sent one ciphertext per neighbour; forward them."""
        t0 = self._enter(1, "share")
        self._absent(self.u1, msgs, "share")
        senders, recipients, cts = [], [], []
        alive = []
        for u in self.u1.tolist():
            if u not in msgs:
                continue
            what = f"client {u}, round 'share'"
            try:
                to, ct = msg.check(msgs[u], msg.SHARE_UP, what)
                msg.same_length(what, (to, ct))
                if not np.array_equal(to, self._neigh[u]):
                    raise msg.MalformedMessage(f"{what}: recipients differ from its neighbours")
            except msg.MalformedMessage as exc:
                self._drop(u, str(exc))
                continue
            alive.append(u)
            senders.append(np.full(len(to), u, dtype=np.int64))
            recipients.append(to)
            cts.append(ct)
        self.u2 = np.array(alive, dtype=np.int64)
        self._need(self.u2, "share")
        replies: Messages = {}
        if senders:
            snd, rcp, ctx = np.concatenate(senders), np.concatenate(recipients), np.concatenate(cts)
            keep = np.isin(rcp, self.u2)
            snd, rcp, ctx = snd[keep], rcp[keep], ctx[keep]
            order = np.argsort(rcp, kind="stable")  # senders stay sorted within a recipient
            snd, rcp, ctx = snd[order], rcp[order], ctx[order]
            starts = np.searchsorted(rcp, self.u2, side="left")
            ends = np.searchsorted(rcp, self.u2, side="right")
            for v, a, b in zip(self.u2.tolist(), starts.tolist(), ends.tolist()):
                self._frm[v] = snd[a:b]
                replies[v] = (snd[a:b], ctx[a:b])
        self._leave("share", t0)
        return replies

    # -- round 2 ---------------------------------------------------------------------
    def collect_masked(self, msgs: Messages) -> Messages:
        """Round 2: add up the masked inputs; ask survivors for seed or key shares."""
        t0 = self._enter(2, "masked")
        self._absent(self.u2, msgs, "masked")
        spec = msg.masked_spec(self.config.dtype, self.config.dim)
        top = self.config.modulus_mask
        alive = []
        for u in self.u2.tolist():
            if u not in msgs:
                continue
            try:
                (y,) = msg.check(msgs[u], spec, f"client {u}, round 'masked'")
                if y.size and int(y.max()) > top:
                    raise msg.MalformedMessage(f"client {u}, round 'masked': values outside Z_2^{self.config.bits}")
            except msg.MalformedMessage as exc:
                self._drop(u, str(exc))
                continue
            np.add(self._acc, y, out=self._acc)
            alive.append(u)
        self.u3 = np.array(alive, dtype=np.int64)
        self.survivors = self.u3.tolist()
        self._need(self.u3, "masked")
        gone = np.setdiff1d(self.u2, self.u3)
        replies: Messages = {}
        for u in self.u3.tolist():
            frm = self._frm.get(u, np.empty(0, dtype=np.int64))
            live = np.union1d(frm[np.isin(frm, self.u3)], [u]).astype(np.int64)
            dropped = frm[np.isin(frm, gone)]
            self._requests[u] = (live, dropped)
            replies[u] = (live, dropped)
        self._leave("masked", t0)
        return replies

    # -- round 3 ---------------------------------------------------------------------
    def unmask(self, msgs: Messages) -> np.ndarray:
        """Round 3: reconstruct the seeds and keys, remove the masks, return the sum in Z_2^k."""
        t0 = self._enter(3, "unmask")
        self._absent(self.u3, msgs, "unmask")
        alive, seed_rows, key_rows = [], [], []
        for u in self.u3.tolist():
            if u not in msgs:
                continue
            what = f"client {u}, round 'unmask'"
            try:
                live, seed, dropped, key = msg.check(msgs[u], msg.UNMASK_UP, what)
                msg.same_length(what, (live, seed), (dropped, key))
                want_live, want_dropped = self._requests[u]
                if not (np.array_equal(live, want_live) and np.array_equal(dropped, want_dropped)):
                    raise msg.MalformedMessage(f"{what}: answered for other clients than asked")
                if (seed.size and int(seed.max()) >= PRIME) or (key.size and int(key.max()) >= PRIME):
                    raise msg.MalformedMessage(f"{what}: a Shamir share is not a field element")
            except msg.MalformedMessage as exc:
                self._drop(u, str(exc))
                continue
            alive.append(u)
            seed_rows.append((u, live, seed))
            key_rows.append((u, dropped, key))
        self.u4 = np.array(alive, dtype=np.int64)
        self._need(self.u4, "unmask")
        gone = np.setdiff1d(self.u2, self.u3)
        try:
            seeds = decode_seeds(self._gather(self.u3, seed_rows, SEED_ELEMS, "self-mask seed"))
            keys = decode_keys(self._gather(gone, key_rows, KEY_ELEMS, "mask key"))
        except IntegrityError as exc:  # some responder sent shares of another polynomial
            raise ProtocolAbort(f"SecAgg aborted in round 'unmask': {exc}") from None
        acc = self._acc
        expander = MaskExpander(self.config.dim, self.config.dtype)
        for s in seeds:
            expander.add(acc, s, -1)
        self.expansions += len(seeds)
        session = self.config.session
        for v, sk in zip(gone.tolist(), keys):
            if public_key(sk) != self._keys[v, 1].tobytes():
                raise ProtocolAbort(f"SecAgg aborted: the mask key rebuilt for dropped client {v} "
                                    f"does not match its public key (inconsistent shares)")
            for u in self._frm[v].tolist():  # U2 neighbours of v; those in U3 masked with v
                if u in self._requests:
                    shared = agree(sk, self._keys[u, 1].tobytes())
                    expander.add(acc, mask_seed(shared, session, u, v), -1 if u < v else 1)
                    self.expansions += 1
        if self.config.bits < 8 * acc.itemsize:
            acc &= acc.dtype.type(self.config.modulus_mask)
        self._leave("unmask", t0)
        return acc.copy()

    def _gather(self, owners: np.ndarray, rows: list, width: int, what: str) -> np.ndarray:
        """Pick t shares for each owner from the responders' rows and reconstruct."""
        t = self.config.threshold
        m = len(owners)
        if m == 0:
            return np.empty((0, width), dtype=np.uint64)
        index = {w: i for i, w in enumerate(owners.tolist())}
        r = len(rows)
        present = np.zeros((m, r), dtype=bool)
        table = np.zeros((m, r, width), dtype=np.uint32)
        for j, (_, ids, shares) in enumerate(rows):
            pos = np.array([index[w] for w in ids.tolist() if w in index], dtype=np.int64)
            sel = np.isin(ids, owners)
            present[pos, j] = True
            table[pos, j] = shares[sel]
        counts = present.sum(axis=1)
        short = np.flatnonzero(counts < t)
        if short.size:
            w = int(owners[short[0]])
            raise ProtocolAbort(f"SecAgg aborted in round 'unmask': only {int(counts[short[0]])} "
                                f"shares of the {what} of client {w} arrived, fewer than t = {t}")
        pick = present & (np.cumsum(present, axis=1) <= t)
        rows_i, cols = np.nonzero(pick)
        responders = np.array([u for u, _, _ in rows], dtype=np.int64)
        points = (responders[cols] + 1).reshape(m, t)
        shares = table[rows_i, cols].reshape(m, t, width)
        try:
            return reconstruct(points, shares)
        except IntegrityError as exc:
            raise ProtocolAbort(f"SecAgg aborted in round 'unmask': {exc}") from None
