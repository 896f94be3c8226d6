"""Public magnitude bounds of shared tensors: declaration, propagation and refusal (mpc.sharing.bounds)."""


import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import ConciliumError, MalformedPeerData, ParameterError, RangeError
from mpc.sharing import bounds

ULP = 2.0**-16
FP = mpc.FixedPoint()


def _enc(x):
    return FP.decode(FP.encode(x))


def _run(prog, n=2, **kw):
    res = mpc.run(prog, n, **kw)
    for out in res.outputs[1:]:
        assert repr(out) == repr(res.outputs[0])   # every party sees the same (public) things
    return res.outputs[0]


# --- the example --------------------------------------------------------------------
SALARIES = [52_000.0, 55_000.0, 58_000.0]


def test_mean_times_mean_of_salaries_is_refused_not_wrapped():
    """Three salaries averaging 55,000: mean * mean used to return -1269944217.04."""

    def prog(party, salary):
        shared = mpc.share_all(party, np.array(salary), bound=2.0**17)
        mean = sum(shared[1:], shared[0]) * (1 / 3)
        with pytest.raises(RangeError) as err:
            mean * mean
        return float(mean.reveal()), mean.bound, str(err.value)

    mean, bound, message = _run(prog, 3, inputs=SALARIES)
    assert abs(mean - 55_000.0) < 1e-3 and abs(bound - 2.0**17) < 1e-3   # 1/3 gets 12 extra bits
    assert message.startswith("*: ") and "1.71799e+10" in message           # names op and bound
    assert "scale the inputs down" in message and "fewer fractional bits" in message
    assert "clip" in message and "assume_bound" in message


def test_the_default_bound_refuses_the_salaries_at_their_owner_without_quoting_them():
    def prog(party, salary):
        return mpc.share_all(party, np.array(salary))

    with pytest.raises(RangeError, match=r"party 0.s input to mpc.share_all \(argument .value.*tag .share_all#0.\) exceeds the declared bound 32768") as err:
        mpc.run(prog, 3, inputs=SALARIES)
    assert "52000" not in str(err.value) and "52,000" not in str(err.value)


def test_range_error_is_a_concilium_and_value_error_exported_from_mpc():
    assert issubclass(RangeError, ConciliumError) and issubclass(RangeError, ValueError)
    assert mpc.RangeError is RangeError and "RangeError" in mpc.__all__


# --- where bounds come from -----------------------------------------------------------------
def test_session_default_input_bound_and_run_input_bound():
    assert bounds.default_input_bound(16) == 2.0**15 - 2.0**-16   # products of two inputs fit
    assert bounds.default_input_bound(0) == 2.0**31 - 1

    def prog(party):
        x = mpc.share(party, np.full(3, 1000.0) if party.id == 0 else None, 0)
        i = mpc.share(party, np.arange(3) if party.id == 1 else None, 1, integer=True)
        return x.bound, i.bound

    assert _run(prog) == (2.0**15 - 2.0**-16, 2.0**31 - 1)
    assert _run(prog, input_bound=1000) == (1000.0, 1000.0)
    with pytest.raises(RangeError, match=r"input to mpc.share .* exceeds the declared bound 999"):
        mpc.run(prog, 2, input_bound=999)
    with pytest.raises(ParameterError, match="input_bound must be positive"):
        mpc.run(prog, 2, input_bound=-1.0)
    with pytest.raises(RangeError, match="input_bound"):
        mpc.run(prog, 2, input_bound=2.0**50)    # beyond what 16 fractional bits can hold


def test_auto_bound_is_the_owners_power_of_two_and_reaches_every_party():
    def prog(party):
        x = mpc.share(party, np.array([3.0, -700.0]) if party.id == 1 else None, 1, bound="auto")
        ys = mpc.share_all(party, np.array([0.1 * (party.id + 1)]), bound="auto")
        return x.bound, [y.bound for y in ys], float((x * x).sum().reveal())

    xb, yb, total = _run(prog, 3)
    assert xb == 1024.0 and yb == [0.125, 0.25, 0.5]
    assert abs(total - (9 + 490_000)) < 1e-3
    with pytest.raises(ParameterError, match="'auto' or None"):
        mpc.run(lambda p: mpc.share(p, np.ones(2) if p.id == 0 else None, 0, bound="max"), 2)


