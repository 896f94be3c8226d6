"""Plan the offline phase: record what a program asks for, produce it all first, report online cost apart (layer: mpc core).

A program asks its source for triples one by one as it runs. To produce
everything *before* the online phase (in bulk, one OT batch per kind and
shape):

1. :func:`record_plan` runs the program once with a recording source and
   returns the :class:`Plan`: every request key with its count, in order.
   Run it on *dummy inputs of the real shapes*: the recording run uses a
   trusted dealer, which sees its (throw-away) triples.
2. :func:`planned` wraps a source (``"ot"``, ``"he"``, ``"dealer"`` or a
   factory) so that each party, before running the program, prefetches the
   whole plan inside ``party.phase("offline")``, synchronises once, and seals
   the source: a request beyond the plan raises
   :class:`~mpc.errors.PreprocessingExhausted` saying how many were needed.
3. :func:`online_only` removes the offline messages from a run's
   :class:`~mpc.transport.stats.Cost` and renumbers rounds from the end of the
   offline phase: the online cost, comparable with a dealer run's.

Example::

    plan = record_plan(program, 2, inputs=dummy)
    res = mpc.run(program, 2, inputs=real, preprocessing=planned("ot", plan))
    res.cost.phases()["offline"], online_only(res.cost).rounds

A plan is public (kinds, shapes and counts, no values): :func:`save_plan`
writes it as JSON, :func:`load_plan` reads it back, and ``planned`` takes the
path too, so one recording serves many runs and processes. The file::

    {"format": "concilium-plan", "version": 1,
     "items": [{"kind": "mul", "args": [[50], [50]], "count": 3},
               {"kind": "trunc", "args": [[50], 16], "count": 3}]}

``args`` per kind: ``mul``/``matmul``: the two operand shapes; ``trunc``: the
shape and the fractional bits; ``binary``/``dabit``: the shape (JSON lists
become the tuples of the in-memory :data:`Plan`).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np

from ..errors import ParameterError
from ..transport.stats import Cost
from .base import Preprocessing, Shares
from .dealer import TrustedDealer
from .source import PartyFactory, Source, resolve
from .store import offline

if TYPE_CHECKING:
    from ..party import Party

Plan = list[tuple[tuple[Any, ...], int]]
"""``[(key, count), ...]``: key = ``("mul", sa, sb)``, ``("trunc", shape, f)``, ``("binary", shape)``..."""


PLAN_FORMAT = "concilium-plan"
_ARITY = {"mul": ("shape", "shape"), "matmul": ("shape", "shape"), "trunc": ("shape", "int"),
          "binary": ("shape",), "dabit": ("shape",)}


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(_count(d, 0) for d in value):
        raise ParameterError(f"{where}: a shape must be a list of non-negative integers")
    return tuple(int(d) for d in value)


def _count(value: Any, low: int, high: int | None = None) -> bool:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return False
    return int(value) >= low and (high is None or int(value) <= high)


def normalize_plan(plan: Any) -> Plan:
    """``plan`` checked, with every shape a tuple (a plan that went through JSON by hand works too)."""
    out: Plan = []
    if not isinstance(plan, (list, tuple)):
        raise ParameterError("a plan is a list of (key, count) pairs")
    for i, item in enumerate(plan):
        where = f"plan item {i}"
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ParameterError(f"{where}: expected (key, count)")
        key, count = item
        if not isinstance(key, (list, tuple)) or not key or not isinstance(key[0], str) \
                or key[0] not in _ARITY:
            raise ParameterError(f"{where}: the key must start with one of {sorted(_ARITY)}")
        kind, args = key[0], list(key[1:])
        if len(args) != len(_ARITY[kind]):
            raise ParameterError(f"{where}: {kind!r} takes {len(_ARITY[kind])} arguments, got {len(args)}")
        norm: list[Any] = []
        for a, what in zip(args, _ARITY[kind]):
            if what == "shape":
                norm.append(_shape(a, where))
            elif _count(a, 0, 62):
                norm.append(int(a))
            else:
                raise ParameterError(f"{where}: fractional bits must be an integer in [0, 62]")
        if not _count(count, 1):
            raise ParameterError(f"{where}: the count must be a positive integer")
        out.append(((kind, *norm), int(count)))
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The JSON form of ``plan`` (see the module docstring)."""
    items = [{"kind": key[0], "args": [list(a) if isinstance(a, tuple) else a for a in key[1:]],
              "count": count} for key, count in normalize_plan(plan)]
    return {"format": PLAN_FORMAT, "version": 1, "items": items}


