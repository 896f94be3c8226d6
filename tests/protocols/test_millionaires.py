"""Yao's millionaires: correctness on random and edge inputs, privacy of the evaluator's view, Yao 1982."""

import numpy as np
import pytest

import mpc
from mpc.errors import ParameterError, ProtocolError
from protocols.millionaires import millionaires, yao1982

M64 = (1 << 64) - 1


def duel(w0, w1, **kw):
    res = mpc.run(lambda party, w: millionaires(party, w, **kw), 2, inputs=[w0, w1],
                  preprocessing=None, record_view=kw.pop("_view", False))
    return res


def test_scalar_comparisons_both_parties_learn_the_bit():
    for w0, w1, want in [(10, 3, True), (3, 10, False), (7, 7, False), (0, 0, False), (M64, M64 - 1, True),
                         (0, M64, False)]:
        res = duel(w0, w1)
        assert res.outputs == [want, want]


def test_batch_random_and_edges_unsigned_and_signed():
    rng = np.random.default_rng(0)
    a = np.concatenate([np.array([0, M64, 0, M64, 5, 2**63], np.uint64), rng.integers(0, 2**64 - 1, 200, dtype=np.uint64)])
    b = np.concatenate([np.array([0, M64, M64, 0, 5, 2**63 - 1], np.uint64), rng.integers(0, 2**64 - 1, 200, dtype=np.uint64)])
    b[-20:] = a[-20:]
    res = duel(a, b)
    assert np.array_equal(res.outputs[0], a > b) and np.array_equal(res.outputs[1], a > b)
    lo, hi = -2**63, 2**63 - 1
    sa = np.concatenate([[lo, hi, lo, -1, 0, -5], rng.integers(lo, hi, 200)])
    sb = np.concatenate([[hi, lo, lo, 0, -1, -5], rng.integers(lo, hi, 200)])
    res = duel(sa, sb, signed=True)
    assert np.array_equal(res.outputs[1], sa > sb)


@pytest.mark.parametrize("garbler", [0, 1])
def test_three_way_and_either_garbler(garbler):
    a = np.array([1, 5, 9, 0, 255, 255])
    b = np.array([5, 1, 9, 0, 0, 255])
    res = duel(a, b, bits=8, three_way=True, garbler=garbler)
    assert res.outputs[0].tolist() == res.outputs[1].tolist() == [-1, 1, 0, 0, 1, 0]
    res = duel(a, b, bits=8, garbler=garbler)
    assert res.outputs[1].tolist() == (a > b).tolist()


def test_output_to_one_party_and_cost():
    res = duel(20, 10, bits=32, output="evaluator")
    assert res.outputs == [None, True]
    res = duel(np.arange(100), np.full(100, 50), bits=32)
    assert res.cost.rounds == 5
    # the module docstring's formula, exactly: per comparison 32 ANDs x 32 bytes of tables, 16 bytes
    # per garbler label and per OT correction, 1 decoding byte; plus 128 base-OT points (4096 bytes)
    B, n = 100, 32
    assert res.cost.bytes_sent[0] == B * (32 * n + 16 * n + 16 * n + 1) + 4096
    # IKNP matrix, result, base-OT point, batch size, circuit fingerprint
    assert res.cost.bytes_sent[1] == 16 * n * B + B + 40 + 32


def test_bad_inputs_are_refused():
    with pytest.raises(ParameterError, match="does not fit in 64 unsigned bits"):
        duel(2**64, 1)
    with pytest.raises(ParameterError, match="does not fit in 8 unsigned bits"):
        duel(3, -1, bits=8)
    with pytest.raises(ParameterError, match="does not fit in 8 signed bits"):
        duel(128, 1, bits=8, signed=True)
    with pytest.raises(ProtocolError, match="instances"):
        duel([1, 2, 3], [1, 2], bits=8)
    with pytest.raises(ParameterError, match="bits"):
        duel(1, 2, bits=0)
    with pytest.raises(ParameterError, match="not one of the two millionaires"):
        mpc.run(lambda p: millionaires(p, 1, pair=(1, 2)), 3, preprocessing=None)


def _evaluator_view(garbler_wealth, evaluator_wealth, batch, bits):
    """Per-comparison view of the evaluator (party 1) as a bit matrix ``[batch, view bits]``."""
    res = mpc.run(lambda party, w: millionaires(party, w, bits=bits), 2,
                  inputs=[np.full(batch, garbler_wealth), np.full(batch, evaluator_wealth)],
                  preprocessing=None, record_view=True)
    assert res.outputs[1].all() or not res.outputs[1].any()
    rows, decoding_bits = [], []
    for _frm, tag, arrays in res.views[1]:
        if "garbled" in tag:
            labels, tables, decoding = arrays  # [n, B, 2], [A, 2, B, 2], [1, B]
            rows += [labels.transpose(1, 0, 2).reshape(batch, -1).view(np.uint8),
                     tables.transpose(2, 0, 1, 3).reshape(batch, -1).view(np.uint8)]
            decoding_bits.append(decoding.T.astype(np.uint8))
        elif "iknp-cot" in tag:
            rows.append(arrays[0].reshape(batch, -1))
    view = np.concatenate([np.unpackbits(np.concatenate(rows, axis=1), axis=1)] + decoding_bits, axis=1)
    return view, res.outputs[1][0]


