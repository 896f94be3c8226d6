"""The SecAgg server: its state as a dataclass and one step per round over all clients at once (layer: protocols).

Each step function takes the :class:`Server` state and ``{client id: message}``
for the clients that answered (a missing client has dropped) and returns
``{client id: reply}`` for the next round. The table of rounds
(:mod:`.rounds`) drives them: it refuses a step out of order, drops the
senders whose message fails the round's schema, and times the step. A message
that fails a round's own checks also makes its sender dropped
(``Server.dropped`` records why). Fewer than t clients left at any round
raises :class:`~mpc.errors.ProtocolAbort`.

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

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mpc.errors import IntegrityError, ProtocolAbort
from mpc.rand import PRG

from . import messages as msg
from .config import SecAggConfig
from .crypto import MaskExpander, agree, mask_seed, public_key, valid_public_key
from .graph import Graph, harary
from .sharing import KEY_ELEMS, PRIME, SEED_ELEMS, decode_keys, decode_seeds, reconstruct

Messages = dict[int, tuple[np.ndarray, ...]]


@dataclass(eq=False)
class Server:
    """State of the aggregation server of one session.

    Attributes
    ----------
    dropped:
        ``{client: reason}`` for every client that left (missing or malformed).
    u1, u2, u3, u4:
        The clients alive after each round; ``survivors`` is U3 as a list (the
        clients whose inputs the sum contains).
    seconds, cpu_seconds:
        Wall-clock and CPU (thread) time spent in each round's step.
    keys, neighbours, frm, requests:
        Public keys received, each client's live neighbours, the senders of
        the shares routed to each client, the unmask request sent to each.
    expansions:
        Masks of d elements expanded while unmasking.
    """

    config: SecAggConfig = field(repr=False)
    prg: PRG = field(default_factory=PRG.fresh, repr=False)
    stage: int = field(default=0, init=False)
    dropped: dict[int, str] = field(default_factory=dict, init=False)
    seconds: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    cpu_seconds: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    graph: Graph | None = field(default=None, init=False, repr=False)
    u1: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)
    u2: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)
    u3: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)
    u4: np.ndarray = field(default_factory=msg.no_ids, init=False, repr=False)
    survivors: list[int] = field(default_factory=list, init=False)
    keys: np.ndarray = field(init=False, repr=False)
    neighbours: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    frm: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    requests: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, init=False,
                                                               repr=False)
    acc: np.ndarray = field(init=False, repr=False)
    expansions: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.prg is None:
            self.prg = PRG.fresh()
        self.keys = np.zeros((self.config.n, 2, 32), dtype=np.uint8)
        self.acc = np.zeros(self.config.dim, dtype=self.config.dtype)

    def drop(self, u: int, reason: str) -> None:
        """Record that client u left (the first reason stays)."""
        self.dropped.setdefault(u, reason)

    def expected(self) -> np.ndarray:
        """The clients whose message the current round waits for."""
        return (np.arange(self.config.n), self.u1, self.u2, self.u3)[min(self.stage, 3)]

    def need(self, alive: np.ndarray, name: str) -> None:
        """Abort the session when fewer than t clients are left after round ``name``."""
        t = self.config.threshold
        if len(alive) < t:
            raise ProtocolAbort(f"SecAgg aborted in round {name!r}: {len(alive)} clients left, "
                                f"fewer than the threshold t = {t}")


def _keep(server: Server, msgs: Messages, check: Callable[[int, tuple], None]) -> np.ndarray:
    """The senders whose message passes ``check``; it drops the others (MalformedMessage)."""
    alive = []
    for u in sorted(msgs):
        try:
            check(u, msgs[u])
        except msg.MalformedMessage as exc:
            server.drop(u, str(exc))
            continue
        alive.append(u)
    return np.array(alive, dtype=np.int64)


# -- round 0 ---------------------------------------------------------------------------
def collect_keys(server: Server, msgs: Messages) -> Messages:
    """Round 0: keep distinct valid public keys, draw the graph, send each client its neighbours' keys."""
    n, seen = server.config.n, set[bytes]()

    def check(u: int, m: tuple) -> None:
        c_pk, s_pk = m[0][0].tobytes(), m[0][1].tobytes()
        if c_pk == s_pk or c_pk in seen or s_pk in seen or not (
                valid_public_key(c_pk) and valid_public_key(s_pk)):
            raise msg.MalformedMessage("invalid or repeated public keys")
        seen.update((c_pk, s_pk))
        server.keys[u] = m[0]

    server.u1 = _keep(server, msgs, check)
    server.need(server.u1, "advertise")
    config = server.config
    server.graph = Graph(n) if config.complete else harary(n, config.degree, server.prg)
    replies: Messages = {}
    in_u1 = np.zeros(n, dtype=bool)
    in_u1[server.u1] = True
    for u in server.u1.tolist():
        nb = server.graph.neighbours(u)
        nb = nb[in_u1[nb]]
        server.neighbours[u] = nb
        replies[u] = (nb.copy(), server.keys[nb])
    return replies


