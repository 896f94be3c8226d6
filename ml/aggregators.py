"""Pluggable secure aggregators for federated averaging, one interface (layer: ml).

An aggregator computes the sum of the vectors of the clients that finish a
round, and nothing else, whatever it uses underneath. :func:`make_aggregator`
picks one by name:

============  ==============================================================
``plaintext`` baseline: the server reads every update (no protection)
``secagg``    Bonawitz et al. 2017 pairwise masking via :mod:`protocols.secagg`
``secagg+``   Bell et al. 2020, logarithmic neighbourhoods, same module
``ckks``      clients encrypt under a shared CKKS key; the server adds
              ciphertexts with only the public context (:mod:`ml.he_aggregators`)
``paillier``  packed Paillier under a key the clients share (:mod:`ml.he_aggregators`)
``twoserver`` two non-colluding servers check each update's L2 norm in MPC
              and sum the accepted ones (:mod:`ml.twoserver_aggregator`)
============  ==============================================================

and the Byzantine-robust plaintext rules ``median``, ``trimmed_mean``,
``krum`` and ``multi_krum`` (:mod:`ml.robust_aggregators`).

Interface: ``setup(n_clients, dim, value_bound)`` once, then per round
``aggregate({client_id: vector}, dropped=ids) -> AggregationResult`` whose
``total`` is the sum of the survivors' vectors. ``aggregate`` is the in-process
*driver* of a round: it hands each client role only that client's vector, and
the server role only what the clients send. Every result carries the
``transcript`` of what the server received (``ServerMessage``: sender, tag,
payload exactly as received, bytes) and ``server_state``, the values the server
role held at the end, which tests inspect to check that the server never holds
an individual plaintext update.

Weighted averaging is done inside the secure sum: :mod:`ml.federated` sends
``[w_k * update_k, w_k]``, so the server learns sum_k w_k update_k and sum_k w_k
but no single w_k (a client's sample count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from mpc.errors import ParameterError, ProtocolAbort


@dataclass
class ServerMessage:
    """One message the server received: who sent it, its tag, its payload, its size."""

    sender: int
    tag: str
    payload: bytes | np.ndarray
    nbytes: int


@dataclass
class AggregationResult:
    """Sum of the survivors' vectors and what it cost.

    Attributes
    ----------
    total:
        Sum over ``survivors`` of their vectors (float64).
    survivors:
        Client ids whose input is in the sum.
    bytes_per_client:
        Mean bytes sent plus received by one participating client.
    server_seconds / client_seconds:
        Time in the server's role and mean time in one client's role.
    transcript:
        Every message the server received, as received.
    server_state:
        What the server role held at the end of the round (names to values).
    """

    total: np.ndarray
    survivors: list[int]
    bytes_per_client: float
    server_seconds: float
    client_seconds: float
    transcript: list[ServerMessage] = field(default_factory=list)
    server_state: dict[str, Any] = field(default_factory=dict)


class Aggregator:
    """Common interface of all aggregators (see the module docstring)."""

    name = "abstract"
    min_survivors = 1
    """Fewest surviving clients for which a round can complete."""

    def __init__(self) -> None:
        self.n_clients = 0
        self.dim = 0
        self.value_bound = 0.0

    def setup(self, n_clients: int, dim: int, value_bound: float) -> None:
        """Fix the population, the vector length and the bound |x_i| <= value_bound."""
        self.configure(n_clients, dim, value_bound)

    def configure(self, n_clients: int, dim: int, value_bound: float) -> None:
        """What :meth:`setup` does without making keys: the parameters every role must agree on.

        A deployed server and its clients call this (the keys of CKKS and Paillier are
        made by one client, :mod:`ml.federated.he_network`); in process, :meth:`setup`.
        """
        if n_clients < 1 or dim < 1:
            raise ParameterError("need at least one client and a non-empty vector")
        if not value_bound > 0:
            raise ParameterError("value_bound must be positive")
        self.n_clients, self.dim, self.value_bound = n_clients, dim, float(value_bound)

    def _check(self, vectors: dict[int, np.ndarray], dropped: Iterable[int]
               ) -> tuple[list[int], list[int], dict[int, np.ndarray]]:
        """Validate a round's inputs: (sorted ids, sorted dropped ids, id -> float64 vector)."""
        if not self.dim:
            raise ParameterError(f"{self.name}: call setup() before aggregate()")
        ids = sorted(int(i) for i in vectors)
        drop = sorted({int(d) for d in dropped})
        if not ids:
            raise ParameterError("no clients in this round")
        if any(not 0 <= i < self.n_clients for i in ids):
            raise ParameterError(f"client ids must be in [0, {self.n_clients})")
        if any(d not in vectors for d in drop):
            raise ParameterError("a dropped client must be one of the round's clients")
        out: dict[int, np.ndarray] = {}
        for i in ids:
            v = np.asarray(vectors[i], dtype=np.float64).reshape(-1)
            if v.size != self.dim:
                raise ParameterError(f"client {i}: vector length {v.size}, expected {self.dim}")
            if not np.all(np.isfinite(v)):
                raise ParameterError(f"client {i}: vector has NaN or infinite entries")
            if np.abs(v).max() > self.value_bound:
                raise ParameterError(
                    f"client {i}: an entry exceeds value_bound={self.value_bound:g}")
            out[i] = v
        return ids, drop, out

    def check_round_size(self, m: int) -> None:
        """Refuse, before training starts, rounds of ``m`` clients this aggregator cannot serve."""
        if m < self.min_survivors:
            raise ParameterError(f"{self.name} needs at least {self.min_survivors} clients per round, "
                                 f"got {m}")

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        """Sum of the vectors of the clients not in ``dropped``.

        Raises :class:`~mpc.errors.ProtocolAbort` when too few clients survive
        for this aggregator to finish (the caller skips the round).
        """
        raise NotImplementedError


