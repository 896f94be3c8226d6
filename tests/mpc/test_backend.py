"""Choosing where simulated clients run: the backend options and the missing-extra error."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mpc.backend import Ray, chunks, resolve
from mpc.errors import ParameterError
from mpc.optional import MissingExtra
from protocols.secagg import make_config, simulate


def test_resolve():
    assert resolve("local") is None and resolve(None) is None
    assert resolve("ray") == Ray()
    assert resolve(Ray(cpus=2)).cpus == 2
    with pytest.raises(ParameterError, match="unknown backend 'dask'"):
        resolve("dask")
    with pytest.raises(ParameterError, match="cpus=0"):
        Ray(cpus=0)


def test_chunks_cover_the_ids_in_order():
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)    # import ray now fails
    config = make_config(4, 2, variant="secagg", bits=16, dropout=0.0)
    values = [np.zeros(2, dtype=np.uint64)] * 4
    with pytest.raises(MissingExtra, match=r"pip install 'concilium\[ray\]'") as info:
        simulate(config, values, backend="ray")
    assert info.value.name == "ray"
    assert "simulate(backend='ray')" in str(info.value)


class _FakeRay:
    """Stands in for the ray module: records how Ray would be started."""

    def __init__(self) -> None:
        self.started: dict | None = None

    def is_initialized(self) -> bool:
        return self.started is not None

    def init(self, **kwargs) -> None:
        self.started = kwargs

    def cluster_resources(self) -> dict:
        return {"CPU": 8.0}


def test_address_from_ray_address_or_the_argument(monkeypatch):
    from mpc.backend import connect
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    _, actors, each = connect(Ray(cpus=4), "test")
    assert fake.started["address"] == "ray://head:10001" and "num_cpus" not in fake.started
    assert (actors, each) == (4, 1.0)
    fake.started = None
    connect(Ray(address="auto", actors=16), "test")
    assert fake.started["address"] == "auto"
    fake.started = None
    monkeypatch.delenv("RAY_ADDRESS")
    _, actors, each = connect(Ray(cpus=2, actors=4), "test")
    assert fake.started["address"] is None and fake.started["num_cpus"] == 2
    assert (actors, each) == (4, 0.5)
    with pytest.raises(ParameterError, match="more CPUs than the cluster has"):
        connect(Ray(cpus=9), "test")