# -- round 1 ---------------------------------------------------------------------------
def route_shares(server: Server, msgs: Messages) -> Messages:
    """Round 1: check each client sent one ciphertext per neighbour; forward them."""
    def check(u: int, m: tuple) -> None:
        what = f"client {u}, round 'share'"
        msg.same_length(what, m)
        if not np.array_equal(m[0], server.neighbours[u]):
            raise msg.MalformedMessage(f"{what}: recipients differ from its neighbours")

    server.u2 = _keep(server, msgs, check)
    server.need(server.u2, "share")
    replies: Messages = {}
    if not len(server.u2):
        return replies
    snd = np.concatenate([np.full(len(msgs[u][0]), u, dtype=np.int64) for u in server.u2.tolist()])
    rcp = np.concatenate([msgs[u][0] for u in server.u2.tolist()])
    ctx = np.concatenate([msgs[u][1] for u in server.u2.tolist()])
    keep = np.isin(rcp, server.u2)
    snd, rcp, ctx = snd[keep], rcp[keep], ctx[keep]
    order = np.argsort(rcp, kind="stable")  # senders stay sorted within a recipient
    snd, rcp, ctx = snd[order], rcp[order], ctx[order]
    starts = np.searchsorted(rcp, server.u2, side="left")
    ends = np.searchsorted(rcp, server.u2, side="right")
    for v, a, b in zip(server.u2.tolist(), starts.tolist(), ends.tolist()):
        server.frm[v] = snd[a:b]
        replies[v] = (snd[a:b], ctx[a:b])
    return replies


# -- round 2 ---------------------------------------------------------------------------
def collect_masked(server: Server, msgs: Messages) -> Messages:
    """Round 2: add up the masked inputs; ask survivors for seed or key shares."""
    return request_shares(server, fold_masked(server, msgs))


def fold_masked(server: Server, msgs: Messages) -> np.ndarray:
    """Round 2, first part: add some masked inputs into the sum; the ids of those kept.

    Called once per chunk when the messages arrive in chunks (:meth:`.rounds.Round.server_stream`).
    """
    config = server.config

    def check(u: int, m: tuple) -> None:
        if m[0].size and int(m[0].max()) > config.modulus_mask:
            raise msg.MalformedMessage(f"client {u}, round 'masked': values outside Z_2^{config.bits}")
        np.add(server.acc, m[0], out=server.acc)

    return _keep(server, msgs, check)


def request_shares(server: Server, u3: np.ndarray) -> Messages:
    """Round 2, second part: U3 is fixed; ask each survivor for seed or key shares."""
    server.u3 = np.sort(np.asarray(u3, dtype=np.int64))
    server.survivors = server.u3.tolist()
    server.need(server.u3, "masked")
    gone = np.setdiff1d(server.u2, server.u3)
    replies: Messages = {}
    for u in server.u3.tolist():
        frm = server.frm.get(u, msg.no_ids())
        live = np.union1d(frm[np.isin(frm, server.u3)], [u]).astype(np.int64)
        dropped = frm[np.isin(frm, gone)]
        server.requests[u] = (live, dropped)
        replies[u] = (live, dropped)
    return replies


