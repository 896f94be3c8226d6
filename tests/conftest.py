"""Shared test configuration.

* The trusted dealer's warning is expected in tests.
* ``python -m pytest --preprocessing=ot tests/test_sharing.py tests/test_arith.py
  tests/test_compare.py tests/test_binary.py tests/test_approx.py`` reruns the
  foundation and nonlinear suites with every two-party run's preprocessing
  made by OT instead of the dealer (planned offline, then sealed; costs are
  the online phase's), as issue 11 asks. It takes several minutes, so the
  regular suite runs a representative subset (tests/test_preprocessing_ot.py).
"""

import warnings

import pytest

import mpc
import mpc.runner
from mpc.preprocessing.dealer import TrustedDealerWarning


def pytest_addoption(parser):
    parser.addoption("--preprocessing", default="dealer", choices=("dealer", "ot"),
                     help="preprocessing source for two-party runs that ask for the dealer")


@pytest.fixture(autouse=True)
def _quiet_dealer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        yield


@pytest.fixture(autouse=True, scope="session")
def _two_party_preprocessing(request):
    if request.config.getoption("--preprocessing") != "ot":
        yield
        return
    from mpc.preprocessing.plan import online_only, planned, record_plan
    original = mpc.runner.run

    def run(program, parties=3, *args, preprocessing="dealer", **kwargs):
        if parties != 2 or preprocessing != "dealer":
            return original(program, parties, *args, preprocessing=preprocessing, **kwargs)
        plain = {k: v for k, v in kwargs.items() if k not in ("transcript", "record_view")}
        plan = record_plan(program, 2, *args, **plain)
        result = original(program, 2, *args, preprocessing=planned("ot", plan), **kwargs)
        result.cost = online_only(result.cost)
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mpc, "run", run)
        yield
