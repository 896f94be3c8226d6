"""CKKS parameter checks: the HomomorphicEncryption.org 128-bit table, presets, refusals."""

import pytest

from mpc.errors import ParameterError
from mpc.he import params
from mpc.he.params import MAX_COEFF_MODULUS_BITS, PRESETS, CKKSParams, check_security, resolve

# HomomorphicEncryption.org Security Standard (2018), Table 1, classical 128-bit,
# ternary secret; the same bounds as SEAL's CoeffModulus::MaxBitCount(N, sec_level_type::tc128).
STANDARD_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}


def test_table_is_the_standard():
    assert MAX_COEFF_MODULUS_BITS == STANDARD_128


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_within_the_table(name):
    p = resolve(name)
    assert p.name == name
    assert p.total_bits <= STANDARD_128[p.poly_modulus_degree]
    assert p.depth == len(p.coeff_mod_bit_sizes) - 2
    assert p.slots == p.poly_modulus_degree // 2
    assert p.max_abs_value >= 2**13


def test_presets_cover_common_depths():
    assert sorted(p.depth for p in PRESETS.values()) == [0, 1, 2, 4, 7]


@pytest.mark.parametrize("n", sorted(STANDARD_128))
def test_bound_itself_is_accepted_and_one_more_bit_refused(n):
    bound = STANDARD_128[n]
    full, rest = divmod(bound, 60)
    bits = [60] * full + ([rest] if rest else [])
    check_security(n, bits)  # exactly at the bound: accepted
    with pytest.raises(ParameterError, match=rf"exceeds the 128-bit security bound of {bound} bits for N={n}"):
        check_security(n, bits + [1])


def test_refusal_names_the_broken_bound():
    with pytest.raises(ParameterError, match="280 bits.*bound of 218 bits for N=8192.*use N=16384"):
        CKKSParams(8192, (60, 40, 40, 40, 40, 60), 40).check()
    with pytest.raises(ParameterError, match="N=3000 is not in the HomomorphicEncryption.org 128-bit table"):
        check_security(3000, [30, 30])
    with pytest.raises(ParameterError, match="each prime must have 1..60 bits"):
        check_security(32768, [61, 60])
    with pytest.raises(ParameterError, match="no ring degree allows that many bits"):
        check_security(32768, [60] * 15)


def test_usability_checks():
    with pytest.raises(ParameterError, match="middle prime 1 has 30 bits but the scale has 40"):
        CKKSParams(8192, (60, 30, 60), 40).check()
    with pytest.raises(ParameterError, match="special .* prime has 40 bits"):
        CKKSParams(8192, (60, 40, 40), 40).check()
    with pytest.raises(ParameterError, match="scale of 2\\^60 must be below the first prime"):
        CKKSParams(8192, (60, 60), 60).check()
    with pytest.raises(ParameterError, match="at least two primes"):
        CKKSParams(4096, (60,), 40).check()
    with pytest.raises(ParameterError, match="unknown CKKS preset 'fast'"):
        resolve("fast")
    with pytest.raises(ParameterError):
        resolve(8192)  # type: ignore[arg-type]


def test_max_abs_value():
    assert params.PRESETS["linear"].max_abs_value == 2.0**19
    assert params.PRESETS["aggregate"].max_abs_value == 2.0**13
