"""Wire format: round trips, and every malformed frame rejected with a clear error."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mpc.errors import EncodingError
from mpc.transport.wire import DTYPES, WireLimits, decode_frame, encode_frame

SESSION = b"12345678"


@settings(max_examples=80, deadline=None)
@given(arrays=st.lists(hnp.arrays(st.sampled_from([np.dtype(d) for d in ("uint64", "int32", "float64", "uint8", "bool")]),
                                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                       max_size=4),
       tag=st.text(max_size=30), rnd=st.integers(0, 2**31 - 2))
def test_round_trip(arrays, tag, rnd):
    frame = encode_frame(tag, arrays, session=SESSION, round=rnd)
    out = decode_frame(frame, session=SESSION)
    assert out.tag == tag and out.round == rnd and len(out.arrays) == len(arrays)
    for a, b in zip(arrays, out.arrays):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_payload_is_raw_bytes_after_small_header():
    x = np.arange(4, dtype=np.uint64)
    frame = encode_frame("t", [x], session=SESSION)
    assert frame.endswith(x.tobytes())
    assert len(frame) - x.nbytes < 40


def test_non_numeric_dtype_refused():
    with pytest.raises(EncodingError, match="cannot be sent"):
        encode_frame("t", [np.array(["a"], dtype=object)], session=SESSION)


def _frame():
    return encode_frame("mul#0", [np.arange(6, dtype=np.uint64).reshape(2, 3)], session=SESSION)


def test_truncated_frames_rejected_at_every_length():
    frame = _frame()
    for cut in range(len(frame)):
        with pytest.raises(EncodingError):
            decode_frame(frame[:cut], session=SESSION)


def test_oversized_frame_rejected():
    with pytest.raises(EncodingError, match="oversized"):
        decode_frame(_frame() + b"\0", session=SESSION)
    with pytest.raises(EncodingError, match="limit"):
        decode_frame(_frame(), session=SESSION, limits=WireLimits(max_frame_bytes=20))


def test_bad_magic_version_session_dtype_rank():
    frame = bytearray(_frame())
    bad = bytes(frame)
    with pytest.raises(EncodingError, match="magic"):
        decode_frame(b"XX" + bad[2:], session=SESSION)
    with pytest.raises(EncodingError, match="version"):
        decode_frame(bad[:2] + b"\x09" + bad[3:], session=SESSION)
    with pytest.raises(EncodingError, match="session"):
        decode_frame(bad, session=b"87654321")
    head = 2 + 1 + 1 + 8 + 4 + 2 + 2 + len("mul#0")
    with pytest.raises(EncodingError, match="dtype"):
        decode_frame(bad[:head] + bytes([len(DTYPES)]) + bad[head + 1:], session=SESSION)
    with pytest.raises(EncodingError, match="rank"):
        decode_frame(bad[:head + 1] + bytes([200]) + bad[head + 2:], session=SESSION)


def test_huge_announced_shape_rejected_before_allocation():
    frame = _frame()
    head = 2 + 1 + 1 + 8 + 4 + 2 + 2 + len("mul#0") + 2
    forged = frame[:head] + struct.pack("<QQ", 2**40, 2**20) + frame[head + 16:]
    with pytest.raises(EncodingError, match="size limit|truncated"):
        decode_frame(forged, session=SESSION)


def test_zero_sized_arrays_with_huge_dimensions_rejected():
    # (0, 2^63) holds no bytes, so the size check passes; the dimension check refuses it.
    frame = encode_frame("t", [np.zeros((0, 2), np.uint8)], session=SESSION)
    head = 2 + 1 + 1 + 8 + 4 + 2 + 2 + 1 + 2
    for dims in ((0, 2**63), (2**41, 0)):
        forged = frame[:head] + struct.pack("<QQ", *dims)
        with pytest.raises(EncodingError, match="2\\^40"):
            decode_frame(forged, session=SESSION)


def test_implausible_rounds_rejected_both_ways():
    with pytest.raises(EncodingError, match="round"):
        encode_frame("t", [], session=SESSION, round=2**32)
    frame = bytearray(encode_frame("t", [], session=SESSION, round=5))
    struct.pack_into("<I", frame, 12, 2**32 - 1)          # the u32 round field
    with pytest.raises(EncodingError, match="round"):
        decode_frame(bytes(frame), session=SESSION)


@settings(max_examples=60, deadline=None)
@given(rnd=st.one_of(st.integers(0, 2**32 - 1), st.integers(2**31 - 4, 2**31 + 4)))
def test_round_limit_is_one_boundary_for_sending_and_receiving(rnd):
    # a round is sent iff it is received, and a received round's successor can be sent
    frame = bytearray(encode_frame("t", [], session=SESSION, round=0))
    struct.pack_into("<I", frame, 12, rnd)
    try:
        got = decode_frame(bytes(frame), session=SESSION)
    except EncodingError:
        accepted = False
    else:
        accepted = True
        assert got.round == rnd
        encode_frame("t", [], session=SESSION, round=rnd + 1)
    try:
        encode_frame("t", [], session=SESSION, round=rnd)
        sendable = True
    except EncodingError:
        sendable = False
    assert accepted == (rnd <= 2**31 - 2)
    assert sendable == (rnd <= 2**31 - 1)


def test_a_peer_announcing_the_last_round_is_blamed_by_its_receiver():
    # Party 1 announces round 2^31 - 1 to party 0: party 0 must refuse it naming party 1,
    # instead of moving its clock to 2^31 and having party 2 refuse party 0's next frame.
    from mpc.party import Party
    from mpc.transport.memory import MemoryNetwork

    net = MemoryNetwork(3)
    p0, p1, p2 = (Party(i, 3, net.endpoint(i), session=SESSION, timeout=5) for i in range(3))
    frame = bytearray(encode_frame("x", [np.zeros(1, np.uint8)], session=SESSION, round=0))
    struct.pack_into("<I", frame, 12, 2**31 - 1)
    p1.endpoint.send_frame(0, bytes(frame))
    with pytest.raises(EncodingError, match="from party 1 .*round"):
        p0.recv(1, "x")
    assert p0.clock < 2**31 - 1
    p0.send(2, "y", np.zeros(1, np.uint8))
    p2.recv(0, "y")


def test_invalid_utf8_tag_rejected():
    frame = encode_frame("ab", [], session=SESSION)
    with pytest.raises(EncodingError, match="UTF-8"):
        decode_frame(frame[:-2] + b"\xff\xfe", session=SESSION)


def test_decoded_arrays_are_read_only_views():
    out = decode_frame(_frame(), session=SESSION)
    with pytest.raises(ValueError):
        out.arrays[0][0, 0] = 1


def _empty_but_huge(tag, session=SESSION, dims=(0, 2**40, 2**40)):
    """A frame whose one array holds no bytes but announces ``dims`` (each within 2^40)."""
    frame = encode_frame(tag, [np.zeros((0,) * len(dims), np.uint8)], session=session)
    return frame[:-8 * len(dims)] + struct.pack(f"<{len(dims)}Q", *dims)


def test_zero_sized_arrays_whose_other_dimensions_multiply_beyond_2_40_rejected():
    # every dimension is within 2^40 and the array holds no bytes, but numpy cannot shape it
    for dims in ((0, 2**40, 2**40), (2**21, 2**21, 0), (0, 2**30, 2**20, 2**20)):
        with pytest.raises(EncodingError, match="2\\^40"):
            decode_frame(_empty_but_huge("t", dims=dims), session=SESSION)
    ok = decode_frame(_empty_but_huge("t", dims=(0, 2**20, 2**20)), session=SESSION)
    assert ok.arrays[0].shape == (0, 2**20, 2**20)


def test_party_recv_and_try_recv_name_peer_and_round_for_a_malformed_frame():
    from mpc.party import Party
    from mpc.transport.memory import MemoryNetwork

    net = MemoryNetwork(2)
    a, b = (Party(i, 2, net.endpoint(i), session=SESSION, timeout=5) for i in range(2))
    for method in (b.recv, b.try_recv):
        a.endpoint.send_frame(1, _empty_but_huge("x"))
        with pytest.raises(EncodingError, match="from party 0 .*'x' \\(round 0\\)"):
            method(0, "x")
