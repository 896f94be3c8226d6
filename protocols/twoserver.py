"""Two-server norm-checked secure aggregation, Prio / ELSA style (layer: protocols).

Each client splits its vector into two additive shares in Z_2^64 (fixed
point) and sends one to each of two servers that do not collude. The servers
run an MPC on the shares with the core's :class:`~mpc.SharedTensor`:

1. ``X``: the (n, d) shared matrix of the clients' vectors (local: each
   server wraps the shares it received).
2. ``s_k = sum_j X[k, j]^2`` for the first ``norm_dims`` entries of each row:
   one Beaver product per entry (one round, with the fixed-point truncation
   a second), then local sums.
3. ``ok_k = [s_k <= B^2]``: a secure comparison of each squared norm with the
   public bound (the core's bit decomposition and carry circuit).
4. The bits ``ok`` are opened (one round): the servers learn which clients
   are rejected, which the protocol's output reveals anyway.
5. Each server sums its shares of the accepted rows (local) and the servers
   open the sum (one round).

Clients that send vectors of too large a norm (e.g. a model-poisoning client
that scales its update) are dropped without either server seeing any
update, as in Prio (Corrigan-Gibbs and Boneh 2017) and ELSA (Rathee et al.,
IEEE S&P 2023), whose norm-bound check this is; ELSA makes it secure against
a malicious server with client-supplied correlated randomness, which is not
done here.

Security
--------
Semi-honest servers that do not collude (either alone sees only uniformly
random shares and the opened values of steps 4-5); clients may be
malicious in the vectors they send only within the public ``value_bound``,
which the fixed-point range needs and which the servers do NOT check (they
see shares only; :func:`aggregate` checks it on the plaintexts it is given).
A client that shares an entry outside it can wrap its squared norm modulo
2^64 and pass the check (e.g. ``2^16`` with ``frac_bits=16`` squares to 0),
so against scaled updates beyond ``value_bound`` this is no defence without
a range proof per entry (Prio's SNIPs, ELSA); nor in the protocol
messages (a client sending inconsistent shares is not detected: shares are
all consistent by construction in additive sharing). The two servers learn
the accepted set and the sum of the accepted vectors. With the default
``preprocessing="dealer"`` a third party deals the Beaver triples and
comparison material and must not collude with either server; ``"ot"`` or
``"he"`` make the two servers generate them themselves.

Cost
----
Clients: 8 d bytes to each server. Servers: those of the core's shared
product of n d entries, n comparisons, the opening of n bits and of d
values, a constant number of rounds (measured in ``TwoServerResult.cost``).
Precision: the squared norm is computed with ``frac_bits`` fractional bits,
so a norm within about ``d 2^-frac_bits / (2 B)`` of the bound may be
classified either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc import Party, SharedTensor, run
from mpc.arith.fixed import FixedPoint
from mpc.errors import ParameterError
from mpc.rand import PRG


def client_shares(vector: np.ndarray, frac_bits: int = 16, prg: PRG | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A client's two additive shares of ``vector`` (fixed point in Z_2^64), one per server.

    The mask comes from ``prg`` or, by default, a PRG freshly keyed from the OS CSPRNG.
    """
    enc = FixedPoint(frac_bits).encode(np.asarray(vector, dtype=np.float64).reshape(-1))
    mask = (prg or PRG.fresh()).uint64(enc.size)
    return mask, enc - mask


def _server(party: Party, shares: np.ndarray, frac_bits: int, value_bound: float,
            norm_bound: float, norm_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """What each server runs: (accepted bits, sum of the accepted rows)."""
    x = SharedTensor(party, shares, frac_bits, bound=value_bound)
    head = x[:, :norm_dims]
    sq = (head * head).sum(axis=1)
    # every squared norm is below max_product (checked in aggregate): a larger bound accepts
    # all, and clamping keeps the public constant inside the fixed-point encoding's range
    ok = sq <= min(norm_bound * norm_bound, FixedPoint(frac_bits).max_product)
    accepted = np.asarray(ok.reveal()) > 0.5
    mine = np.asarray(np.sum(shares[accepted], axis=0, dtype=np.uint64)) if accepted.any() \
        else np.zeros(shares.shape[1], dtype=np.uint64)
    total = SharedTensor(party, mine, frac_bits, bound=value_bound * max(1, int(accepted.sum())))
    return accepted, np.asarray(total.reveal())


@dataclass
class TwoServerResult:
    """The sum of the accepted vectors, who was accepted, and the servers' cost and views."""

    total: np.ndarray
    accepted: list[int]
    rejected: list[int]
    cost: Any
    views: list[Any] | None


def aggregate(vectors: dict[int, np.ndarray], norm_bound: float, value_bound: float, *,
              norm_dims: int | None = None, frac_bits: int = 16, preprocessing: str = "dealer",
              record_view: bool = False, timeout: float = 60.0) -> TwoServerResult:
    """Run the protocol for ``vectors`` (client id -> vector): the sum of those whose first
    ``norm_dims`` entries (default: all) have L2 norm at most ``norm_bound``.

    Every entry must satisfy ``|x| <= value_bound`` (the public range of the encoding).
    """
    ids = sorted(vectors)
    if not ids:
        raise ParameterError("twoserver: no client vectors")
    rows = [np.asarray(vectors[k], dtype=np.float64).reshape(-1) for k in ids]
    d = rows[0].size
    if any(r.size != d for r in rows):
        raise ParameterError("twoserver: every client's vector must have the same length")
    for k, r in zip(ids, rows):
        if not np.all(np.isfinite(r)) or np.abs(r).max() > value_bound:
            raise ParameterError(f"twoserver: client {k}'s vector leaves the public range "
                                 f"|x| <= {value_bound:g}")
    nd = d if norm_dims is None else int(norm_dims)
    if not 1 <= nd <= d or not norm_bound > 0:
        raise ParameterError("twoserver: need 1 <= norm_dims <= d and a positive norm_bound")
    if nd * value_bound ** 2 >= FixedPoint(frac_bits).max_product:
        raise ParameterError(f"twoserver: a squared norm up to {nd * value_bound ** 2:g} does not fit "
                             f"the fixed-point range with frac_bits={frac_bits}")
    pairs = [client_shares(r, frac_bits) for r in rows]
    s0 = np.stack([p[0] for p in pairs])
    s1 = np.stack([p[1] for p in pairs])
    res = run(_server, parties=2, inputs=[s0, s1], args=(frac_bits, value_bound, norm_bound, nd),
              preprocessing=preprocessing, frac_bits=frac_bits, record_view=record_view,
              timeout=timeout)
    accepted_bits, total = res.outputs[0]
    accepted = [k for k, a in zip(ids, accepted_bits) if a]
    rejected = [k for k, a in zip(ids, accepted_bits) if not a]
    return TwoServerResult(np.asarray(total, dtype=np.float64), accepted, rejected, res.cost,
                           res.views)


__all__ = ["TwoServerResult", "aggregate", "client_shares"]