class PlaintextAggregator(Aggregator):
    """Baseline: every client sends its update in the clear; the server adds them.

    Security
    --------
    None: the server (and anyone on the wire) reads every client's update and
    weight. This is the FedAvg of McMahan et al. 2017, the reference the secure
    aggregators must match.

    Cost
    ----
    One round; per client 8 d bytes up (float64), 8 d bytes down (the model).
    """

    name = "plaintext"

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        ids, drop, vecs = self._check(vectors, dropped)
        survivors = [i for i in ids if i not in drop]
        if not survivors:
            raise ProtocolAbort("plaintext: every client of the round dropped out")
        t0 = time.perf_counter()
        transcript = [ServerMessage(i, "update", vecs[i].copy(), vecs[i].nbytes) for i in survivors]
        total = np.sum([np.asarray(m.payload) for m in transcript], axis=0)
        secs = time.perf_counter() - t0
        return AggregationResult(total, survivors, bytes_per_client=2.0 * 8 * self.dim,
                                 server_seconds=secs, client_seconds=0.0, transcript=transcript,
                                 server_state={"received": {m.sender: m.payload for m in transcript},
                                               "total": total})


class SecAggAggregator(Aggregator):
    """Secure aggregation by pairwise and self masks (:mod:`protocols.secagg`).

    Every round is one SecAgg session among the round's clients, with fresh keys.

    Protocol
    --------
    0. Each client encodes ``[w_k delta_k, w_k]`` in Z_2^k: clipped to
       ``value_bound``, ``frac_bits`` fractional bits, k sized so that the sum of
       the round's clients cannot wrap (:class:`protocols.secagg.encoding.Quantizer`).
    1. The four rounds of Bonawitz et al. 2017 (advertise keys, share keys,
       masked input, unmask), or of SecAgg+ (Bell et al. 2020: each client is
       paired with ~O(log n) neighbours of a random regular graph), run by
       :func:`protocols.secagg.aggregate` (its one-process simulation, or with
       ``runtime="parties"`` the Party runtime, one thread per party, messages
       in the wire format); the transcript is the server's view it records. A
       client that drops out of the round does so *after* sharing its keys
       (``drop_round=2``), the case in which the server must reconstruct its
       pairwise masks.
    2. The server decodes the ring sum of the survivors.

    Security
    --------
    Semi-honest server (SecAgg's malicious-server consistency round is not run;
    a server that only lies about who survived is tolerated, t being a strict
    majority of each client's shareholders, see ``docs/secagg.md``);
    privacy against the server colluding with fewer than t clients, t the
    Shamir threshold chosen from the round size, ``dropout_bound`` and
    ``corruption`` (SecAgg+: with the failure probability of Bell et al. 2020,
    at most 2^-40 by default). The server learns the sum of the survivors and
    who survived; honest clients refuse to reveal both shares of one client, so
    it never unmasks an individual input. More dropouts than the threshold
    tolerates abort the round (:class:`~mpc.errors.ProtocolAbort`); training
    skips it. Each round is an independent session: a client absent in a round
    reveals nothing in it.

    Cost
    ----
    Four round trips. A client with m neighbours (m = n - 1 for SecAgg, about
    O(log n) for SecAgg+) sends 64 bytes of public keys, 88 m bytes of encrypted
    shares, d b / 8 bytes of masked input (ring Z_2^b, b = 32 or 64 bits of
    storage) and its unmasking shares, receives the neighbours' keys and shares,
    plus the 8 d-byte model; measured totals are in ``docs/federated.md``.
    Server: one PRG expansion of d per survivor and per (dropped, survivor) pair.
    Quantization error of the sum: at most n 2^-(frac_bits + 1) per entry.
    """

    min_survivors = 2

    def __init__(self, variant: str = "secagg", frac_bits: int = 20, dropout_bound: float = 0.3,
                 corruption: float = 0.1, drop_round: int = 2, runtime: str = "simulation",
                 timeout: float = 60.0) -> None:
        super().__init__()
        import protocols.secagg  # noqa: F401 -- fail early if missing
        if variant not in ("secagg", "secagg+"):
            raise ParameterError("variant must be 'secagg' or 'secagg+'")
        if runtime not in ("simulation", "parties"):
            raise ParameterError("runtime must be 'simulation' or 'parties'")
        self.runtime, self.timeout = runtime, timeout
        if drop_round not in (0, 1, 2, 3):
            raise ParameterError("drop_round must be one of the rounds 0..3")
        self.name = variant
        self.variant, self.frac_bits, self.drop_round = variant, frac_bits, drop_round
        self.dropout_bound, self.corruption = dropout_bound, corruption

    def check_round_size(self, m: int) -> None:
        """Rounds of ``m`` clients need a Shamir threshold for the dropout and corruption bounds."""
        super().check_round_size(m)
        from protocols.secagg import make_config

        try:
            make_config(m, max(self.dim, 1), variant=self.variant, dropout=self.dropout_bound,
                        corruption=self.corruption)
        except ParameterError as exc:
            raise ParameterError(f"{self.name} cannot aggregate rounds of {m} clients with a "
                                 f"{self.dropout_bound:.0%} dropout bound: {exc}; sample more clients "
                                 "per round or lower dropout_bound") from None

    def aggregate(self, vectors: dict[int, np.ndarray],
                  dropped: Iterable[int] = ()) -> AggregationResult:
        from protocols.secagg import aggregate

        ids, drop, vecs = self._check(vectors, dropped)
        if len(ids) - len(drop) < self.min_survivors:
            raise ProtocolAbort(f"{self.name}: {len(ids) - len(drop)} client(s) left, at least "
                                f"{self.min_survivors} needed so that the sum hides each input")
        # session index u <-> client id ids[u]; each client encodes only its own vector
        res = aggregate([vecs[i] for i in ids], variant=self.variant,
                        dropouts={u: self.drop_round for u, i in enumerate(ids) if i in drop},
                        clip=self.value_bound, frac_bits=self.frac_bits,
                        dropout_bound=self.dropout_bound, corruption=self.corruption,
                        runtime=self.runtime, timeout=self.timeout, record_view=True)
        transcript = [ServerMessage(ids[u], name, arrays[0] if len(arrays) == 1 else
                                    b"".join(np.ascontiguousarray(a).tobytes() for a in arrays),
                                    int(sum(a.nbytes for a in arrays)))
                      for u, name, arrays in res.view or ()]
        if res.server is not None:
            state = {"server": res.server, "total": res.total,
                     "threshold": res.config.threshold, "degree": res.config.degree}
        else:
            state = {"total": res.total, "rounds": res.run.cost.rounds}
        return AggregationResult(
            res.total, [ids[u] for u in res.survivors],
            bytes_per_client=res.cost.bytes_per_client + 8 * self.dim,  # and the model down
            server_seconds=res.cost.server_seconds, client_seconds=res.cost.client_seconds,
            transcript=transcript, server_state=state)


