"""KKRT16 batched related-key OPRF: correctness, independence of instances, malformed matrices."""

import numpy as np
import pytest

import mpc
from mpc.errors import EncodingError, MalformedPeerData
from mpc.ot import IKNPReceiver
from mpc.ot.kkrt import CODE_BITS, KKRTReceiver, KKRTSender, PseudorandomCode


def _run(blocks, probe):
    """Receiver encodes ``blocks``; the sender evaluates every instance at ``probe(blocks)``."""
    m = len(blocks)

    def prog(party):
        if party.id == 0:
            return KKRTReceiver.setup(party, 1).encode(blocks)
        keys = KKRTSender.setup(party, 0).keys(m)
        return keys.evaluate(np.arange(m), blocks), keys.evaluate(np.arange(m), probe(blocks))

    res = mpc.run(prog, parties=2, preprocessing=None, timeout=60)
    return res.outputs[0], *res.outputs[1]


@pytest.mark.parametrize("m", [1, 63, 1000])
def test_receiver_learns_the_prf_at_its_input_only(m):
    rng = np.random.default_rng(m)
    blocks = rng.integers(0, 2**63, (m, 2), dtype=np.uint64)
    got, same, other = _run(blocks, lambda b: b ^ np.uint64(1))     # one bit away
    assert np.array_equal(got, same)
    assert not (got == other).all(axis=1).any()


def test_instances_have_independent_keys():
    blocks = np.zeros((200, 2), np.uint64)                         # the same input everywhere
    got, same, _ = _run(blocks, lambda b: b)
    assert np.array_equal(got, same)
    assert len({r.tobytes() for r in got}) == 200                  # F_b(x) differs per instance b


def test_code_is_wide_and_far_apart():
    code = PseudorandomCode(bytes(range(16)))
    words = code(np.arange(400, dtype=np.uint64).reshape(200, 2))
    assert words.shape == (200, CODE_BITS // 64)
    bits = np.unpackbits(words.view(np.uint8), axis=1)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)[np.triu_indices(200, 1)]
    assert dist.min() > 180 and 250 < dist.mean() < 262          # about 256 = k/2, never near 128


def test_truncated_matrix_is_refused():
    def prog(party):
        if party.id == 0:
            rec = KKRTReceiver.setup(party, 1)
            party.send(1, party.fresh("kkrt-u"), np.zeros((CODE_BITS, 3), np.uint8))   # m = 100 needs 13
            return rec
        KKRTSender.setup(party, 0).keys(100)

    with pytest.raises(EncodingError, match=r"KKRT matrix of uint8 \(512, 3\), expected \(512, 13\)"):
        mpc.run(prog, parties=2, preprocessing=None, timeout=20)


def test_malformed_code_seed_is_refused():
    def prog(party):
        if party.id == 1:
            with party.scope("kkrt-setup"):
                IKNPReceiver.setup(party, 0).random(party.prg.bits(CODE_BITS))
                party.send(0, "code", np.zeros(15, np.uint8))
            return None
        return KKRTReceiver.setup(party, 1)

    with pytest.raises((EncodingError, MalformedPeerData), match="code seed"):
        mpc.run(prog, parties=2, preprocessing=None, timeout=20)
