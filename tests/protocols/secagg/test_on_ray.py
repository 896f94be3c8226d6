"""The SecAgg simulator with its clients on Ray: the same result as in one process."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from mpc.backend import Ray
from mpc.rand import PRG
from mpc.errors import ParameterError
from mpc.optional import MissingExtra
from protocols.secagg import aggregate, dropout_schedule, make_config, simulate
from protocols.secagg.on_ray import simulate_on_ray

SEED = bytes(range(16))


def _inputs(n: int, d: int) -> list[np.ndarray]:
    return [np.random.default_rng(u).integers(0, 2 ** 32, d, dtype=np.uint64) for u in range(n)]


def test_secagg_plus_with_dropouts_in_every_round_is_identical_to_local(ray_cluster):
    n, d = 50, 64
    config = make_config(n, d, variant="secagg+", bits=32, dropout=0.2)
    values = _inputs(n, d)
    drops = dropout_schedule(n, 0.2, seed=3)
    assert sorted(set(drops.values())) == [0, 1, 2, 3]
    local = simulate(config, values, drops, server_prg=PRG(SEED))
    on_ray = simulate(config, values, drops, server_prg=PRG(SEED), backend=Ray(chunk=7))
    assert on_ray.total.tobytes() == local.total.tobytes()
    assert on_ray.survivors == local.survivors
    assert on_ray.dropped == local.dropped
    assert on_ray.cost.round_bytes == local.cost.round_bytes
    expected = np.sum([values[u] for u in local.survivors], axis=0) % 2 ** 32
    assert np.array_equal(on_ray.total.astype(np.uint64), expected)
    assert on_ray.memory["worker_mb"] > 0


def test_inputs_made_inside_the_actors(ray_cluster):
    n, d = 12, 16
    config = make_config(n, d, variant="secagg", bits=16, dropout=0.2)

    def value(u: int) -> np.ndarray:
        return np.full(d, u + 1, dtype=np.uint64)

    res = simulate(config, value, {3: 2}, backend="ray")
    assert res.total.tolist() == [sum(range(1, n + 1)) - 4] * d


def _die(index: int, u: int) -> None:
    if index == 2 and u == 7:   # client 7's worker dies in the masked round
        os._exit(1)


def test_a_dying_worker_drops_its_clients_and_the_protocol_recovers(ray_cluster):
    n, d = 24, 8
    config = make_config(n, d, variant="secagg", bits=32, dropout=0.3)
    values = _inputs(n, d)
    res = simulate_on_ray(config, values, {}, Ray(cpus=2, actors=4, chunk=2), fault=_die,
                          server_prg=PRG(SEED))
    lost = set(range(n)) - set(res.survivors)
    assert lost == set(range(6, 12))      # the worker of client 7 held clients 6..11
    assert all("masked" in res.dropped[u] for u in lost)
    expected = np.sum([values[u] for u in res.survivors], axis=0) % 2 ** 32
    assert np.array_equal(res.total.astype(np.uint64), expected)


def test_aggregate_passes_the_backend_on(monkeypatch):
    updates = [np.random.default_rng(u).normal(size=20) for u in range(10)]
    monkeypatch.setitem(sys.modules, "ray", None)     # reaching Ray fails: the backend got there
    with pytest.raises(MissingExtra, match="ray"):
        aggregate(updates, variant="secagg", dropouts=[2], backend="ray")
    with pytest.raises(ParameterError, match="choose one"):
        aggregate(updates, runtime="parties", backend="ray")