@pytest.mark.parametrize("bad, why", [
    ((np.array([3.0]),), "not a power of two"), ((np.array([np.nan]),), "not a power of two"),
    ((np.array([-4.0]),), "not a power of two"), ((np.array([2.0**50]),), "not a power of two"),
    ((np.array([4], np.int64),), r"sent int64\[1\]"), ((np.array([1.0, 2.0]),), r"float64\[2\]"),
    ((), "sent 0 arrays"), ((np.array([8.0]), np.array([8.0])), "sent 2 arrays"),
])
def test_a_malformed_auto_bound_from_a_peer_is_refused_naming_it(monkeypatch, bad, why):
    from mpc.sharing import inputs

    def prog(party):  # owner 0 announces ``bad`` instead of its bound
        return mpc.share(party, np.array([5.0]) if party.id == 0 else None, 0, bound="auto").bound

    assert _run(prog, 2) == 8.0
    monkeypatch.setattr(inputs, "_bound_message", lambda value: bad)
    with pytest.raises(MalformedPeerData, match=f"party 1: party 0 .*{why}") as err:
        _run(prog, 2)
    assert (err.value.peer, err.value.field) == (0, None if "arrays" in why else "input bound")
    assert "share/bound" in err.value.tag


def test_assume_bound_tightens_and_is_validated():
    def prog(party):
        x = mpc.share(party, np.array([0.5, -0.25]) if party.id == 0 else None, 0, bound=2.0**20)
        with pytest.raises(RangeError):
            x * x                                      # 2^40 cannot be excluded
        y = x.assume_bound(1.0)
        with pytest.raises(ParameterError):
            x.assume_bound(0.0)
        return y.bound, x.assume_bound(2.0**30).bound, (y * y).reveal().tolist()

    b, looser, sq = _run(prog)
    assert b == 1.0 and looser == 2.0**20 and sq == [0.25, 0.0625]


# --- propagation ----------------------------------------------------------------------------
def test_each_operation_derives_its_bound_from_public_information():
    def prog(party):
        x = mpc.share(party, np.linspace(-3, 3, 12).reshape(3, 4) if party.id == 0 else None, 0, bound=3.0)
        y = mpc.share(party, np.linspace(1, 2, 12).reshape(4, 3) if party.id == 1 else None, 1, bound=2.0)
        i = mpc.share(party, np.arange(4) if party.id == 0 else None, 0, integer=True, bound=3)
        out = {
            "add": (x + x).bound, "sub_public": (x - np.array([5.0, -7.0, 1, 1])).bound,
            "neg": (-x).bound, "mul": (x * x).bound, "matmul": (x @ y).bound,
            "sum": x.sum().bound, "sum_axis": x.sum(axis=0).bound, "mean": x.mean().bound,
            "public": (x * np.array([0.5, -2.0, 0.25, 1.0])).bound, "int_public": (x * 3).bound,
            "public_matmul": (x @ np.array([[1.0], [-2.0], [0.5], [0.0]])).bound,
            "lt": (x < y.T).bound, "relu": x.relu().bound, "max": x.max().bound,
            "argmax": x.argmax(axis=1).bound, "clip": x.clip(-1.0, 0.5).bound,
            "clip_hi": x.clip(hi=10.0).bound, "where": mpc.where(x < 0, x, 7.0).bound,
            "sigmoid": x.sigmoid().bound, "exp": x.exp().bound, "int": (i * i).bound,
            "reshape": x.reshape(12).bound, "T": x.T.bound, "index": x[1:].bound,
        }
        return {k: float(v) for k, v in out.items()}

    b = _run(prog)
    assert b["add"] == 6.0 and b["sub_public"] == 10.0 and b["neg"] == 3.0
    assert 9.0 <= b["mul"] <= 9.0 + 2 * ULP          # one unit for the stochastic rounding
    assert 24.0 <= b["matmul"] <= 24.0 + 2 * ULP      # 3 * 2 * inner dimension 4
    assert b["sum"] == 36.0 and b["sum_axis"] == 9.0 and 3.0 <= b["mean"] <= 3.0 + 2 * ULP
    assert 6.0 <= b["public"] <= 6.0 + 2 * ULP and b["int_public"] == pytest.approx(9.0, rel=1e-15)
    assert 10.5 <= b["public_matmul"] <= 10.5 + 2 * ULP   # 3 * (1 + 2 + 0.5): the column sum
    assert b["lt"] == 1.0 and b["relu"] == 3.0 and b["max"] == 3.0 and b["argmax"] == 3.0
    assert b["clip"] == 1.0 and b["clip_hi"] == 10.0 and b["where"] == 7.0
    assert 1.0 <= b["sigmoid"] < 1.001 and np.exp(3) <= b["exp"] < np.exp(3) * 1.001
    assert b["int"] == pytest.approx(9.0, rel=1e-15) and b["reshape"] == b["T"] == b["index"] == 3.0


