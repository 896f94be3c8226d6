"""Preprocessing choices as objects: what a launcher asks of a run's source of triples (layer: mpc core).

``mpc.run(..., preprocessing=...)``, :func:`mpc.distributed.run_local` and
:func:`~mpc.preprocessing.plan.planned` all accept a name (``"dealer"``,
``"ot"``, ``"he"``), ``None`` or a factory ``f(n) -> (party -> Preprocessing)``;
:func:`resolve` is the one place that turns any of them into a
:class:`Source`. A :class:`Source` may also be given directly: subclass it to
run something before the parties start (:meth:`Source.prepare`, e.g. record a
plan) or to report another cost (:meth:`Source.report`, e.g. the online part).
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ParameterError
from ..transport.stats import Cost
from .base import Preprocessing
from .dealer import TrustedDealer

PartyFactory = Callable[[Any], Preprocessing]
"""Makes one party's :class:`Preprocessing` from its :class:`~mpc.party.Party`."""

NAMES = ("dealer", "ot", "he")
"""The sources a name can choose (the names that travel to another process)."""


class Source:
    """A run's preprocessing: a per-party factory, a name for other processes, hooks.

    Parameters
    ----------
    make:
        ``make(n) -> (party -> Preprocessing)``, or ``None`` for no preprocessing.
    name:
        How a party in another process builds the same source (one of
        :data:`NAMES`), or ``None`` if it only exists in this process.
    """

    def __init__(self, make: Callable[[int], PartyFactory] | None, name: str | None = None) -> None:
        self._make = make
        self.name = name

    @property
    def none(self) -> bool:
        """True if the parties get no preprocessing at all."""
        return self._make is None

    @property
    def is_dealer(self) -> bool:
        """True for the trusted dealer (a network run serves it as its own node)."""
        return self.name == "dealer"

    def factory(self, n: int) -> PartyFactory | None:
        """Each party's source for a run of ``n`` parties (``None``: no preprocessing)."""
        return None if self._make is None else self._make(n)

    def prepare(self, program: Callable[..., Any], n: int, options: dict[str, Any]) -> "Source":
        """The source this run uses, chosen knowing the program and the run's ``options`` (the
        front-end's keyword arguments). Default: itself."""
        return self

    def report(self, cost: Cost) -> Cost:
        """The cost the run reports (default: all of it)."""
        return cost


def _ot(n: int) -> PartyFactory:
    from .ot import ot_factory   # OT extension is loaded only when chosen
    return ot_factory(n)


def _he(n: int) -> PartyFactory:
    from .he import he_factory   # gmpy2 is loaded only when chosen
    return he_factory(n)


def _dealer(n: int) -> PartyFactory:
    return TrustedDealer(n).source


_BY_NAME: dict[str, Callable[[int], PartyFactory]] = {"dealer": _dealer, "ot": _ot, "he": _he}


def resolve(spec: Any) -> Source:
    """The :class:`Source` for ``spec``: a :class:`Source`, a name of :data:`NAMES`, ``None``
    or a factory ``f(n) -> (party -> Preprocessing)``."""
    if isinstance(spec, Source):
        return spec
    if spec is None:
        return Source(None)
    if isinstance(spec, str):
        if spec not in _BY_NAME:
            raise ParameterError(f"unknown preprocessing {spec!r}: use 'dealer', 'ot', 'he', None "
                                 "or a factory")
        return Source(_BY_NAME[spec], spec)
    if callable(spec):
        return Source(spec)
    raise ParameterError(f"unknown preprocessing {spec!r}: use 'dealer', 'ot', 'he', None or a factory")
