"""The two-server norm-checked aggregator for federated training (layer: ml).

Wraps :mod:`protocols.twoserver` behind the :class:`~ml.aggregators.Aggregator`
interface: every client secret-shares ``[w_k delta_k, w_k]`` between two
non-colluding servers, which check ``||w_k delta_k|| <= norm_bound`` in MPC,
drop the violators without seeing any update, and open only the sum of the
accepted vectors (and who was accepted). A model-poisoning client that scales
its update is thereby dropped, while the servers learn no individual update.
"""

from __future__ import annotations

import time
import warnings
from typing import Iterable

from mpc.errors import ProtocolAbort
from mpc.preprocessing.dealer import TrustedDealerWarning
from protocols import twoserver

from .aggregators import AggregationResult, Aggregator


class TwoServerAggregator(Aggregator):
    """Two-server secret-shared aggregation with an L2 norm check (Prio / ELSA style).

    Parameters
    ----------
    norm_bound:
        Public bound B on the L2 norm of each client's weighted update (the
        vector without its last, weight, entry); a client above it is dropped.
    frac_bits:
        Fixed-point precision of the shares (16).
    preprocessing:
        Source of the servers' Beaver triples: ``"dealer"`` (a third party that
        must collude with neither server), ``"ot"`` or ``"he"`` (dealer-free).

    Security
    --------
    See :mod:`protocols.twoserver`: semi-honest, non-colluding servers; each
    server learns who was accepted and the sum of the accepted vectors.

    Cost
    ----
    Per client 16 d bytes up (8 d to each server) and 8 d down (the model);
    between the servers, a constant number of rounds (``server_state["cost"]``).
    """

    name = "twoserver"

    def __init__(self, norm_bound: float = 1.0, frac_bits: int = 16,
                 preprocessing: str = "dealer") -> None:
        super().__init__()
        self.norm_bound, self.frac_bits, self.preprocessing = float(norm_bound), frac_bits, preprocessing

    def aggregate(self, vectors: dict, dropped: Iterable[int] = ()) -> AggregationResult:
        ids, drop, vecs = self._check(vectors, dropped)
        survivors = [i for i in ids if i not in drop]
        if not survivors:
            raise ProtocolAbort("twoserver: every client of the round dropped out")
        t0 = time.perf_counter()
        with warnings.catch_warnings():   # the dealer's trust is stated in the docstring
            warnings.simplefilter("ignore", TrustedDealerWarning)
            res = twoserver.aggregate({i: vecs[i] for i in survivors}, self.norm_bound,
                                      self.value_bound, norm_dims=self.dim - 1,
                                      frac_bits=self.frac_bits, preprocessing=self.preprocessing)
        secs = time.perf_counter() - t0
        if not res.accepted:
            raise ProtocolAbort(f"twoserver: all {len(survivors)} updates exceed the norm bound")
        return AggregationResult(res.total, res.accepted, bytes_per_client=3.0 * 8 * self.dim,
                                 server_seconds=secs, client_seconds=0.0,
                                 server_state={"total": res.total, "rejected": res.rejected,
                                               "cost": res.cost})


__all__ = ["TwoServerAggregator"]