def test_bounds_alone_decide_refusal_whatever_the_data():
    """Small values under a large declared bound are refused too: only public bounds count."""

    def prog(party):
        x = mpc.share(party, np.array([1.0, 2.0]) if party.id == 0 else None, 0, bound=2.0**16)
        return x * x

    with pytest.raises(RangeError, match=r"\*: the result's public bound 4\.29497e\+09"):
        mpc.run(prog, 2)


def test_sums_reductions_and_integers_refuse_at_their_limits():
    def prog(party):
        big = mpc.share(party, np.full(4, 2.0**44) if party.id == 0 else None, 0, bound=2.0**45)
        with pytest.raises(RangeError, match=r"^\+: "):
            big + big                                   # 2 * 2^45 reaches 2^46
        with pytest.raises(RangeError, match="^sum: "):
            big.sum()
        with pytest.raises(RangeError, match="^-: "):
            big - 2.0**45 - 2.0**45
        n = mpc.share(party, np.array([2**40]) if party.id == 0 else None, 0, integer=True, bound=2.0**40)
        with pytest.raises(RangeError, match=r"^@: .*integers"):
            n.reshape(1, 1) @ (n * 2**20).reshape(1, 1)   # 2^100
        huge = mpc.share(party, np.array([1]) if party.id == 0 else None, 0, integer=True, bound=2.0**47)
        with pytest.raises(RangeError, match=r"^\+: .*16 fractional bits"):
            huge + big                                    # 2^47 does not fit 16 fractional bits
        return (big + 2.0**44).reveal().tolist(), (n * 2**22).reveal().tolist()

    twice, scaled = _run(prog)
    assert twice == [2.0**45] * 4 and scaled == [2**62]


