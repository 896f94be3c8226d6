"""An input outside the fixed-point range is named (party, call, argument, tag), its value never quoted."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc


@settings(max_examples=8, deadline=None)
@given(st.floats(2.0 ** 47, 1e18), st.integers(0, 2), st.booleans())
def test_out_of_range_input_names_its_party_and_call_not_its_value(big, owner, all_at_once):
    value = np.array([1.5, big])

    def prog(party):
        mine = value if party.id == owner else np.zeros(2)
        if all_at_once:
            return mpc.share_all(party, mine)
        return mpc.share(party, mine if party.id == owner else None, owner)

    with pytest.raises(mpc.EncodingError) as info:
        mpc.run(prog, 3, preprocessing=None, timeout=10)
    text = str(info.value)
    call = "share_all" if all_at_once else "share"
    assert f"party {owner}'s input to mpc.{call} (argument 'value', shape (2,), tag '{call}" in text
    assert "outside the fixed-point range" in text and info.value.party == owner
    for shown in (repr(big), str(big), f"{big:g}", f"{big:.3e}", str(int(big))):
        assert shown not in text


def test_nan_input_is_named_too():
    def prog(party):
        return mpc.share_all(party, np.array([np.nan]) if party.id == 1 else np.zeros(1))

    with pytest.raises(mpc.EncodingError, match=r"party 1's input to mpc.share_all .*NaN or infinity"):
        mpc.run(prog, 2, preprocessing=None, timeout=10)
