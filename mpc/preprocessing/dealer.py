"""A trusted dealer of Beaver triples and truncation pairs (layer: mpc core).

**Trusted third party.** The dealer knows every triple; whoever runs it can
read every multiplied value. It suits tests, teaching and benchmarks, and
deployments that have such a party. Dealer-free sources (OT, HE) plug in behind
the same :class:`~mpc.preprocessing.base.Preprocessing` interface.

Protocol (CrypTen's trusted third party, seed-compressed):

1. Setup: the dealer draws a master seed from the OS CSPRNG and gives party i
   the 128-bit seed ``s_i = SHAKE128(master, i)`` (16 bytes per party).
2. Request k: every party i expands ``PRG(s_i, nonce=k)`` into its shares of
   ``a``, ``b`` (and, for i < n-1, of ``c``). No message.
3. The dealer, who can expand every seed, sends party n-1 only the correction
   ``c_{n-1} = a*b - sum_{i<n-1} c_i`` (or ``a @ b``, or the truncation and
   binary analogues). For daBits, the random bits are the XOR of every
   party's expanded stream, and party n-1 receives only its additive share
   ``r - sum_{i<n-1} r_i`` (8 bytes per bit).

Cost: 16 bytes per party once, then one array of c's shape per triple to the
last party (two arrays of the pair's shape per truncation pair): dealer traffic
is ``8 * |c|`` bytes per triple instead of ``24 * n * |c|``.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arith.ring import ring_matmul
from ..errors import MalformedPeerData, ParameterError
from ..rand import PRG, derive_seed, random_seed
from ..transport.stats import DEALER, MessageRecord
from ..transport.wire import decode_frame, encode_frame
from .base import Preprocessing, Shares, triple_shapes
from .store import SealableMixin

if TYPE_CHECKING:
    from ..party import Party


def correction_shapes(kind: str, *args: Any) -> list[tuple[int, ...]]:
    """The shapes of the ``uint64`` arrays the dealer sends the last party for one request."""
    if kind in ("mul", "matmul"):
        return [triple_shapes(kind, *args)]  # type: ignore[arg-type]
    if kind == "trunc":
        return [tuple(args[0])] * 2  # type: ignore[arg-type]
    if kind in ("binary", "dabit"):
        return [tuple(args[0])]  # type: ignore[arg-type]
    raise ParameterError(f"unknown preprocessing kind {kind!r}")


def _check_correction(party: Party, tag: str, got: tuple[np.ndarray, ...],
                      shapes: list[tuple[int, ...]]) -> None:
    """A correction of another count, dtype or shape would be broadcast into a wrong product."""
    if len(got) != len(shapes) or any(g.dtype != np.uint64 or g.shape != s for g, s in zip(got, shapes)):
        seen = ", ".join(f"{g.dtype}{list(g.shape)}" for g in got) or "nothing"
        want = ", ".join(f"uint64{list(s)}" for s in shapes)
        raise MalformedPeerData(f"party {party.id}: the dealer sent {seen} under {tag!r}, expected {want}",
                                peer="dealer", tag=tag)


class TrustedDealerWarning(UserWarning):
    """Warns that a trusted third party sees every triple.

    Issued once per dealer, when it makes its first item (a program that
    multiplies nothing never sees it), pointing at the user's line that asked
    for it; ``warnings.simplefilter("ignore", mpc.TrustedDealerWarning)``
    silences it.
    """


_MPC_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# The library's own packages (siblings of mpc/, in a checkout and when installed), whose frames
# are not the user's line: found by path, so that mpc imports neither protocols nor ml.
_LIBRARY_DIRS = tuple(os.path.join(os.path.dirname(_MPC_DIR.rstrip(os.sep)), name) + os.sep
                      for name in ("mpc", "protocols", "ml"))
_THREADING = os.path.abspath(threading.__file__)


def user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` made by this function's caller that points at the
    first frame outside the library's packages (``mpc``, ``protocols``, ``ml``: the user's line);
    if that frame is the thread machinery (no user code on this thread), the outermost library
    frame instead."""
    frame: FrameType | None = sys._getframe(1)
    level, last = 1, 1
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(_LIBRARY_DIRS):
            return last if name == _THREADING else level
        last = level
        frame, level = frame.f_back, level + 1
    return last


