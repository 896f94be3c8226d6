"""Concilium benchmarks: ``python -m bench NAME... [--json FILE] [--quick]``.

Each module in this package (other than ``common`` and the runner) defines
``BENCHMARKS``, a mapping from a benchmark name to a function
``fn(quick: bool) -> list[dict]`` returning records made by
:func:`bench.common.record`. Benchmarks import only the public API.
"""
