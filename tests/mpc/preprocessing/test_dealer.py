"""The trusted dealer's corrections are checked like any peer's arrays."""

import warnings

import numpy as np
import pytest

import mpc
from mpc.errors import EncodingError
from mpc.preprocessing.dealer import TrustedDealer, TrustedDealerWarning


class _FaultyDealer(TrustedDealer):
    """Answers one kind of request with arrays of the wrong count, dtype or shape."""

    def __init__(self, n, kind, fault):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrustedDealerWarning)
            super().__init__(n)
        self.kind, self.fault = kind, fault

    def correction(self, k, kind, *args):
        good = super().correction(k, kind, *args)
        return self.fault(good) if kind == self.kind else good


FAULTS = {
    "broadcastable shape": lambda good: (good[0][:1], *good[1:]),
    "signed dtype": lambda good: (good[0].view(np.int64), *good[1:]),
    "missing array": lambda good: good[:-1],
    "extra array": lambda good: (*good, good[0]),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
@pytest.mark.parametrize("kind", ["mul", "trunc"])
def test_a_malformed_correction_is_an_encoding_error_not_a_wrong_product(kind, fault):
    dealer = _FaultyDealer(3, kind, FAULTS[fault])

    def prog(party):
        x = mpc.share(party, np.arange(4.0) if party.id == 0 else None, 0)
        return (x * x).reveal()

    with pytest.raises(EncodingError, match=f"party 2: the dealer sent .* under 'dealer/{kind}#"):
        mpc.run(prog, 3, preprocessing=lambda n: dealer.source, timeout=10)


def test_a_faithful_dealer_passes_the_check():
    dealer = _FaultyDealer(3, "none", None)

    def prog(party):
        x = mpc.share(party, np.arange(4.0) if party.id == 0 else None, 0)
        return (x * x).reveal()

    out = mpc.run(prog, 3, preprocessing=lambda n: dealer.source).outputs[0]
    assert np.allclose(out, np.arange(4.0) ** 2, atol=1e-3)


def test_a_malformed_frame_from_the_remote_dealer_names_it():
    from mpc.preprocessing.remote_dealer import RemoteDealer

    class _Endpoint:
        id = 1

        def recv_frame(self, frm, timeout, what=""):
            return b"CC\x01\x00" + bytes(20)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrustedDealerWarning)
        link = RemoteDealer(_Endpoint(), 2, 2, b"12345678", 5.0)
    with pytest.raises(EncodingError, match="party 1: bad frame from the dealer \\(node 2\\) while "
                                            "waiting for 'dealer/seed'"):
        link.seed_for(1)
