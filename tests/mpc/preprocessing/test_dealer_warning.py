"""TrustedDealerWarning: exported, once per dealer, on the first dealer-made item, at the user's line."""

import inspect
import warnings

import numpy as np

import mpc
from mpc.distributed import run_local
from mpc.preprocessing.plan import record_plan


def _adds_only(party, readings):
    sums = mpc.share_all(party, np.array([readings.sum(), len(readings)]))
    return (sums[0] + sums[1] + sums[2]).reveal()


def _multiplies(party, x):
    s = mpc.share_all(party, x, bound=1.0)              # public bound: y * y stays in range
    y = s[0] * s[1]                                       # MULTIPLY HERE
    return (y * y).reveal()


def _caught(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()
    return [w for w in got if issubclass(w.category, mpc.TrustedDealerWarning)]


def test_exported_from_mpc():
    from mpc.preprocessing.dealer import TrustedDealerWarning
    assert mpc.TrustedDealerWarning is TrustedDealerWarning and "TrustedDealerWarning" in mpc.__all__


def test_a_program_that_multiplies_nothing_is_not_warned():
    inputs = [np.array([120.0, 131.5]), np.array([118.0]), np.array([140.0, 99.5])]
    assert _caught(lambda: mpc.run(_adds_only, 3, inputs=inputs)) == []


def test_warned_once_at_the_users_line_that_first_multiplies():
    got = _caught(lambda: mpc.run(_multiplies, 3, inputs=[np.ones(2)] * 3))
    assert len(got) == 1
    lines, start = inspect.getsourcelines(_multiplies)
    line = start + next(i for i, text in enumerate(lines) if "MULTIPLY HERE" in text)
    assert got[0].filename == __file__ and got[0].lineno == line


def test_record_plan_does_not_warn():
    assert _caught(lambda: record_plan(_multiplies, 2, inputs=[np.ones(2)] * 2)) == []


def test_a_networked_run_warns_once_not_in_every_party():
    got = _caught(lambda: run_local(_multiplies, 3, args=(np.ones(2),), processes=False, timeout=20))
    assert len(got) == 1


def test_the_readme_first_snippet_prints_no_dealer_warning(capsys):
    from tests.mpc.test_inputs import _readme_block
    got = _caught(lambda: exec(compile(_readme_block(), "README.md", "exec"), {"__name__": "readme"}))
    assert got == [] and "[609.   5.]" in capsys.readouterr().out


def _trains(party, X, y):
    from ml import vertical
    return vertical.fit_ss(party, X, y, iterations=2)    # LIBRARY CALL HERE


def test_a_multiplication_inside_the_ml_or_protocols_packages_is_blamed_on_the_users_call():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(8, 2)), rng.normal(size=(8, 2))]
    y = (rng.random(8) > 0.5).astype(float)
    got = _caught(lambda: mpc.run(lambda p: _trains(p, X[p.id], y if p.id == 0 else None), 2))
    assert len(got) == 1
    lines, start = inspect.getsourcelines(_trains)
    line = start + next(i for i, text in enumerate(lines) if "LIBRARY CALL HERE" in text)
    assert (got[0].filename, got[0].lineno) == (__file__, line)
