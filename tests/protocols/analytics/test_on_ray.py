"""Analytics queries with the secure sum's clients on Ray: the same answers as in one process."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.analytics import histogram, mean


def test_histogram_and_mean_identical_to_local(ray_cluster):
    rng = np.random.default_rng(4)
    buckets = rng.integers(0, 6, 40)
    seed = bytes(range(32))
    kw = dict(epsilon=2.0, dropped=[3, 17], seed=seed, record_server_view=True)
    local = histogram(buckets, 6, **kw)
    on_ray = histogram(buckets, 6, backend="ray", **kw)
    assert on_ray.value.tobytes() == local.value.tobytes()
    assert len(on_ray.details["server_view"]) == len(local.details["server_view"]) == 38


def test_scalar_queries_pass_the_backend_on(monkeypatch):
    import sys

    from mpc.optional import MissingExtra
    monkeypatch.setitem(sys.modules, "ray", None)     # reaching Ray fails: the backend got there
    with pytest.raises(MissingExtra, match="ray"):
        mean(np.linspace(0, 1, 30), 0.0, 1.0, backend="ray")
