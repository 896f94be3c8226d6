"""Shared test configuration: the trusted dealer's warning is expected in tests."""

import warnings

import pytest

from mpc.preprocessing.dealer import TrustedDealerWarning


@pytest.fixture(autouse=True)
def _quiet_dealer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        yield
