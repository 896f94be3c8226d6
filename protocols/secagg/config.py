"""Public parameters of one SecAgg session, chosen and checked up front (layer: protocols).

:func:`make_config` turns (n clients, vector length, variant, dropout and
corruption bounds, ring size) into a frozen :class:`SecAggConfig` that the
server and every client hold. The neighbour degree k and the Shamir threshold
t come from :func:`protocols.secagg.graph.choose` (Bell et al. 2020): SecAgg is
the complete graph (k = n - 1); SecAgg+ the smallest even k whose privacy and
correctness failure probabilities (reported) meet 2^-sigma and 2^-eta.

Every configuration, however it is built, obeys the majority rule
:func:`check_majority`: t is more than half of a client's k + 1 shareholders,
so that a server lying about who survived cannot collect t shares of both of
one client's secrets (see the Security section of :mod:`protocols.secagg`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpc.errors import ParameterError
from mpc.rand import random_seed

from .encoding import MAX_BITS, ring_dtype
from .graph import GraphChoice, best_threshold, choose, failure_bounds

VARIANTS = ("secagg", "secagg+")


def check_majority(threshold: int, degree: int) -> None:
    """Refuse a threshold that is not a strict majority of the ``degree + 1`` shareholders.

    A client's shares are held by its k = ``degree`` neighbours and itself. A
    server that tells t - 1 neighbours "u is alive" and t others "u dropped"
    gets t shares of u's self-mask seed (counting u's own) and t of its mask
    key, and unmasks u's input, whenever 2t <= k + 1. Honest holders reveal
    one of the two shares each, so 2t > k + 1 leaves the server short of one.
    """
    if 2 * threshold <= degree + 1:
        raise ParameterError(
            f"threshold t = {threshold} is not a strict majority of the {degree + 1} "
            f"shareholders (2t <= k + 1 with k = {degree} neighbours): a server that tells some "
            f"shareholders a client dropped and the others it is alive would get t shares of "
            f"both its secrets and unmask its input; need t >= {(degree + 1) // 2 + 1}")


@dataclass(frozen=True)
class SecAggConfig:
    """Everything the parties agree on before round 0 (all public)."""

    n: int
    dim: int
    bits: int
    threshold: int
    degree: int
    variant: str
    session: bytes
    dropout: float
    corruption: float
    privacy_failure: float
    correctness_failure: float

    def __post_init__(self) -> None:
        if not 2 <= self.threshold <= min(self.degree, self.n - 1) + 1:
            raise ParameterError(f"threshold {self.threshold} outside [2, {self.degree + 1}] "
                                 f"for {self.degree} neighbours")
        check_majority(self.threshold, self.degree)

    @property
    def dtype(self) -> np.dtype:
        return ring_dtype(self.bits)

    @property
    def modulus_mask(self) -> int:
        return (1 << self.bits) - 1

    @property
    def complete(self) -> bool:
        return self.degree >= self.n - 1


def _check_degree(n: int, degree: int, variant: str) -> int:
    """The neighbour count k a requested ``degree`` gives, or :class:`ParameterError`."""
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise ParameterError(f"degree (the neighbour count) must be an integer, got {degree!r}")
    if degree >= n - 1:
        return n - 1
    if variant == "secagg":
        raise ParameterError(f"SecAgg pairs every client (degree n - 1 = {n - 1}), not {degree}: "
                             "use variant='secagg+' for fewer neighbours")
    if degree < 2 or degree % 2:
        raise ParameterError(f"the SecAgg+ degree (neighbour count) must be even and at least 2, "
                             f"or at least n - 1 = {n - 1}; got {degree}")
    return int(degree)


def make_config(n: int, dim: int, *, variant: str = "secagg", bits: int = 32,
                dropout: float = 0.1, corruption: float = 0.1, threshold: int | None = None,
                degree: int | None = None, sigma: int = 40, eta: int = 20,
                session: bytes | None = None) -> SecAggConfig:
    """Choose and check the parameters of a session.

    Parameters
    ----------
    n, dim:
        Number of clients and length of each input vector.
    variant:
        ``"secagg"`` (complete graph, Bonawitz et al. 2017) or ``"secagg+"``
        (random k-regular graph, Bell et al. 2020).
    bits:
        The ring is Z_2^bits (1..64); for floats use :class:`Quantizer.bits_needed`.
    dropout, corruption:
        Bounds on the fraction of clients that drop out during the whole run and
        that collude with the server. The protocol is correct while at most
        ``dropout * n`` drop and private while at most ``corruption * n`` collude
        (with the reported failure probabilities for SecAgg+).
    threshold:
        Override the Shamir threshold t (refused unless it is a strict majority
        of the k + 1 shareholders, :func:`check_majority`, and its failure
        bounds meet the same targets as the default choice).
    degree:
        Override the neighbour count k (SecAgg+ only: an even number from 2,
        or n - 1 and above for the complete graph; SecAgg is always n - 1).
        Without ``threshold``, t is then the largest that meets the targets;
        refused if none does.
    sigma, eta:
        SecAgg+ targets: privacy failure at most 2^-sigma, correctness 2^-eta.
    """
    if variant not in VARIANTS:
        raise ParameterError(f"unknown variant {variant!r}: use 'secagg' or 'secagg+'")
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ParameterError(f"secure aggregation needs at least 2 clients, got {n!r}")
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ParameterError(f"the vector length must be a positive integer, got {dim!r}")
    if not 1 <= bits <= MAX_BITS:
        raise ParameterError(f"ring bits must be in [1, {MAX_BITS}], got {bits}")
    n = int(n)
    choice: GraphChoice | None
    if degree is None:
        choice = choose(n, dropout, corruption, sigma=sigma, eta=eta, complete=variant == "secagg")
    else:
        k = _check_degree(n, degree, variant)
        choice = best_threshold(n, k, dropout, corruption, sigma, eta)
        if choice is None and threshold is None:
            raise ParameterError(
                f"degree {degree}: no threshold t with 2t > {k + 1} meets privacy failure "
                f"2^-{sigma} and correctness failure 2^-{eta} for n = {n} at a {dropout:.0%} "
                f"dropout and {corruption:.0%} corruption bound; omit degree to let it be chosen")
        choice = choice or GraphChoice(n, k, 0, 1.0, 1.0)
    if threshold is not None:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, np.integer)):
            raise ParameterError(f"threshold (the Shamir threshold t) must be an integer, got {threshold!r}")
        holders = choice.k + 1
        check_majority(int(threshold), choice.k)
        privacy, correctness = failure_bounds(n, choice.k, int(threshold), dropout, corruption)
        if not 2 <= threshold <= holders or privacy > 2.0 ** -sigma or correctness > 2.0 ** -eta:
            default = f"t = {choice.threshold}" if choice.threshold else "none"
            raise ParameterError(
                f"threshold {threshold} is unsafe or cannot tolerate the dropouts: with {holders} "
                f"shareholders, a {corruption:.0%} corruption bound and a {dropout:.0%} dropout "
                f"bound it gives privacy failure {privacy:.1e} (target 2^-{sigma}) and "
                f"correctness failure {correctness:.1e} (target 2^-{eta}); "
                f"the chosen default is {default}")
        choice = GraphChoice(n, choice.k, int(threshold), privacy, correctness)
    return SecAggConfig(n=n, dim=int(dim), bits=int(bits), threshold=choice.threshold,
                        degree=choice.k,
                        variant=variant, session=session or random_seed(),
                        dropout=float(dropout), corruption=float(corruption),
                        privacy_failure=choice.privacy_failure,
                        correctness_failure=choice.correctness_failure)
