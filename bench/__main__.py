"""Run named benchmarks: ``python -m bench NAME... [--json FILE] [--quick]``."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Callable

from bench.common import markdown_table

_NOT_BENCHMARKS = {"common", "__main__"}


def discover() -> dict[str, Callable[[bool], list[dict]]]:
    """Collect ``BENCHMARKS`` from every module of the ``bench`` package."""
    found: dict[str, Callable[[bool], list[dict]]] = {}
    pkg_dir = Path(__file__).parent
    for mod in pkgutil.iter_modules([str(pkg_dir)]):
        if mod.name in _NOT_BENCHMARKS or mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{mod.name}")
        for name, fn in getattr(module, "BENCHMARKS", {}).items():
            if name in found:
                raise SystemExit(f"benchmark name {name!r} defined twice")
            found[name] = fn
    return found


def summary(fn: Callable[[bool], list[dict]]) -> str:
    """What a benchmark measures: the first line of its function's docstring."""
    doc = (fn.__doc__ or "").strip()
    if not doc:
        raise SystemExit(f"benchmark {fn.__module__}.{fn.__name__} has no docstring")
    return doc.splitlines()[0]


def listing(available: dict[str, Callable[[bool], list[dict]]]) -> str:
    width = max(map(len, available))
    return "benchmarks:\n" + "\n".join(f"  {name:<{width}}  {summary(fn)}"
                                       for name, fn in sorted(available.items()))


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     epilog=listing(available),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (none: list them)")
    parser.add_argument("--json", metavar="FILE", help="write the records as a JSON list")
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    args = parser.parse_args(argv)
    if not args.names:
        print(listing(available))
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: "
              + ", ".join(sorted(available)), file=sys.stderr)
        return 2
    records: list[dict] = []
    for name in args.names:
        recs = available[name](args.quick)
        records.extend(recs)
        print(f"\n## {name}\n\n{markdown_table(recs)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