# -- round 3 ---------------------------------------------------------------------------
def _check_answer(server: Server, u: int, m: tuple) -> None:
    what = f"client {u}, round 'unmask'"
    live, seed, dropped, key = m
    msg.same_length(what, (live, seed), (dropped, key))
    want_live, want_dropped = server.requests[u]
    if not (np.array_equal(live, want_live) and np.array_equal(dropped, want_dropped)):
        raise msg.MalformedMessage(f"{what}: answered for other clients than asked")
    if (seed.size and int(seed.max()) >= PRIME) or (key.size and int(key.max()) >= PRIME):
        raise msg.MalformedMessage(f"{what}: a Shamir share is not a field element")


def unmask(server: Server, msgs: Messages) -> np.ndarray:
    """Round 3: reconstruct the seeds and keys, remove the masks, return the sum in Z_2^k."""
    server.u4 = _keep(server, msgs, lambda u, m: _check_answer(server, u, m))
    server.need(server.u4, "unmask")
    answers = [(u, *msgs[u]) for u in server.u4.tolist()]
    gone = np.setdiff1d(server.u2, server.u3)
    try:
        seeds = decode_seeds(_gather(server, server.u3, [(u, lv, sd) for u, lv, sd, _, _ in answers],
                                     SEED_ELEMS, "self-mask seed"))
        keys = decode_keys(_gather(server, gone, [(u, dr, ky) for u, _, _, dr, ky in answers],
                                   KEY_ELEMS, "mask key"))
    except IntegrityError as exc:  # some responder sent shares of another polynomial
        raise ProtocolAbort(f"SecAgg aborted in round 'unmask': {exc}") from None
    acc, config = server.acc, server.config
    expander = MaskExpander(config.dim, config.dtype)
    for s in seeds:
        expander.add(acc, s, -1)
    server.expansions += len(seeds)
    for v, sk in zip(gone.tolist(), keys):
        if public_key(sk) != server.keys[v, 1].tobytes():
            raise ProtocolAbort(f"SecAgg aborted: the mask key rebuilt for dropped client {v} "
                                f"does not match its public key (inconsistent shares)")
        for u in server.frm[v].tolist():  # U2 neighbours of v; those in U3 masked with v
            if u in server.requests:
                shared = agree(sk, server.keys[u, 1].tobytes())
                expander.add(acc, mask_seed(shared, config.session, u, v), -1 if u < v else 1)
                server.expansions += 1
    if config.bits < 8 * acc.itemsize:
        acc &= acc.dtype.type(config.modulus_mask)
    return acc.copy()


def _gather(server: Server, owners: np.ndarray, rows: list, width: int, what: str) -> np.ndarray:
    """Pick t shares for each owner from the responders' rows and reconstruct."""
    t = server.config.threshold
    m = len(owners)
    if m == 0:
        return np.empty((0, width), dtype=np.uint64)
    # One entry per (owner, responder) share that arrived: O(n k) memory, not a dense
    # owners x responders table (which needs ~1.7 GB at 10^4 clients and cannot reach 10^5).
    owner_of, resp_of, parts = [], [], []
    for j, (_, ids, shares) in enumerate(rows):
        sel = np.isin(ids, owners)
        owner_of.append(np.searchsorted(owners, ids[sel]))
        resp_of.append(np.full(int(sel.sum()), j, dtype=np.int64))
        parts.append(np.asarray(shares[sel], dtype=np.uint32).reshape(-1, width))
    own = np.concatenate([np.zeros(0, np.int64), *owner_of])
    col = np.concatenate([np.zeros(0, np.int64), *resp_of])
    table = np.concatenate([np.zeros((0, width), np.uint32), *parts])
    counts = np.bincount(own, minlength=m)
    short = np.flatnonzero(counts < t)
    if short.size:
        w = int(owners[short[0]])
        raise ProtocolAbort(f"SecAgg aborted in round 'unmask': only {int(counts[short[0]])} "
                            f"shares of the {what} of client {w} arrived, fewer than t = {t}")
    order = np.lexsort((col, own))                  # by owner, then in the responders' order
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = order[(first[:, None] + np.arange(t)).ravel()]   # each owner's first t shares
    responders = np.array([u for u, _, _ in rows], dtype=np.int64)
    points = (responders[col[take]] + 1).reshape(m, t)
    shares = table[take].reshape(m, t, width)
    try:
        return reconstruct(points, shares)
    except IntegrityError as exc:
        raise ProtocolAbort(f"SecAgg aborted in round 'unmask': {exc}") from None
