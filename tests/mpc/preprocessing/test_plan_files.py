"""A recorded plan saved as JSON and replayed: same plan, shapes back as tuples, bad files refused."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ParameterError, PreprocessingExhausted
from mpc.preprocessing.plan import (load_plan, online_only, plan_from_json, plan_to_json, planned,
                                    record_plan, save_plan)


def _prog(party, x):
    s = mpc.share_all(party, x, bound=4.0)
    y = s[0] * s[1] + (s[0] @ s[1].T).sum()
    return (y < 1.0).reveal()


X = [np.array([[0.5, 2.0, -1.0]]), np.array([[1.5, 0.25, 3.0]])]


def test_a_saved_plan_replays_in_several_runs(tmp_path):
    plan = record_plan(_prog, 2, inputs=X)
    kinds = {key[0] for key, _ in plan}
    assert {"mul", "matmul", "trunc"} <= kinds
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    data = json.loads(path.read_text())
    assert data["format"] == "concilium-plan" and data["version"] == 1
    assert load_plan(path) == plan                       # tuples again, same order and counts
    want = mpc.run(_prog, 2, inputs=X).outputs[0]
    online = set()
    for _ in range(2):
        res = mpc.run(_prog, 2, inputs=X, preprocessing=planned("ot", str(path)))
        assert np.array_equal(res.outputs[0], want)
        online.add((online_only(res.cost).rounds, sum(online_only(res.cost).party_bytes_sent.values())))
    assert len(online) == 1


def test_a_plan_through_plain_json_works_too():
    plan = record_plan(_prog, 2, inputs=X)
    raw = json.loads(json.dumps(plan))                   # lists instead of tuples
    res = mpc.run(_prog, 2, inputs=X, preprocessing=planned("dealer", raw))
    assert res.outputs[0].shape == (1, 3)


def test_a_replayed_plan_is_sealed():
    small = record_plan(_prog, 2, inputs=X)[:1]
    with pytest.raises(PreprocessingExhausted):
        mpc.run(_prog, 2, inputs=X, preprocessing=planned("dealer", small))


shapes = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)
keys = st.one_of(st.tuples(st.sampled_from(["mul", "matmul"]), shapes, shapes),
                 st.tuples(st.just("trunc"), shapes, st.integers(0, 62)),
                 st.tuples(st.sampled_from(["binary", "dabit"]), shapes))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(keys, st.integers(1, 10**6)), max_size=6))
def test_json_round_trip(plan):
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


@pytest.mark.parametrize("data, message", [
    ({"format": "other"}, "not a plan"),
    ({"format": "concilium-plan", "version": 2, "items": []}, "version 2"),
    ({"format": "concilium-plan", "version": 1, "items": [{"kind": "add", "args": [[2]], "count": 1}]},
     "must start with one of"),
    ({"format": "concilium-plan", "version": 1, "items": [{"kind": "mul", "args": [[2]], "count": 1}]},
     "takes 2 arguments"),
    ({"format": "concilium-plan", "version": 1, "items": [{"kind": "binary", "args": [[-1]], "count": 1}]},
     "non-negative integers"),
    ({"format": "concilium-plan", "version": 1, "items": [{"kind": "trunc", "args": [[2], 99], "count": 1}]},
     "fractional bits"),
    ({"format": "concilium-plan", "version": 1, "items": [{"kind": "dabit", "args": [[2]], "count": 0}]},
     "positive integer"),
])
def test_bad_plans_are_refused(data, message):
    with pytest.raises(ParameterError, match=message):
        plan_from_json(data)


def test_bad_plan_files_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        load_plan(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ParameterError, match="is not JSON"):
        planned("dealer", tmp_path / "x.json")


@pytest.mark.parametrize("kind", [["mul"], {"k": 1}, None, 3])
def test_a_plan_whose_kind_is_not_a_string_is_refused(kind):
    data = {"format": "concilium-plan", "version": 1, "items": [{"kind": kind, "args": [[2], [2]], "count": 1}]}
    with pytest.raises(ParameterError, match="must start with one of"):
        plan_from_json(data)


def test_a_plan_path_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="plan file .* cannot be read"):
        load_plan(tmp_path)