def test_evaluator_view_same_distribution_for_same_outcome():
    # Two garbler wealths, different in most bits, both richer than the evaluator: for every bit of
    # the evaluator's per-comparison view (labels, tables, decoding, OT corrections), the frequency of
    # ones must agree between the two runs (two-proportion z-test, Bonferroni over all positions).
    bits, batch = 16, 3000
    va, out_a = _evaluator_view(0b1010_1010_1010_1011, 1000, batch, bits)
    vb, out_b = _evaluator_view(0b0101_0101_0101_0111, 1000, batch, bits)
    assert out_a == out_b == True  # noqa: E712 - same outcome
    pa, pb = va.mean(axis=0), vb.mean(axis=0)
    pooled = (pa + pb) / 2
    z = np.abs(pa - pb) / np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / batch)
    assert va.shape[1] > 16 * 128 + 16 * 256  # labels and tables are all in there
    assert z.max() < 6.0  # ~10^4 positions: the max of |N(0,1)| stays below 5 with high probability
    # and no position is constant (every bit of the view is random)
    assert pa.min() > 0.4 and pa.max() < 0.6


def test_view_statistic_detects_a_leak():
    # The same statistic on a leaky view (the input bits in clear) fails: the test has power.
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 2, (3000, 64)).astype(np.uint8)
    leak_a = np.concatenate([noise, np.tile([1, 0, 1, 1], (3000, 1))], axis=1)
    leak_b = np.concatenate([noise, np.tile([0, 1, 1, 1], (3000, 1))], axis=1)
    pa, pb = leak_a.mean(axis=0), leak_b.mean(axis=0)
    pooled = (pa + pb) / 2
    z = np.abs(pa - pb) / np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / 3000)
    assert z.max() > 6.0


# --- Yao 1982 -----------------------------------------------------------------------------
@pytest.mark.parametrize("alice, bob", [(0, 0), (5, 3), (3, 5), (19, 19), (0, 19), (19, 0), (10, 11)])
def test_yao1982_compares(alice, bob):
    res = mpc.run(lambda party, w: yao1982(party, w, max_wealth=20, key_bits=1024,
                                           insecure_small_key_for_tests=True),
                  2, inputs=[alice, bob], preprocessing=None)
    assert res.outputs == [alice >= bob, alice >= bob]
    assert res.cost.rounds == 4


def test_yao1982_refuses_small_keys_and_out_of_range():
    with pytest.raises(ParameterError, match="2048"):
        mpc.run(lambda p: yao1982(p, 1, key_bits=1536), 2, preprocessing=None)
    with pytest.raises(ParameterError, match="wealth"):
        mpc.run(lambda p: yao1982(p, 100, max_wealth=100, key_bits=1024,
                                  insecure_small_key_for_tests=True), 2, preprocessing=None)


def test_example_runs_with_default_wealths_and_writes_a_transcript(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "millionaires.py"
    spec = importlib.util.spec_from_file_location("millionaires_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = tmp_path / "m.html"
    module.main(["--transcript", str(page)])
    text = capsys.readouterr().out
    assert "Alice is richer" in text and "garbled" in text
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    module.main(["--alice", "3", "--bob", "4"])
    assert "Alice is not richer" in capsys.readouterr().out


def test_ot_extension_reused_across_comparisons():
    from mpc.ot import IKNPReceiver, IKNPSender

    def prog(party, w):
        ot = IKNPSender.setup(party, 1) if party.id == 0 else IKNPReceiver.setup(party, 0)
        return [millionaires(party, v, bits=16, ot=ot) for v in w]

    res = mpc.run(prog, 2, inputs=[[5, 9, 100], [7, 9, 3]], preprocessing=None)
    assert res.outputs == [[False, False, True]] * 2
    assert sum(1 for m in res.cost.messages if "base-ot" in m.tag) == 2  # one setup for three runs
    with pytest.raises(ParameterError, match="needs an IKNP"):
        mpc.run(lambda p: millionaires(p, 1, bits=8, ot=IKNPReceiver(p, 1, None, None)), 2,
                preprocessing=None)


def test_an_out_of_range_secret_is_not_quoted_in_the_error_or_the_transcript(tmp_path):
    from protocols.millionaires import millionaires, yao1982

    page = tmp_path / "fail.json"
    with pytest.raises(ParameterError) as info:
        mpc.run(lambda p, w: millionaires(p, w, bits=8), 2, inputs=[1234567, 3], preprocessing=None,
                transcript=str(page))
    assert "1234567" not in str(info.value) and "1234567" not in page.read_text()
    with pytest.raises(ParameterError) as info:
        mpc.run(lambda p, w: yao1982(p, w, max_wealth=10, key_bits=1024, insecure_small_key_for_tests=True),
                2, inputs=[7654321, 3], preprocessing=None)
    assert "7654321" not in str(info.value)


def test_range_errors_of_secret_values_do_not_quote_them():
    from mpc.errors import EncodingError
    from mpc.he import paillier
    from mpc.he.packing import Packing

    def prog(party):
        return mpc.share(party, np.array([3.0e15]) if party.id == 0 else None, 0)

    with pytest.raises(EncodingError) as info:
        mpc.run(prog, 2, preprocessing=None)
    assert "3e+15" not in str(info.value) and "fixed-point range" in str(info.value)
    public = paillier.keygen(512, insecure_for_testing=True).public
    with pytest.raises(EncodingError) as info:
        public.encrypt_packed(np.array([987654321]), Packing(value_bits=16))
    assert "987654321" not in str(info.value)
