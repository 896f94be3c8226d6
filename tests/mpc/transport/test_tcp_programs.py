"""Party programs the TCP tests run in other processes (loaded as ``tests/mpc/transport/test_tcp_programs.py:NAME``).

No tests here: module-level functions only, so a party process can import them.
"""

import os
import time

import numpy as np

import mpc


def _data(seed, shape):
    return np.random.default_rng(seed).uniform(-10, 10, shape)


def arith(party, size=6):
    """The foundation's arithmetic: share, add, public scale, mul, matmul, sum, reveal."""
    x = _data(1, (size,))
    y = _data(2, (size,))
    a = _data(3, (size, 4))
    b = _data(4, (4, 3))
    sx = mpc.share(party, x if party.id == 0 else None, 0, bound=10.0)   # _data: |values| <= 10
    sy = mpc.share(party, y if party.id == party.n - 1 else None, party.n - 1, bound=10.0)
    sa = mpc.share(party, a if party.id == 0 else None, 0, bound=10.0)
    sb = mpc.share(party, b if party.id == 1 else None, 1, bound=10.0)
    with party.phase("compute"):
        added = sx + sy
        scaled = sx * 0.25
        product = sx * sy
        mat = sa @ sb
        total = (sx * sy).sum()
    return {"add": added.reveal(), "scale": scaled.reveal(), "mul": product.reveal(),
            "matmul": mat.reveal(), "sum": total.reveal()}


def arith_plain(size=6):
    x, y, a, b = _data(1, (size,)), _data(2, (size,)), _data(3, (size, 4)), _data(4, (4, 3))
    return {"add": x + y, "scale": x * 0.25, "mul": x * y, "matmul": a @ b, "sum": (x * y).sum()}


def killed_mid_protocol(party):
    """Party 2 dies (no goodbye, no abort) after the first round."""
    party.exchange("first", np.arange(3, dtype=np.uint64))
    if party.id == 2:
        os._exit(3)
    party.exchange("second", np.arange(3, dtype=np.uint64))
    return "unreachable"


def rounds(party, count=4, payload=8):
    """``count`` sequential all-to-all rounds; returns the seconds they took."""
    data = np.zeros(payload, np.uint8)
    party.exchange("warmup", data)
    t0 = time.perf_counter()
    for _ in range(count):
        party.exchange(party.fresh("round"), data)
    return time.perf_counter() - t0
