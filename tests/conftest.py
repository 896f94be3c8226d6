"""Shared test configuration.

* The trusted dealer's warning is expected in tests.
* ``python -m pytest --preprocessing=ot tests/mpc/sharing/test_sharing.py tests/mpc/arith/test_arith.py
  tests/mpc/sharing/test_compare.py tests/mpc/sharing/test_binary.py tests/mpc/sharing/test_approx.py`` reruns the
  foundation and nonlinear suites with every two-party run's preprocessing
  made by OT instead of the dealer (planned offline, then sealed; costs are
  the online phase's), as issue 11 asks: through the public hook
  :func:`mpc.runner.default_preprocessing`, not by patching ``mpc.run``. It takes several minutes, so the
  regular suite runs a representative subset (tests/mpc/preprocessing/test_preprocessing_ot.py).
"""

import warnings

import pytest

from mpc.preprocessing.dealer import TrustedDealerWarning
from mpc.preprocessing.plan import PlannedOffline
from mpc.preprocessing.source import resolve
from mpc.runner import default_preprocessing


def pytest_addoption(parser):
    parser.addoption("--preprocessing", default="dealer", choices=("dealer", "ot"),
                     help="preprocessing source for two-party runs that ask for the dealer")


@pytest.fixture(autouse=True)
def _quiet_dealer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        yield


class TwoPartyOT(PlannedOffline):
    """Two-party runs: plan, produce offline by OT, run online (cost: the online part); others: dealer."""

    def __init__(self):
        super().__init__("ot")

    def prepare(self, program, n, options):
        return super().prepare(program, n, options) if n == 2 else resolve("dealer")


@pytest.fixture(autouse=True, scope="session")
def _two_party_preprocessing(request):
    if request.config.getoption("--preprocessing") != "ot":
        yield
        return
    with default_preprocessing(TwoPartyOT()):
        yield


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with 2 CPUs, started once per test session (skips when ray is missing)."""
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()
