"""Scatter sends over TCP: a frame goes from the arrays' memory into TLS without being joined."""

import numpy as np
from hypothesis import given, settings, strategies as st

from mpc.transport import tcp
from mpc.transport.wire import decode_frame, encode_frame, encode_frame_parts
from tests.mpc.transport.test_tcp import SESSION, _close_all, _mesh

_SIZES = st.lists(st.integers(0, 3 * tcp._PIECE + 7), min_size=0, max_size=5)


@settings(max_examples=40, deadline=None)
@given(sizes=_SIZES)
def test_pieces_rebuild_the_record_in_bounded_pieces(sizes):
    head = tcp.RECORD.pack(tcp.DATA, sum(sizes))
    parts = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    pieces = [bytes(p) for p in tcp._pieces(head, parts)]
    assert b"".join(pieces) == head + b"".join(parts)
    assert all(0 < len(p) <= tcp._PIECE for p in pieces)
    if len(head) + sum(sizes) <= tcp.COALESCE:  # a small message is one TLS write
        assert len(pieces) == 1


def test_frame_parts_join_to_the_frame():
    arrays = [np.arange(5, dtype=np.uint64), np.zeros((0, 3)), np.ones((2, 2), bool)[:, ::-1]]
    parts = encode_frame_parts("t/1", arrays, session=SESSION, round=3)
    assert b"".join(parts) == encode_frame("t/1", arrays, session=SESSION, round=3)


def test_scattered_frame_arrives_intact_and_later_writes_do_not_leak(tmp_path):
    eps, _, _ = _mesh(tmp_path)
    try:
        big = np.arange(3 * tcp._PIECE // 8 + 11, dtype=np.uint64)  # pieces not record-aligned
        small = np.array([7, -1], np.int32)
        parts = encode_frame_parts("x", [small, big], session=SESSION, round=1)
        eps[0].send_frame_parts(1, parts)
        big[:] = 0  # encrypted already: the receiver must still see the values sent
        small[:] = 0
        got = decode_frame(eps[1].recv_frame(0, 10.0), session=SESSION)
        assert got.tag == "x" and got.round == 1
        assert got.arrays[0].tolist() == [7, -1]
        assert np.array_equal(got.arrays[1], np.arange(big.size, dtype=np.uint64))
    finally:
        _close_all(eps)


def test_a_connection_closed_while_a_sender_flushes_it_is_no_error(tmp_path):
    """The I/O thread may close a connection (peer gone) while the party's thread sends from it."""
    eps, _, _ = _mesh(tmp_path)
    try:
        c = eps[0]._conns[1]

        class Closing:  # the socket of a connection that the other thread closes mid-send
            def send(self, view):
                c.out.clear()
                return 1

        real, c.sock = c.sock, Closing()
        c.out.append(memoryview(b"ciphertext"))
        try:
            eps[0]._push(c)  # must not raise IndexError
        finally:
            c.sock = real
        assert not c.out
    finally:
        _close_all(eps)


def test_a_socket_error_met_by_a_sender_leaves_the_close_to_the_io_thread(tmp_path):
    """The party's thread must not close a socket that the I/O thread's selector holds (a
    register/modify between its ``closed`` check and the call would raise and end that thread)."""
    import threading
    eps, _, _ = _mesh(tmp_path)
    try:
        c = eps[0]._conns[1]
        me = threading.current_thread()
        closed_by: list = []

        class Reset:  # the peer reset the connection; the I/O thread is told "would block"
            def __init__(self, real):
                self.real = real

            def fileno(self):
                return self.real.fileno()

            def send(self, view):
                if threading.current_thread() is me:
                    raise ConnectionResetError(104, "Connection reset by peer")
                raise BlockingIOError

            def close(self):
                closed_by.append(threading.current_thread())

        real, c.sock = c.sock, Reset(c.sock)
        c.out.append(memoryview(b"ciphertext"))
        try:
            eps[0]._push(c)
            assert closed_by == [] and not c.closed and c.error is None
            assert c.out   # still queued: the I/O thread meets the error and fails the connection
        finally:
            c.out.clear()
            c.sock = real
    finally:
        _close_all(eps)
