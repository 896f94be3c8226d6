"""Secure aggregation, SecAgg (Bonawitz et al. 2017) and SecAgg+ (Bell et al. 2020) (layer: protocols).

A server learns the sum of the clients' vectors that finished, and nothing
else about any one of them, even when clients drop out mid-protocol.

Quick start::

    import numpy as np
    from protocols.secagg import aggregate

    updates = [np.random.default_rng(i).normal(size=1000) for i in range(20)]  # simulated updates
    res = aggregate(updates, variant="secagg+", dropouts=0.1)
    total, cost = res          # total: float sum over res.survivors
    print(cost.server_seconds, cost.bytes_per_client, res.error_bound)

Protocol
--------
Four rounds between one server and n clients, one table
(:data:`.rounds.ROUNDS`; the steps are in :mod:`.client` and :mod:`.server`,
the drivers in :mod:`.simulation` and :mod:`.parties`): 0 advertise keys, 1 share keys (t-of-h Shamir
shares of the self-mask seed and the mask key, sent encrypted through the
server), 2 masked input collection (double masking: self mask plus pairwise
masks from X25519-agreed seeds, expanded by AES-128-CTR), 3 unmasking (seed
shares of survivors, key shares of dropped clients, never both for one).
SecAgg pairs every two clients; SecAgg+ only neighbours in a random k-regular
graph, with k and t chosen by :func:`.graph.choose` from n, the dropout bound
and the corruption bound.

Security
--------
Semi-honest server colluding with fewer than t clients (SecAgg; for SecAgg+
at most ``corruption * n`` random clients, failure probability
``config.privacy_failure``): the server's view is simulatable from the sum of
the survivors' inputs. Correct while at most ``dropout * n`` clients drop
(SecAgg+: except with probability ``config.correctness_failure``). Also
private against a server that follows the protocol except that it tells
different clients different survivor lists (not colluding with clients): t is
a strict majority of each client's k + 1 shareholders (2t > k + 1, refused
otherwise), so it never gets t shares of both b_u and s_u^SK; clients refuse
requests listing fewer than t clients alive. Not covered: a server that both
lies about survivors and colludes with c of u's neighbours (then 2t <= k + 1 + c
suffices), draws the graph or hands out keys inconsistently (the paper's
consistency-check round with signatures is not run), malicious clients
altering the sum. Details: ``docs/secagg.md``.

Cost
----
Client: 2(k) X25519 agreements, k encryptions of 80 bytes, k + 1 mask
expansions of d elements; sends 64 + 88 k + d b/8 + 4(5a + 9b) + 8(a + b) bytes
with k = n - 1 for SecAgg. Server: |U3| + |D| k mask expansions
(D = clients dropped after sharing keys), |D| k agreements, Shamir
reconstruction of |U3| + |D| secrets. Four round trips.

References
----------
K. Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
Learning", CCS 2017. J. Bell, K. Bonawitz, A. Gascon, T. Lepoint, M. Raykova,
"Secure Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mpc.backend import Ray, resolve
from mpc.errors import ParameterError

from .client import Client
from .config import VARIANTS, SecAggConfig, make_config
from .cost import SecAggCost
from .encoding import Quantizer
from .graph import GraphChoice, choose, failure_bounds
from .messages import MalformedMessage
from .parties import party_cost, party_program
from .rounds import ROUNDS, Round
from .server import Server
from .simulation import SimulationResult, dropout_schedule, simulate

__all__ = [
    "AggregateResult", "Client", "GraphChoice", "MalformedMessage", "Quantizer", "ROUNDS", "Round",
    "SecAggConfig", "SecAggCost", "Server", "SimulationResult", "VARIANTS", "aggregate", "choose",
    "dropout_schedule", "failure_bounds", "make_config", "party_cost", "party_program", "simulate",
]

View = list[tuple[int, str, tuple[np.ndarray, ...]]]
"""What the server received: ``(client, round name, message)`` in arrival order."""


@dataclass
class AggregateResult:
    """Result of :func:`aggregate`; unpacks as ``total, cost = result``.

    ``total`` is the sum over ``survivors``; :attr:`mean` divides it by their number.
    ``view`` is what the server received (``aggregate(record_view=True)``),
    ``server`` the server's final state (simulation), ``run`` the Party
    runtime's run (``runtime="parties"``).
    """

    total: np.ndarray
    survivors: list[int]
    dropped: dict[int, str]
    clipped: list[int]
    error_bound: float
    config: SecAggConfig
    cost: SecAggCost
    run: Any = field(default=None, repr=False)
    view: View | None = field(default=None, repr=False)
    server: Server | None = field(default=None, repr=False)

    def __iter__(self):
        yield self.total
        yield self.cost

    @property
    def mean(self) -> np.ndarray:
        """``total / len(survivors)`` (float64), for float updates.

        Its error bound is ``error_bound / len(survivors)``. Integer updates are
        summed modulo 2^bits, a sum that may have wrapped: their mean is refused.
        """
        if self.total.dtype.kind != "f":
            raise ParameterError("integer updates are summed modulo 2^bits: the ring sum has no "
                                 "mean; divide total by len(survivors) if it cannot have wrapped")
        return self.total / len(self.survivors)


def _schedule(n: int, dropouts: float | Mapping[int, int] | Sequence[int] | None,
              seed: int) -> dict[int, int]:
    if dropouts is None:
        return {}
    if isinstance(dropouts, (float, int)) and not isinstance(dropouts, bool):
        return dropout_schedule(n, float(dropouts), seed=seed)
    if isinstance(dropouts, bool):
        raise ParameterError(f"dropouts must be a rate, a list of clients or {{client: round}}, not {dropouts}")
    if isinstance(dropouts, Mapping):
        out = {int(u): int(r) for u, r in dropouts.items()}
    else:
        out = {int(u): 2 for u in dropouts}
    if any(not 0 <= u < n or not 0 <= r <= 3 for u, r in out.items()):
        raise ParameterError("dropouts name clients in [0, n) and rounds in 0..3")
    return out


def aggregate(updates: Sequence[np.ndarray], *, variant: str = "secagg",
              dropouts: float | Mapping[int, int] | Sequence[int] | None = None,
              clip: float = 8.0, frac_bits: int = 16, bits: int | None = None,
              dropout_bound: float | None = None, corruption: float = 0.1,
              threshold: int | None = None, degree: int | None = None,
              runtime: str = "simulation", transcript: Any = None, seed: int = 0,
              timeout: float = 60.0, record_view: bool = False,
              backend: str | Ray = "local") -> AggregateResult:
    """Securely sum client vectors; the server learns only the survivors' total.

    Parameters
    ----------
    updates:
        One 1-D vector per client, all the same length. Floats are clipped to
        ``[-clip, clip]`` and quantised with ``frac_bits`` fractional bits;
        integer vectors are taken as elements of Z_2^bits (``bits`` default 32)
        and summed exactly modulo 2^bits.
    variant:
        ``"secagg"`` or ``"secagg+"``.
    dropouts:
        Simulated dropouts: a rate (clients spread over the four rounds), a list
        of clients (they drop before sending their masked input, the costliest
        case), or ``{client: round}``.
    bits:
        Ring size; for floats it defaults to the smallest that cannot overflow
        and a smaller one is refused.
    dropout_bound, corruption:
        Bounds the parameters are chosen for (default dropout bound: the
        simulated rate).
    threshold, degree:
        The Shamir threshold t and the neighbour count k (SecAgg+; SecAgg's k
        is n - 1), chosen from the bounds when omitted. Given ones are refused
        (:class:`~mpc.errors.ParameterError`) unless t is a strict majority of
        the k + 1 shareholders and both failure probabilities meet their
        targets (:func:`make_config`).
    runtime:
        ``"simulation"`` (one process, vectorised server) or ``"parties"``
        (:func:`mpc.run` with n + 1 parties, for small n; ``transcript`` is
        passed on).
    seed:
        Chooses which clients drop for a rate (simulation data, not a secret).
    record_view:
        Keep every message the server received, as received, in ``view``
        (both runtimes; over parties, also the empty message of a client that
        announces it leaves).
    backend:
        For the simulation: ``"local"`` or ``"ray"`` / :class:`mpc.backend.Ray`,
        the clients in Ray actors (:func:`simulate`; docs/ray.md).

    Returns
    -------
    AggregateResult
        ``total``, the sum (float64 for float updates, uint64 ring sum for
        integers; ``mean`` divides it by the survivors), the survivors,
        per-client clipped counts, the quantisation error bound, the
        configuration and the cost (:class:`SecAggCost`: means and maxima per
        client, server bytes and totals; the same definitions for both runtimes).
    """
    if len(updates) < 2:
        raise ParameterError(f"secure aggregation needs at least 2 clients, got {len(updates)}")
    arrays = [np.asarray(u) for u in updates]
    dim = arrays[0].size
    if any(a.ndim != 1 or a.size != dim for a in arrays) or dim == 0:
        raise ParameterError("every update must be a non-empty 1-D vector of the same length")
    n = len(arrays)
    schedule = _schedule(n, dropouts, seed)
    bound = dropout_bound if dropout_bound is not None else len(schedule) / n
    quant, bits, values, clipped = _encode(arrays, clip, frac_bits, bits)
    config = make_config(n, dim, variant=variant, bits=bits, dropout=bound, corruption=corruption,
                         threshold=threshold, degree=degree)
    if runtime not in ("simulation", "parties"):
        raise ParameterError(f"unknown runtime {runtime!r}: use 'simulation' or 'parties'")
    if runtime == "parties" and resolve(backend) is not None:
        raise ParameterError("backend='ray' runs the simulation's clients on Ray; "
                             "runtime='parties' runs its own processes: choose one")
    view: View | None = [] if record_view else None
    server: Server | None = None
    if runtime == "simulation":
        sim = simulate(config, values, schedule,
                       tamper=None if view is None else _recorder(view), backend=backend)
        ring, survivors, dropped, cost, run = sim.total, sim.survivors, sim.dropped, sim.cost, None
        server = sim.server
    else:
        ring, survivors, cost, run = _over_parties(config, values, schedule, timeout, transcript,
                                                   view)
        dropped = {u: "dropped" for u in range(n) if u not in set(survivors)}
    if quant is None:
        total = np.asarray(ring, dtype=np.uint64)
        error = 0.0
    else:
        total = quant.decode(ring, bits)
        error = quant.error_bound(len(survivors))
    return AggregateResult(total=total, survivors=list(survivors), dropped=dropped, clipped=clipped,
                           error_bound=error, config=config, cost=cost, run=run, view=view,
                           server=server)


def _encode(arrays: list[np.ndarray], clip: float, frac_bits: int, bits: int | None
            ) -> tuple[Quantizer | None, int, list[np.ndarray], list[int]]:
    """Integer updates as they are (32-bit ring by default); floats clipped and quantized.

    Returns (the quantizer or None, the ring's bits, the ring vectors, clipped counts).
    """
    n = len(arrays)
    if all(a.dtype.kind in "ui" for a in arrays):
        return None, 32 if bits is None else bits, arrays, [0] * n
    quant = Quantizer(clip, frac_bits)
    bits = quant.bits_needed(n) if bits is None else bits
    quant.check_bits(n, bits)
    encoded = [quant.encode(a, bits) for a in arrays]
    return quant, bits, [e[0] for e in encoded], [e[1] for e in encoded]


def _recorder(view: View) -> Callable[[int, int, tuple], tuple]:
    """A simulation tamper hook that only records what the server receives."""
    def record(r: int, u: int, message: tuple) -> tuple:
        view.append((u, ROUNDS[r].name, tuple(np.asarray(a).copy() for a in message)))
        return message
    return record


def _over_parties(config: SecAggConfig, values: Sequence[np.ndarray], schedule: dict[int, int],
                  timeout: float, transcript: Any, view: View | None) -> tuple:
    """One session under :func:`mpc.run` with n + 1 parties: (ring sum, survivors, cost, run)."""
    import mpc
    run = mpc.run(party_program, parties=config.n + 1, inputs=[None, *values],
                  kwargs={"config": config, "drops": schedule, "report": True},
                  preprocessing=None, timeout=timeout, transcript=transcript,
                  record_view=view is not None)
    if view is not None:
        view.extend((frm - 1, tag.rsplit("/", 1)[-1], tuple(arrays))
                    for frm, tag, arrays in (run.views or [[]])[0] if frm >= 1)
    ring, survivors = run.outputs[0][:2]
    return ring, survivors, party_cost(run), run
