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