class TrustedDealer:
    """The dealer: holds the master seed and answers the last party's corrections."""

    def __init__(self, n_parties: int, master_seed: bytes | None = None, *, warn: bool = True) -> None:
        """``warn=False``: no :class:`TrustedDealerWarning` (e.g. a plan's throw-away recording run)."""
        if n_parties < 2:
            raise ParameterError(f"a dealer serves at least 2 parties, got {n_parties}")
        self.n = n_parties
        self._master = master_seed if master_seed is not None else random_seed()
        self._lock = threading.Lock()
        self._warned = not warn

    def _warn_once(self) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn("TrustedDealer is a trusted third party: it knows every Beaver triple. "
                      "Use a dealer-free source where no such party exists.",
                      TrustedDealerWarning, stacklevel=user_stacklevel())

    def seed_for(self, party_id: int) -> bytes:
        """The 16-byte seed given to ``party_id`` at setup."""
        if not 0 <= party_id < self.n:
            raise ParameterError(f"party id {party_id} out of range [0, {self.n})")
        return derive_seed(self._master, "dealer/party", party_id)

    def _prgs(self, k: int) -> list[PRG]:
        return [PRG(self.seed_for(i), k) for i in range(self.n)]

    def correction(self, k: int, kind: str, *args: Any) -> tuple[np.ndarray, ...]:
        """Arrays the last party needs for request ``k`` (see module docstring)."""
        self._warn_once()
        with self._lock:
            prgs = self._prgs(k)
            last = self.n - 1
            if kind in ("mul", "matmul"):
                sa, sb = args  # type: ignore[misc]
                sc = triple_shapes(kind, sa, sb)  # type: ignore[arg-type]
                a = np.zeros(sa, np.uint64)
                b = np.zeros(sb, np.uint64)
                c_rest = np.zeros(sc, np.uint64)
                for i, prg in enumerate(prgs):
                    a += prg.uint64(sa)
                    b += prg.uint64(sb)
                    if i != last:
                        c_rest += prg.uint64(sc)
                c = a * b if kind == "mul" else ring_matmul(a, b)
                return (c - c_rest,)
            if kind == "trunc":
                shape, f = args  # type: ignore[misc]
                r = np.zeros(shape, np.uint64)
                hi_rest = np.zeros(shape, np.uint64)
                msb_rest = np.zeros(shape, np.uint64)
                for i, prg in enumerate(prgs):
                    r += prg.uint64(shape)
                    if i != last:
                        hi_rest += prg.uint64(shape)
                        msb_rest += prg.uint64(shape)
                hi = r >> np.uint64(f)
                msb = r >> np.uint64(63)
                return (hi - hi_rest, msb - msb_rest)
            if kind == "binary":
                (shape,) = args
                a = np.zeros(shape, np.uint64)
                b = np.zeros(shape, np.uint64)
                c_rest = np.zeros(shape, np.uint64)
                for i, prg in enumerate(prgs):
                    a ^= prg.uint64(shape)
                    b ^= prg.uint64(shape)
                    if i != last:
                        c_rest ^= prg.uint64(shape)
                return ((a & b) ^ c_rest,)
            if kind == "dabit":
                # r is the XOR of every party's packed stream; only the
                # additive share of the last party is a correction.
                (shape,) = args
                words = (int(np.prod(shape, dtype=np.int64)) + 63) // 64
                r_packed = np.zeros(words, np.uint64)
                a_rest = np.zeros(shape, np.uint64)
                for i, prg in enumerate(prgs):
                    r_packed ^= prg.uint64(words)
                    if i != last:
                        a_rest += prg.uint64(shape)
                r = np.unpackbits(r_packed.astype("<u8").view(np.uint8), bitorder="little",
                                  count=int(np.prod(shape, dtype=np.int64))).reshape(shape)
                return (r.astype(np.uint64) - a_rest,)
            raise ParameterError(f"unknown preprocessing kind {kind!r}")

    def source(self, party: Party) -> "DealerSource":
        """The preprocessing source of ``party`` (a :class:`mpc.party.Party`)."""
        return DealerSource(party, self)


class DealerSource(SealableMixin, Preprocessing):
    """One party's view of a :class:`TrustedDealer` (in-process link); sealable like the others."""

    def prefetch(self, kind: str, *args: Any, count: int = 1) -> None:
        """Produce ``count`` items now; once sealed, only check that they are stored."""
        norm = self._prefetch_args(kind, args, count)
        if norm is not None:
            super().prefetch(kind, *norm, count=count)

    def __init__(self, party: Party, dealer: TrustedDealer) -> None:
        super().__init__()
        self.party = party
        self.dealer = dealer
        self._last = party.id == dealer.n - 1  # type: ignore[attr-defined]
        self._k = 0
        seed = dealer.seed_for(party.id)  # type: ignore[attr-defined]
        self._note("dealer/seed", (np.frombuffer(seed, np.uint8),))
        self._seed = seed

    def _note(self, tag: str, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Pass ``arrays`` through the wire format and log them as a dealer message."""
        party = self.party
        frame = encode_frame(tag, arrays, session=party.session, round=party.clock)  # type: ignore[attr-defined]
        decoded = decode_frame(frame, session=party.session).arrays  # type: ignore[attr-defined]
        payload = sum(a.nbytes for a in arrays)
        rec = MessageRecord(party.clock, DEALER, party.id, tag, "preprocessing",  # type: ignore[attr-defined]
                            payload, len(frame))
        party.note_received(rec, decoded)  # type: ignore[attr-defined]
        return decoded

    def _next(self, kind: str, *args: Any) -> tuple[PRG, int, tuple[np.ndarray, ...]]:
        k = self._k
        self._k += 1
        corr: tuple[np.ndarray, ...] = ()
        if self._last:
            tag = f"dealer/{kind}#{k}"
            corr = self._note(tag, self.dealer.correction(k, kind, *args))
            _check_correction(self.party, tag, corr, correction_shapes(kind, *args))
        return PRG(self._seed, k), k, corr

    def _triple(self, op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> Shares:
        sc = triple_shapes(op, sa, sb)
        prg, _, corr = self._next(op, sa, sb)
        a = prg.uint64(sa)
        b = prg.uint64(sb)
        c = corr[0] if self._last else prg.uint64(sc)
        return a, b, c

    def _trunc_pair(self, shape: tuple[int, ...], frac_bits: int) -> Shares:
        prg, _, corr = self._next("trunc", shape, frac_bits)
        r = prg.uint64(shape)
        if self._last:
            return r, corr[0], corr[1]
        return r, prg.uint64(shape), prg.uint64(shape)

    def _binary_triple(self, shape: tuple[int, ...]) -> Shares:
        prg, _, corr = self._next("binary", shape)
        a = prg.uint64(shape)
        b = prg.uint64(shape)
        c = corr[0] if self._last else prg.uint64(shape)
        return a, b, c

    def _dabit(self, shape: tuple[int, ...]) -> Shares:
        prg, _, corr = self._next("dabit", shape)
        packed = prg.uint64((int(np.prod(shape, dtype=np.int64)) + 63) // 64)
        arith = corr[0] if self._last else prg.uint64(shape)
        return packed, arith
