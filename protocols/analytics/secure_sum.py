"""One secure sum of integer vectors mod 2^k, through SecAgg or SecAgg+.

The analytics queries hand every client's encoded vector here; this runs the
four-round protocol of :mod:`protocols.secagg` in one process (clients that
are listed as dropped go silent before sending their masked input, the
costliest point) and returns the survivors' total with the measured cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mpc.errors import ParameterError, ProtocolAbort
from mpc.rand import PRG, derive_seed
from mpc.backend import Ray
from protocols.secagg import make_config, simulate

#: Dropout bound the sessions are configured for: the sum survives up to this fraction.
DROPOUT_BOUND = 0.3
#: Fraction of clients assumed to collude with the server.
CORRUPTION_BOUND = 0.1
#: Up to this many clients the complete graph is used even for SecAgg+.
_SMALL = 8


@dataclass
class SumOutcome:
    """Total of the survivors (uint64, mod 2^bits) and what the sum cost."""

    total: np.ndarray
    survivors: np.ndarray           # bool per client
    bits: int
    rounds: int
    bytes_per_client: float
    server_bytes: int
    server_seconds: float
    client_seconds: float
    threshold: int
    server_view: list[np.ndarray] = field(default_factory=list, repr=False)


def _variant(n: int, variant: str) -> str:
    if variant not in ("secagg", "secagg+"):
        raise ParameterError(f"unknown variant {variant!r}: use 'secagg' or 'secagg+'")
    return "secagg" if n <= _SMALL else variant


def min_noisy_clients(n: int) -> int:
    """Fewest honest survivors a sum of ``n`` clients can have: the noise is planned for them.

    The sum is refused when more than ``DROPOUT_BOUND * n`` clients drop, and up
    to ``CORRUPTION_BOUND * n`` survivors may collude with the server and
    subtract their own noise.
    """
    if n < 2:
        raise ParameterError(f"a secure sum needs at least 2 clients, got {n}")
    return max(1, n - int(DROPOUT_BOUND * n) - int(CORRUPTION_BOUND * n))


def secure_sum(values: np.ndarray, bits: int, alive: np.ndarray, *, variant: str = "secagg+",
               seed: bytes, keep_view: bool = False,
               progress: Callable[[int], None] | None = None,
               backend: str | Ray = "local") -> SumOutcome:
    """Sum the rows of ``values`` (uint64 below 2^bits) of the clients with ``alive`` set.

    ``progress(1)`` is called after each client's step of each round (see ``simulate``).
    ``backend="ray"`` runs the clients' protocol steps in Ray actors (the same sum).
    """
    n, dim = values.shape
    if int(np.count_nonzero(~alive)) > int(DROPOUT_BOUND * n):
        raise ParameterError(
            f"{int(np.count_nonzero(~alive))} of {n} clients drop, more than the "
            f"{DROPOUT_BOUND:.0%} the secure sum is configured to survive")
    # configured for exactly the drops admitted above, int(DROPOUT_BOUND * n): rounding the
    # fraction up instead would ask n = 4 to survive 2 drops, which no threshold that is a
    # majority of the shareholders can (protocols.secagg.config.check_majority)
    config = make_config(n, dim, variant=_variant(n, variant), bits=bits,
                         dropout=int(DROPOUT_BOUND * n) / n, corruption=CORRUPTION_BOUND,
                         session=derive_seed(seed, "session"))
    ring = values.astype(config.dtype)
    drops = {int(u): 2 for u in np.flatnonzero(~alive)}
    view: list[np.ndarray] = []
    tamper: Callable[[int, int, tuple], tuple] | None = None
    if keep_view:
        def tamper(r: int, u: int, message: tuple) -> tuple:
            if r == 2:
                view.append(np.array(message[0], copy=True))
            return message
    sim = simulate(config, list(ring), drops, tamper=tamper,
                   server_prg=PRG(derive_seed(seed, "server")), progress=progress, backend=backend)
    survivors = np.zeros(n, dtype=bool)
    survivors[np.asarray(sim.survivors, dtype=np.int64)] = True
    planned = n - int(DROPOUT_BOUND * n)
    if int(survivors.sum()) < planned:  # e.g. malformed messages dropped more clients
        raise ProtocolAbort(f"only {int(survivors.sum())} of {n} clients survived the secure sum, "
                            f"fewer than the {planned} its noise is planned for: the total is not "
                            "released")
    received = sum(sim.cost.round_bytes.values())
    return SumOutcome(total=np.asarray(sim.total, dtype=np.uint64), survivors=survivors,
                      bits=bits, rounds=sim.cost.rounds, bytes_per_client=sim.cost.bytes_per_client,
                      server_bytes=int(received), server_seconds=sim.cost.server_seconds,
                      client_seconds=sim.cost.client_seconds, threshold=config.threshold,
                      server_view=view)
