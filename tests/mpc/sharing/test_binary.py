"""Binary (XOR) sharing, AND via binary triples, daBits and the A2B / B2A conversions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mpc
from mpc.errors import EncodingError, ParameterError
from mpc.sharing import binary, convert
from mpc.sharing.binary import BinaryTensor, pack_bits, share_binary, split_even_odd, unpack_bits, word_bits

PARTIES = [2, 3, 5]
LAYERS = {2: 0, 3: 1, 5: 3}  # carry-save layers to reduce n summands to two
EXTREMES = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**62, 2**62 - 1, 0xAAAAAAAAAAAAAAAA],
                    dtype=np.uint64)


def _words(rng, n):
    return rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)


# --- pure bit-stream helpers -------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(bits=hnp.arrays(np.uint8, st.integers(0, 300), elements=st.integers(0, 1)))
def test_pack_unpack_round_trip(bits):
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.size == (bits.size + 63) // 64
    assert np.array_equal(unpack_bits(words, bits.size), bits)
    # stream bit t is bit t % 64 of word t // 64
    for t in map(int, np.flatnonzero(bits)[:5]):
        assert (int(words[t // 64]) >> (t % 64)) & 1 == 1


@settings(max_examples=40, deadline=None)
@given(words=hnp.arrays(np.uint64, st.integers(0, 9)))
def test_split_even_odd_matches_reference(words):
    bits = unpack_bits(words, 64 * words.size)
    even, odd = split_even_odd(words)
    assert np.array_equal(unpack_bits(even, bits[0::2].size), bits[0::2])
    assert np.array_equal(unpack_bits(odd, bits[1::2].size), bits[1::2])


def test_word_bits_and_errors():
    w = np.array([5, 2**63], np.uint64)
    b = word_bits(w)
    assert b.shape == (2, 64)
    assert list(b[0, :4]) == [1, 0, 1, 0] and b[1, 63] == 1 and b[1, :63].sum() == 0
    assert word_bits(w, 3).shape == (2, 3)
    with pytest.raises(ParameterError):
        word_bits(w, 65)
    with pytest.raises(ParameterError):
        unpack_bits(np.zeros(1, np.uint64), 65)


# --- binary shared tensors ---------------------------------------------------------------
@pytest.mark.parametrize("n", PARTIES)
def test_xor_not_shift_and_or_against_numpy(n):
    rng = np.random.default_rng(n)
    x = np.concatenate([_words(rng, 200), EXTREMES])
    y = np.concatenate([_words(rng, 200), EXTREMES[::-1]])
    mask = _words(rng, x.size)

    def prog(party):
        bx = share_binary(party, x if party.id == 0 else None, 0)
        by = share_binary(party, y if party.id == party.n - 1 else None, party.n - 1)
        outs = [bx ^ by, ~bx, bx << 7, bx >> 63, bx & by, bx | by, bx & mask, bx ^ mask, mask ^ bx,
                bx[3:10], (bx & by).reshape(2, -1)]
        return [o.reveal() for o in outs]

    got = mpc.run(prog, n).outputs
    want = [x ^ y, ~x, x << np.uint64(7), x >> np.uint64(63), x & y, x | y, x & mask, x ^ mask,
            x ^ mask, x[3:10], (x & y).reshape(2, -1)]
    for out in got:
        for g, w in zip(out, want):
            assert g.dtype == np.uint64 and np.array_equal(g, w)


@pytest.mark.parametrize("n", [2, 3])
def test_and_costs_one_round_and_16_bytes_per_word(n):
    w = 1000

    def prog(party):
        bx = share_binary(party, np.arange(w) if party.id == 0 else None, 0)
        with party.phase("and"):
            z = bx & bx
        return z.reveal()

    res = mpc.run(prog, n)
    assert np.array_equal(res.outputs[0], np.arange(w, dtype=np.uint64))
    cost = res.cost.phases()["and"]
    assert cost.rounds == 1
    for p in range(n):
        assert cost.bytes_sent[p] == 16 * w * (n - 1)


def test_binary_errors_are_clear():
    def prog(party):
        bx = share_binary(party, np.zeros(4, np.uint64) if party.id == 0 else None, 0)
        with pytest.raises(ParameterError, match="shift amount"):
            bx << 64
        with pytest.raises(ParameterError, match="shift amount"):
            bx >> -1
        with pytest.raises(ParameterError, match="integer words"):
            bx ^ 1.5
        with pytest.raises(ParameterError, match="one shape"):
            binary.and_words(party, bx.share, bx.share[:2])
        with pytest.raises(ParameterError, match="reveal"):
            bx.reveal(to=7)
        with pytest.raises(TypeError):
            bool(bx)
        return repr(bx)

    assert "BinaryTensor" in mpc.run(prog, 2).outputs[0]
    with pytest.raises(ParameterError, match="owns this input"):
        mpc.run(lambda party: share_binary(party, None, 0), 2)


def test_and_without_preprocessing_is_named():
    def prog(party):
        bx = BinaryTensor(party, np.zeros(3, np.uint64))
        return bx & bx

    with pytest.raises(ParameterError, match="preprocessing"):
        mpc.run(prog, 2, preprocessing=None)


def test_reveal_binary_to_one_party():
    def prog(party):
        bx = share_binary(party, np.array([9, 10]) if party.id == 1 else None, 1)
        return bx.reveal(to=2)

    out = mpc.run(prog, 3).outputs
    assert out[0] is None and out[1] is None and list(out[2]) == [9, 10]


# --- daBits from the dealer ---------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 5])
def test_dealer_dabits_agree_in_both_domains(n):
    shape = (7, 13)

    def prog(party):
        party.preprocessing.prefetch("dabit", shape, count=1)
        return party.preprocessing.dabit(shape), party.preprocessing.dabit(shape)

    res = mpc.run(prog, n)
    for k in range(2):
        packed = np.bitwise_xor.reduce([out[k][0] for out in res.outputs])
        arith = np.sum([out[k][1] for out in res.outputs], axis=0, dtype=np.uint64)
        bits = unpack_bits(packed, 91).reshape(shape)
        assert packed.shape == (2,) and arith.shape == shape
        assert np.array_equal(arith, bits.astype(np.uint64))
        assert 20 < bits.sum() < 71  # random bits, not constant


# --- conversions ------------------------------------------------------------------------
def _ring_inputs(rng, m):
    return np.concatenate([_words(rng, m), EXTREMES])


def _ring_share(party, x):
    """This party's additive share of arbitrary ring words ``x`` (a test-only dealt sharing).

    ``mpc.share`` bounds values (|x| < 2^63 for integers); the conversions work on any word.
    """
    from mpc.rand import PRG
    from mpc.sharing.additive import split

    return split(np.asarray(x, dtype=np.uint64), party.n, PRG(bytes(16)))[party.id]


@pytest.mark.parametrize("n", PARTIES)
def test_a2b_b2a_round_trip_and_rounds(n):
    rng = np.random.default_rng(10 + n)
    x = _ring_inputs(rng, 500)

    def prog(party):
        sx = _ring_share(party, x)
        with party.phase("a2b"):
            bits = convert.a2b(party, sx)
        with party.phase("b2a"):
            back = convert.b2a(party, bits)
        return BinaryTensor(party, bits).reveal(), mpc.SharedTensor(party, back, 0).reveal_ring()

    res = mpc.run(prog, n)
    for b, a in res.outputs:
        assert np.array_equal(b, x) and np.array_equal(a, x)
    phases = res.cost.phases()
    assert phases["a2b"].rounds == LAYERS[n] + 7
    assert phases["b2a"].rounds == 1
    m = x.size
    assert phases["a2b"].bytes_sent[0] == 16 * m * (LAYERS[n] + 12) * (n - 1)
    assert phases["b2a"].bytes_sent[0] == 8 * m * (n - 1)


@pytest.mark.parametrize("n", PARTIES)
def test_msb_and_bit_injection(n):
    rng = np.random.default_rng(20 + n)
    x = _ring_inputs(rng, 1000).reshape(-1, 2)
    y = rng.integers(-1000, 1000, x.shape)

    def prog(party):
        sx = mpc.SharedTensor(party, _ring_share(party, x), 0)
        sy = mpc.share(party, y if party.id == 1 else None, 1, integer=True)
        with party.phase("msb"):
            stream = convert.msb(party, sx.share)
        top = BinaryTensor(party, stream).reveal()
        arith, (prod,) = convert.inject(party, stream, x.size, [sy.share.reshape(-1)])
        # the low bit of a sum is the XOR of the low bits of the additive shares
        low = convert.bit_inject(party, sx.share & np.uint64(1))
        return (top, mpc.SharedTensor(party, arith, 0).reveal(), mpc.SharedTensor(party, prod, 0).reveal(),
                mpc.SharedTensor(party, low, 0).reveal())

    res = mpc.run(prog, n)
    want = (x.reshape(-1) >> np.uint64(63)).astype(np.int64)
    for top, bits, prod, low in res.outputs:
        assert np.array_equal(low, (x & np.uint64(1)).astype(np.int64))
        assert np.array_equal(unpack_bits(top, x.size), want)
        assert np.array_equal(bits, want)
        assert np.array_equal(prod, want * y.reshape(-1))
    msb_cost = res.cost.phases()["msb"]
    assert msb_cost.rounds == LAYERS[n] + 7
    m = x.size  # 1000, not a multiple of 64: the documented exact count of AND words
    w = m + 2 * sum(-(-m // 2**k) for k in range(1, 6)) + -(-m // 64)
    for p in range(n):
        assert msb_cost.bytes_sent[p] == (n - 1) * (16 * m * LAYERS[n] + 16 * w)


def test_bit_inject_of_xor_shared_bits():
    bits = np.array([[0, 1, 1], [1, 0, 0]], np.uint64)

    def prog(party):
        b = share_binary(party, bits if party.id == 0 else None, 0)
        return mpc.SharedTensor(party, convert.bit_inject(party, b.share), 0).reveal()

    assert np.array_equal(mpc.run(prog, 3).outputs[1], bits.astype(np.int64))


def test_conversions_need_preprocessing_and_matching_sizes():
    def prog(party):
        with pytest.raises(ParameterError, match="words"):
            convert.inject(party, np.zeros(1, np.uint64), 65)
        with pytest.raises(ParameterError, match="factor"):
            convert.inject(party, np.zeros(1, np.uint64), 3, [np.zeros(4, np.uint64)])
        z = convert.a2b(party, np.zeros(0, np.uint64))
        return z.shape, convert.msb(party, np.zeros(0, np.uint64)).shape

    assert mpc.run(prog, 2).outputs[0] == ((0,), (0,))
    with pytest.raises(ParameterError, match="preprocessing"):
        mpc.run(lambda party: convert.a2b(party, np.zeros(3, np.uint64)), 2, preprocessing=None)


BAD_PAIRS = [
    (np.zeros(1, np.uint64), np.zeros(1, np.uint64)),      # would broadcast silently
    (np.zeros((), np.uint64), np.zeros((), np.uint64)),    # likewise
    (np.zeros(4, np.uint8), np.zeros(4, np.uint8)),        # would be cast silently
    (np.zeros(4, np.uint64),),                             # one array missing
    (np.zeros(4, np.uint64),) * 3,                         # one array too many
]


@pytest.mark.parametrize("bad", BAD_PAIRS)
def test_malformed_and_openings_from_a_peer_are_refused(bad):
    def prog(party):
        if party.id == 1:  # a faulty peer: right tag, wrong arrays
            party.preprocessing.binary_triple((4,))
            party.send(0, party.fresh("and"), *bad)
            party.recv(0, "and#0")
            return None
        return binary.and_words(party, np.arange(4, dtype=np.uint64), np.arange(4, dtype=np.uint64))

    with pytest.raises(EncodingError, match=r"party 1 sent .*'and#0'.*expected uint64\[4\], uint64\[4\]"):
        mpc.run(prog, 2)


def test_malformed_binary_reveal_share_and_injection_are_refused():
    def reveal(party):
        if party.id == 1:
            party.send(0, party.fresh("open_binary"), np.zeros(1, np.uint64))
            return None
        return BinaryTensor(party, np.zeros(3, np.uint64)).reveal(to=0)

    with pytest.raises(EncodingError, match="open_binary"):
        mpc.run(reveal, 2)

    for seed, shape in [(np.zeros(16, np.uint8), np.array([-1], np.int64)),
                        (np.zeros(16, np.uint8), np.array([1.5])),
                        (np.zeros(15, np.uint8), np.array([2], np.uint64)),
                        (np.zeros(16, np.uint8), np.array([2**40, 2**40], np.uint64))]:
        def share(party, seed=seed, shape=shape):
            if party.id == 0:
                party.send(1, party.fresh("share_binary"), seed, shape)
                return None
            return share_binary(party, None, 0)

        with pytest.raises(EncodingError, match="share message from party 0"):
            mpc.run(share, 2)

    def inject(party):
        if party.id == 1:
            party.preprocessing.dabit((70,))
            party.send(0, party.fresh("inject"), np.zeros(1, np.uint64))
            party.recv(0, "inject#0")
            return None
        return convert.inject(party, np.zeros(2, np.uint64), 70)

    with pytest.raises(EncodingError, match="inject"):
        mpc.run(inject, 2)


def test_values_opened_during_and_and_a2b_are_uniform_whatever_the_inputs():
    """Every value party 1 sees opened (XOR of all parties' masked words) is uniform for 0 and 2^64-1 inputs."""

    def prog(party, value, sink):
        bx = share_binary(party, np.full(4000, value, np.uint64) if party.id == 0 else None, 0)
        if party.id == 1:
            exchange = party.exchange

            def wrapped(name, *arrays, peers=None, strict=False):
                got = exchange(name, *arrays, peers=peers, strict=strict)
                for k, mine in enumerate(arrays):
                    sink.append(np.bitwise_xor.reduce([mine] + [g[k] for g in got.values()]))
                return got

            party.exchange = wrapped
        bx & bx
        convert.a2b(party, bx.share)
        return None

    hists = []
    for value in (0, 2**64 - 1):
        sink = []
        mpc.run(prog, 3, args=(value, sink))
        raw = np.concatenate([a.reshape(-1).view(np.uint8) for a in sink])
        hists.append(np.bincount(raw, minlength=256))
    for h in hists:
        e = h.sum() / 256
        assert ((h - e) ** 2 / e).sum() < 400  # 255 dof: mean 255, sd ~22.6
    tot = hists[0] + hists[1]
    chi = (((hists[0] - tot / 2) ** 2 + (hists[1] - tot / 2) ** 2) / (tot / 2)).sum()
    assert chi < 400