AGGREGATORS = ("plaintext", "secagg", "secagg+", "ckks", "paillier")
ROBUST_AGGREGATORS = ("median", "trimmed_mean", "krum", "multi_krum", "twoserver")
"""Byzantine-robust aggregators, also made by name (not in the privacy-preserving list above)."""


def make_aggregator(name: str | Aggregator, **kwargs: Any) -> Aggregator:
    """Build an aggregator by name (see the table in the module docstring).

    Raises ``ImportError`` when the module behind a secure aggregator is not
    installed, :class:`~mpc.errors.ParameterError` for an unknown name.
    """
    if isinstance(name, Aggregator):
        if kwargs:
            raise ParameterError("options apply to an aggregator chosen by name")
        return name
    if name == "plaintext":
        return PlaintextAggregator(**kwargs)
    if name == "ckks":
        from .he_aggregators import CKKSAggregator
        return CKKSAggregator(**kwargs)
    if name in ("secagg", "secagg+"):
        return SecAggAggregator(variant=name, **kwargs)
    if name == "paillier":
        from .he_aggregators import PaillierAggregator
        return PaillierAggregator(**kwargs)
    if name in ("median", "trimmed_mean", "krum", "multi_krum"):
        from .robust_aggregators import RobustAggregator
        return RobustAggregator(rule=name, **kwargs)
    if name == "twoserver":
        from .twoserver_aggregator import TwoServerAggregator
        return TwoServerAggregator(**kwargs)
    raise ParameterError(f"unknown aggregator {name!r}: choose one of "
                         f"{', '.join(AGGREGATORS + ROBUST_AGGREGATORS)}")


def __getattr__(name: str) -> Any:
    """``CKKSAggregator`` and ``PaillierAggregator`` live in :mod:`ml.he_aggregators`."""
    if name in ("CKKSAggregator", "PaillierAggregator"):
        from . import he_aggregators
        return getattr(he_aggregators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