# --- property: never a wrong number ----------------------------------------------------------
OPS = ["add", "mul", "matmul", "sum", "public"]


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(OPS), a=st.integers(-6, 45), s=st.integers(18, 40), seed=st.integers(0, 2**32 - 1))
@example(op="sum", a=38, s=18, seed=1)   # a float reference sum once rounded away a 2^-16
def test_results_near_the_limits_are_correct_or_refused(op, a, s, seed):
    """Random magnitudes near each limit: within the documented error of numpy's, or RangeError."""
    rng = np.random.default_rng(seed)   # simulated data
    b = min(45, max(-6, s - a)) if op in ("mul", "matmul") else min(45, s)
    bx, by = 2.0**a, 2.0**b
    x = rng.uniform(-bx, bx, (3, 4))
    x.flat[:2] = [bx, -bx]
    y = rng.uniform(-by, by, (4, 3)) if op == "matmul" else rng.uniform(-by, by, (3, 4))
    y.flat[:2] = [-by, by]
    c = rng.choice([-1.0, 1.0], (3, 4)) * 10.0 ** rng.uniform(-5, 5, (3, 4))

    def prog(party):
        sx = mpc.share(party, x if party.id == 0 else None, 0, bound=bx)
        sy = mpc.share(party, y if party.id == 1 else None, 1, bound=by)
        try:
            z = {"add": lambda: sx + sy, "mul": lambda: sx * sy, "matmul": lambda: sx @ sy,
                 "sum": lambda: (sx + sy).sum(), "public": lambda: sx * c}[op]()
        except RangeError:
            return None
        return z.reveal()

    got = _run(prog)
    ex, ey = _enc(x), _enc(y)
    if got is None:     # refused: only where the bounds cannot exclude leaving the range
        limit = {"add": 2.0**46, "sum": 2.0**46, "mul": 2.0**30, "matmul": 2.0**30 / 4,
                 "public": 2.0**30}[op]
        need = {"add": bx + by, "sum": 12 * (bx + by), "mul": bx * by, "matmul": bx * by,
                "public": bx * np.abs(c).max()}[op]
        assert need >= limit / 2, (op, a, b)
        return
    if op == "add":
        assert np.array_equal(got, ex + ey)
    elif op == "sum":   # exact in the ring; the reference is the exact sum of the encoded values
        # (in integers: float ex + ey rounds once magnitudes pass 2^37), rounded once to a float
        units = [int(v * 2.0**16) for v in np.concatenate([e.ravel() for e in np.broadcast_arrays(ex, ey)])]
        want = sum(units) / 2**16
        assert abs(got - want) <= abs(want) * 2.0**-52
    elif op == "mul":
        assert np.max(np.abs(got - ex * ey)) <= ULP
    elif op == "matmul":
        assert np.max(np.abs(got - ex @ ey)) <= ULP + 4 * abs(ex @ ey).max() * 2.0**-52
    else:
        want = ex * c
        assert np.all(np.abs(got - want) <= np.abs(want) * 2.0**-16 + ULP)


# --- public factors keep their relative precision element by element --------------------------
def test_public_array_factors_keep_relative_precision_per_element():
    factors = np.array([0.75, -0.3, 1e-4])

    def prog(party):
        x = mpc.share(party, np.array([1.0, 1.0, 1.0]) if party.id == 0 else None, 0, bound=1.0)
        big = mpc.share(party, np.array([5000.0, 70000.0]) if party.id == 0 else None, 0, bound=2.0**17)
        return (x * factors).reveal(), (big / np.array([2.0, 1000.0])).reveal()

    scaled, divided = _run(prog, 3)
    # relative error below 2^-16 per factor, plus one unit of the final rounding
    assert np.all(np.abs(scaled - factors) <= np.abs(factors) * 2.0**-16 + ULP)
    assert abs(scaled[2] - 1e-4) / 1e-4 < 0.2      # was 6.8% (the 1e-4 had the precision of 0.75)
    assert np.all(np.abs(divided - [2500.0, 70.0]) <= np.array([2500.0, 70.0]) * 2.0**-16 + ULP)


def test_per_element_precision_costs_one_truncation_round():
    def prog(party):
        x = mpc.share(party, np.ones(6) if party.id == 0 else None, 0, bound=1.0)
        with party.phase("scale"):
            x * np.array([3.0, 0.5, 1e-1, 1e-2, 1e-3, 1e-4])
        with party.phase("uniform"):
            x * 0.5

    phases = mpc.run(prog, 3).cost.phases()
    assert phases["scale"].rounds == phases["uniform"].rounds == 1
    assert phases["scale"].bytes_sent[0] == phases["uniform"].bytes_sent[0] == 8 * 6 * 2


@pytest.mark.parametrize("c", [0.3, -0.7, 1 / 3, 2.0**-17 * 3])
def test_public_operands_count_as_encoded(c):
    """A public 0.3 is encoded as 0.30000305 (f = 16): bounds cover the encoded value, not 0.3."""

    def prog(party):
        x = mpc.share(party, np.array([5.0, -5.0, 0.0]) if party.id == 0 else None, 0, bound=5.0)
        lo, hi = -abs(c), abs(c)
        outs = {"clip": x.clip(lo, hi), "clip_hi": (x - 10.0).clip(hi=hi), "where": mpc.where(x < 0, x * 0, c),
                "add": (x * 0) + c}
        return {k: (float(np.max(np.abs(v.reveal()))), float(v.bound)) for k, v in outs.items()}

    for name, (peak, bound) in _run(prog).items():
        assert peak <= bound, f"{name}: opened {peak!r} above its bound {bound!r}"
