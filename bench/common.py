"""Helpers shared by the benchmarks: timing, records, Markdown tables."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def median_time(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, float, Any]:
    """Run ``fn`` ``repeat`` times; return (median seconds, spread, last result).

    The spread is max - min over the runs.
    """
    times = []
    result = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times) - min(times), result


def record(
    name: str,
    params: dict[str, Any],
    seconds: float | None,
    baseline_seconds: float | None = None,
    bytes_per_party: float | None = None,
    rounds: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One measurement in the JSON schema every benchmark shares."""
    ratio = None
    if seconds is not None and baseline_seconds:
        ratio = seconds / baseline_seconds
    rec = {
        "name": name,
        "params": params,
        "seconds": seconds,
        "baseline_seconds": baseline_seconds,
        "ratio": ratio,
        "bytes_per_party": bytes_per_party,
        "rounds": rounds,
    }
    rec.update(extra)
    return rec


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def markdown_table(records: list[dict[str, Any]]) -> str:
    """Render records as a Markdown table (extra fields become columns)."""
    if not records:
        return "(no records)"
    base = ["name", "params", "seconds", "baseline_seconds", "ratio", "bytes_per_party", "rounds"]
    extra: list[str] = []
    for r in records:
        for k in r:
            if k not in base and k not in extra:
                extra.append(k)
    cols = base + extra
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in records:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)