def plan_from_json(data: Any) -> Plan:
    """The :data:`Plan` of a JSON form made by :func:`plan_to_json`."""
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise ParameterError(f"not a plan: expected format {PLAN_FORMAT!r}")
    if data.get("version") != 1:
        raise ParameterError(f"plan version {data.get('version')!r} is not supported (1 is)")
    items = data.get("items")
    if not isinstance(items, list) or not all(isinstance(it, dict) for it in items):
        raise ParameterError("a plan's items must be a list of objects")
    return normalize_plan([([it.get("kind"), *(it.get("args") or [])], it.get("count")) for it in items])


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write ``plan`` to ``path`` as JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plan_to_json(plan), f, indent=1)


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read a plan written by :func:`save_plan`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ParameterError(f"plan file {str(path)!r} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ParameterError(f"plan file {str(path)!r} is not JSON") from None
    except OSError as exc:
        raise ParameterError(f"plan file {str(path)!r} cannot be read: {type(exc).__name__}") from None
    return plan_from_json(data)


class RecordingSource(Preprocessing):
    """Delegates to ``inner`` and counts every request key, in order of first use."""

    def __init__(self, inner: Preprocessing) -> None:
        super().__init__()
        self.inner = inner
        self.counts: Counter[tuple[Any, ...]] = Counter()

    def triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        self.counts[(op, tuple(sa), tuple(sb))] += 1
        return self.inner.triple(op, sa, sb)

    def trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        self.counts[("trunc", tuple(shape), frac_bits)] += 1
        return self.inner.trunc_pair(shape, frac_bits)

    def binary_triple(self, shape: tuple[int, ...]) -> Shares:
        self.counts[("binary", tuple(shape))] += 1
        return self.inner.binary_triple(shape)

    def dabit(self, shape: tuple[int, ...]) -> Shares:
        self.counts[("dabit", tuple(shape))] += 1
        return self.inner.dabit(shape)

    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        self.inner.prefetch(kind, *args, count=count)

    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        return self.inner.triple(op, sa, sb)

    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        return self.inner.trunc_pair(shape, frac_bits)

    def _binary_triple(self, shape: tuple[int, ...]) -> Shares:
        return self.inner.binary_triple(shape)


def record_plan(program: Callable[..., Any], parties: int = 2, **run_kwargs: Any) -> Plan:
    """Run ``program`` once (trusted dealer, throw-away values) and return what it asked for."""
    from ..runner import run

    if "preprocessing" in run_kwargs:
        raise ParameterError("record_plan chooses its own (recording) preprocessing")
    recorders: dict[int, RecordingSource] = {}

    def factory(n: int) -> Callable[[Any], Preprocessing]:
        dealer = TrustedDealer(n, warn=False)   # throw-away values on dummy inputs

        def make(party: Party) -> Preprocessing:
            rec = RecordingSource(dealer.source(party))
            recorders[party.id] = rec
            return rec
        return make

    run(program, parties, preprocessing=factory, **run_kwargs)
    return list(recorders[0].counts.items()) if recorders else []


def planned(source: str | Callable[[int], Callable[[Any], Preprocessing]] | Source,
            plan: Plan | str | os.PathLike[str]) -> Callable[[int], Callable[[Any], Preprocessing]]:
    """A ``preprocessing=`` factory that produces ``plan`` (or the plan saved at that path)
    offline, then seals the source."""
    plan = load_plan(plan) if isinstance(plan, (str, os.PathLike)) else normalize_plan(plan)

    chosen = resolve(source)
    if chosen.none:
        raise ParameterError("planned(...) needs a source to produce the plan: 'dealer', 'ot', 'he' "
                             "or a factory, not None")

    def factory(n: int) -> Callable[[Any], Preprocessing]:
        inner = cast(PartyFactory, chosen.factory(n))   # not None: refused above

        def make(party: Party) -> Preprocessing:
            src = inner(party)
            with offline(party):
                if hasattr(src, "prefetch_plan"):
                    src.prefetch_plan(plan)        # everything in a constant number of batches
                else:
                    for key, count in plan:
                        src.prefetch(key[0], *key[1:], count=count)
                _align_clocks(party)
            if hasattr(src, "seal"):
                src.seal()
            return src
        return make
    return factory


class PlannedOffline(Source):
    """A ``preprocessing=`` object: record the program's plan, produce it offline, report the online cost.

    Before each run, :func:`record_plan` runs the program once with a throw-away
    dealer on the run's own inputs; the run then produces that plan offline with
    ``source`` (:func:`planned`), and its reported cost is :func:`online_only`'s.
    Costs compare with a dealer run's; the recording run's dealer sees its
    (throw-away) triples, so this is for tests and measurements.
    """

    def __init__(self, source: str | Callable[[int], PartyFactory] | Source = "ot") -> None:
        super().__init__(None)
        self.source = source

    def prepare(self, program: Callable[..., Any], n: int, options: dict[str, Any]) -> Source:
        plain = {k: v for k, v in options.items() if k not in ("transcript", "record_view", "preprocessing")}
        chosen = PlannedOffline(self.source)
        chosen._make = planned(self.source, record_plan(program, n, **plain))
        return chosen

    def report(self, cost: Cost) -> Cost:
        return online_only(cost)


def _align_clocks(party: Party) -> None:
    """One exchange of round clocks; every party then starts the online phase at the same round.

    Round clocks are Lamport clocks (a receiver jumps past the sender's), so
    moving one forward to the largest clock any party had is consistent.
    """
    mine = party.clock
    got = party.exchange(party.fresh("offline-done"), np.array([mine], np.int64))
    top = max([mine, *(int(a[0][0]) for a in got.values())])
    party.clock = max(party.clock, top + 1)


def online_only(cost: Cost) -> Cost:
    """``cost`` without the offline phase, rounds counted from the end of a preceding offline phase."""
    offline = [m for m in cost.messages if m.phase == "offline"]
    offset = max((m.round + 1 for m in offline), default=0)
    online = [m for m in cost.messages if m.phase != "offline"]
    if any(m.round < offset for m in online):
        raise ParameterError("the offline phase did not precede the online phase; use planned(...)")
    return Cost(n_parties=cost.n_parties,
                messages=[dataclasses.replace(m, round=m.round - offset) for m in online],
                seconds=cost.seconds - cost.phase_seconds.get("offline", 0.0),
                phase_seconds={k: v for k, v in cost.phase_seconds.items() if k != "offline"},
                phase_rounds={k: v for k, v in cost.phase_rounds.items() if k != "offline"})
