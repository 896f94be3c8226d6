"""The secret-shared tensor: additive shares over Z_2^64 that behave like a numpy array (layer: mpc core).

A :class:`SharedTensor` holds one party's share and the number of fractional
bits of its fixed-point encoding (``0`` for integers). Linear operations are
local; ``*`` and ``@`` between shared tensors use a Beaver triple (one round)
and, for reals, a truncation (one more round, see
:mod:`mpc.sharing.truncation`).

Security: semi-honest, up to n-1 colluding parties (dishonest majority), with
a trusted or dealer-free preprocessing source. A secret refuses ``bool()``, so
``if secret:`` cannot leak.

Costs (n parties, ``m`` elements, 8-byte ring elements):

=====================  ======  ==========================================
operation              rounds  bytes sent per party
=====================  ======  ==========================================
share (owner)          1       17 + 8*ndim to each other party (a seed)
reveal to all          1       8*m*(n-1)
``+ -``, public ``*``  0       0
shared ``*`` (fixed)   2       8*(|x|+|y|)*(n-1) + 8*m*(n-1)
shared ``@`` (fixed)   2       8*(|x|+|y|)*(n-1) + 8*|out|*(n-1)
public float ``*``     1       8*m*(n-1) (truncation only)
=====================  ======  ==========================================
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from ..arith.ring import ring_matmul
from ..errors import ParameterError
from ..rand import PRG, random_seed
from .beaver import beaver_product
from .seeded import read_seed_message
from .truncation import truncate


def _is_integer_like(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind in "iub"


class SharedTensor:
    """One party's additive share of a secret tensor.

    Create with :func:`share` or :func:`share_all`; open with :meth:`reveal`.
    """

    __slots__ = ("party", "share", "frac_bits")
    __array_ufunc__ = None  # numpy defers ``array + shared`` to our reflected ops

    def __init__(self, party: Any, share: np.ndarray, frac_bits: int) -> None:
        self.party = party
        self.share = np.asarray(share, dtype=np.uint64)
        self.frac_bits = frac_bits

    # -- array-like properties -----------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.share.shape

    @property
    def ndim(self) -> int:
        return self.share.ndim

    @property
    def size(self) -> int:
        return self.share.size

    def __len__(self) -> int:
        return len(self.share)

    def __bool__(self) -> bool:
        raise TypeError("a secret-shared value has no truth value; reveal it or use a secure comparison")

    def __repr__(self) -> str:
        kind = f"fixed point, f={self.frac_bits}" if self.frac_bits else "integer"
        return f"SharedTensor(shape={self.shape}, {kind}, party {self.party.id})"

    def _new(self, share: np.ndarray, frac_bits: int | None = None) -> "SharedTensor":
        return SharedTensor(self.party, share, self.frac_bits if frac_bits is None else frac_bits)

    # -- coercion ----------------------------------------------------------------------
    def _check_same_session(self, other: "SharedTensor") -> None:
        if other.party is not self.party:
            if getattr(other.party, "session", None) != getattr(self.party, "session", None):
                raise ParameterError("cannot mix secret-shared tensors of different protocol runs")
            raise ParameterError("cannot mix shares held by different parties")

    def _encode_public(self, value: Any, frac_bits: int) -> np.ndarray:
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind not in "iufb":
            raise ParameterError(f"cannot combine a shared tensor with {type(value).__name__}")
        if frac_bits == 0:
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                    raise ParameterError("an integer shared tensor only combines with integers")
                arr = arr.astype(np.int64)
            return arr.astype(np.int64).view(np.uint64) if arr.dtype != np.uint64 else arr
        from ..arith.fixed import FixedPoint

        return FixedPoint(frac_bits).encode(arr.astype(np.float64))

    def _broadcast_check(self, other_shape: tuple[int, ...]) -> None:
        try:
            np.broadcast_shapes(self.shape, other_shape)
        except ValueError:
            raise ParameterError(f"shapes {self.shape} and {tuple(other_shape)} do not broadcast") from None

    def _aligned(self, other: "SharedTensor") -> tuple[np.ndarray, np.ndarray, int]:
        """Both shares at the same number of fractional bits (integers are scaled up)."""
        self._check_same_session(other)
        f = max(self.frac_bits, other.frac_bits)
        a = self.share << np.uint64(f - self.frac_bits) if f != self.frac_bits else self.share
        b = other.share << np.uint64(f - other.frac_bits) if f != other.frac_bits else other.share
        return a, b, f

    # -- linear operations (local) -----------------------------------------------------
    def __add__(self, other: Any) -> "SharedTensor":
        if isinstance(other, SharedTensor):
            a, b, f = self._aligned(other)
            self._broadcast_check(other.shape)
            return self._new(a + b, f)
        enc = self._encode_public(other, self.frac_bits)
        self._broadcast_check(enc.shape)
        if self.party.id == 0:
            return self._new(self.share + enc)
        return self._new(np.broadcast_to(self.share, np.broadcast_shapes(self.shape, enc.shape)).copy())

    __radd__ = __add__

    def __neg__(self) -> "SharedTensor":
        return self._new(np.uint64(0) - self.share)

    def __sub__(self, other: Any) -> "SharedTensor":
        if isinstance(other, SharedTensor):
            return self + (-other)
        return self + _negate_public(other)

    def __rsub__(self, other: Any) -> "SharedTensor":
        return (-self) + other

    # -- products ------------------------------------------------------------------------
    def _product(self, other: Any, op: str) -> "SharedTensor":
        fn = np.multiply if op == "mul" else ring_matmul
        if isinstance(other, SharedTensor):
            self._check_same_session(other)
            if op == "mul":
                self._broadcast_check(other.shape)
            z = beaver_product(self.party, self.share, other.share, op)
            return self._rescale(z, self.frac_bits + other.frac_bits)
        if _is_integer_like(other):
            return self._new(fn(self.share, self._encode_public(other, 0)))
        arr = np.asarray(other)
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) \
                and np.all(np.abs(arr) < 2.0**63):     # integer-valued reals: exact, no truncation
            return self._new(fn(self.share, self._encode_public(arr.astype(np.int64), 0)))
        g = self._public_precision(other)
        z = fn(self.share, self._encode_public(other, g))
        return self._rescale(z, self.frac_bits + g)

    def _public_precision(self, value: Any) -> int:
        """Fractional bits for a public real factor: f, plus e for factors below 1.

        A factor with ``max|c|`` in ``[2^-(e+1), 2^-e)`` is encoded with ``f + e``
        bits, so it keeps about f significant bits (1/400 is off by 0.002%, not
        0.1%). The product then has ``2f + e`` bits and magnitude below
        ``|x| * 2^(2f)``: exact whenever ``|x| < 2^(62 - 2f)``, the rule of every
        product (see :mod:`mpc.arith.fixed`).
        """
        f = self.party.fixed.frac_bits
        peak = float(np.max(np.abs(np.asarray(value, dtype=np.float64)), initial=0.0))
        if not 0.0 < peak < 1.0 or not np.isfinite(peak):
            return f
        e = int(np.floor(-np.log2(peak)))
        return f + max(0, min(e, 62 - 3 * f))

    def _rescale(self, z: np.ndarray, frac_bits: int) -> "SharedTensor":
        target = min(frac_bits, self.party.fixed.frac_bits)
        if frac_bits > target:
            z = truncate(self.party, z, frac_bits - target)
        return self._new(z, target)

    def __mul__(self, other: Any) -> "SharedTensor":
        if not isinstance(other, SharedTensor):
            self._broadcast_check(np.shape(other))
        return self._product(other, "mul")

    __rmul__ = __mul__

    def __matmul__(self, other: Any) -> "SharedTensor":
        if not isinstance(other, SharedTensor):
            other = np.asarray(other)
            from ..preprocessing.base import matmul_shape

            matmul_shape(self.shape, other.shape)
        return self._product(other, "matmul")

    def __rmatmul__(self, other: Any) -> "SharedTensor":
        other = np.asarray(other)
        from ..preprocessing.base import matmul_shape

        matmul_shape(other.shape, self.shape)
        if _is_integer_like(other) or (self.frac_bits == 0 and np.all(other == np.round(other))):
            return self._new(ring_matmul(self._encode_public(other, 0), self.share))
        f = self.party.fixed.frac_bits
        z = ring_matmul(self._encode_public(other, f), self.share)
        return self._rescale(z, self.frac_bits + f)

    def dot(self, other: Any) -> "SharedTensor":
        """Dot product / matrix product, as ``numpy.dot`` for 1-D and 2-D operands."""
        return self @ other

    def square(self) -> "SharedTensor":
        return self * self

    # -- reductions and shape ------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "SharedTensor":
        return self._new(self.share.sum(axis=axis, keepdims=keepdims, dtype=np.uint64))

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "SharedTensor":
        """Mean along ``axis``: a sum and one public multiplication (1 round for reals)."""
        count = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        if count == 0:
            raise ParameterError("mean of an empty tensor")
        total = self.sum(axis=axis, keepdims=keepdims)
        if total.frac_bits == 0:
            total = total._new(total.share << np.uint64(self.party.fixed.frac_bits),
                               self.party.fixed.frac_bits)
        return total * (1.0 / count)

    def reshape(self, *shape: Any) -> "SharedTensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            return self._new(self.share.reshape(shape))
        except ValueError as exc:
            raise ParameterError(f"cannot reshape {self.shape} to {shape}: {exc}") from None

    def transpose(self, *axes: int) -> "SharedTensor":
        return self._new(self.share.transpose(*axes))

    @property
    def T(self) -> "SharedTensor":
        return self._new(self.share.T)

    def flatten(self) -> "SharedTensor":
        return self._new(self.share.reshape(-1))

    ravel = flatten

    def broadcast_to(self, shape: tuple[int, ...]) -> "SharedTensor":
        try:
            return self._new(np.broadcast_to(self.share, shape).copy())
        except ValueError:
            raise ParameterError(f"cannot broadcast {self.shape} to {tuple(shape)}") from None

    def __getitem__(self, index: Any) -> "SharedTensor":
        return self._new(np.asarray(self.share[index]))

    def __setitem__(self, index: Any, value: "SharedTensor") -> None:
        if not isinstance(value, SharedTensor):
            raise ParameterError("assign only shared tensors into a shared tensor")
        a, b, f = self._aligned(value)
        if f != self.frac_bits:
            raise ParameterError("assigned tensor must have the same encoding")
        self.share[index] = b

    # -- comparisons and nonlinear functions (mpc.sharing.compare, mpc.sharing.approx) ----
    __hash__ = object.__hash__  # keep identity hashing although ``==`` is overloaded

    def __lt__(self, other: Any) -> "SharedTensor":
        from . import compare
        return compare.less(self, other)

    def __le__(self, other: Any) -> "SharedTensor":
        from . import compare
        return compare.less_equal(self, other)

    def __gt__(self, other: Any) -> "SharedTensor":
        from . import compare
        return compare.greater(self, other)

    def __ge__(self, other: Any) -> "SharedTensor":
        from . import compare
        return compare.greater_equal(self, other)

    def __eq__(self, other: Any) -> "SharedTensor":  # type: ignore[override]
        from . import compare
        if not isinstance(other, SharedTensor) and not _is_numeric(other):
            return NotImplemented
        return compare.equal(self, other)

    def __ne__(self, other: Any) -> "SharedTensor":  # type: ignore[override]
        from . import compare
        if not isinstance(other, SharedTensor) and not _is_numeric(other):
            return NotImplemented
        return compare.not_equal(self, other)

    def sign(self) -> "SharedTensor":
        from . import compare
        return compare.sign(self)

    def abs(self) -> "SharedTensor":
        from . import compare
        return compare.absolute(self)

    __abs__ = abs

    def relu(self) -> "SharedTensor":
        from . import compare
        return compare.relu(self)

    def max(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        from . import compare
        return compare.reduce_max(self, axis, keepdims)

    def min(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        from . import compare
        return compare.reduce_min(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        from . import compare
        return compare.argmax(self, axis, keepdims)

    def clip(self, lo: Any = None, hi: Any = None) -> "SharedTensor":
        from . import compare
        return compare.clip(self, lo, hi)

    def exp(self) -> "SharedTensor":
        from . import approx
        return approx.exp(self)

    def log(self) -> "SharedTensor":
        from . import approx
        return approx.log(self)

    def sigmoid(self) -> "SharedTensor":
        from . import approx
        return approx.sigmoid(self)

    def tanh(self) -> "SharedTensor":
        from . import approx
        return approx.tanh(self)

    def softmax(self, axis: int = -1) -> "SharedTensor":
        from . import approx
        return approx.softmax(self, axis)

    def reciprocal(self) -> "SharedTensor":
        from . import approx
        return approx.reciprocal(self)

    def sqrt(self) -> "SharedTensor":
        from . import approx
        return approx.sqrt(self)

    def rsqrt(self) -> "SharedTensor":
        from . import approx
        return approx.rsqrt(self)

    def __truediv__(self, other: Any) -> "SharedTensor":
        from . import approx
        return approx.divide(self, other)

    def __rtruediv__(self, other: Any) -> "SharedTensor":
        from . import approx
        return approx.divide(other, self)

    # -- opening ---------------------------------------------------------------------------
    def reveal(self, to: int | Sequence[int] | None = None) -> np.ndarray | None:
        """Open the secret: to every party (default) or only to ``to``; others get None."""
        return reveal(self, to)

    def reveal_ring(self, to: int | Sequence[int] | None = None) -> np.ndarray | None:
        """Open the raw ring elements (uint64) instead of decoded values."""
        return _open(self, to)


def _is_numeric(value: Any) -> bool:
    """A public operand of a comparison: a number or a numeric array."""
    if isinstance(value, (numbers.Number, np.generic)):
        return not isinstance(value, complex)
    return isinstance(value, (np.ndarray, list, tuple)) and np.asarray(value).dtype.kind in "iufb"


def where(cond: Any, a: Any, b: Any) -> "SharedTensor":
    """``a`` where the shared 0/1 ``cond`` is 1, else ``b`` (see :func:`mpc.sharing.compare.where`)."""
    from . import compare
    return compare.where(cond, a, b)


def _negate_public(value: Any) -> Any:
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        return (np.uint64(0) - arr)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    return -arr


def _targets(party: Any, to: int | Sequence[int] | None) -> tuple[int, ...]:
    if to is None:
        return tuple(range(party.n))
    targets = (to,) if isinstance(to, (int, np.integer)) else tuple(to)
    for t in targets:
        if not 0 <= t < party.n:
            raise ParameterError(f"cannot reveal to party {t}: parties are 0..{party.n - 1}")
    if not targets:
        raise ParameterError("reveal needs at least one receiving party")
    return tuple(sorted(set(targets)))


def _open(x: SharedTensor, to: int | Sequence[int] | None) -> np.ndarray | None:
    party = x.party
    targets = _targets(party, to)
    tag = party.fresh("open")
    receivers = [t for t in targets if t != party.id]
    if receivers:
        party.send_many(receivers, tag, x.share)
    if party.id not in targets:
        return None
    total = x.share.copy()
    for p in party.peers:
        total += party.recv_like(p, tag, x.share)[0]
    # An opened value is public by design: a transcript may show it beside its messages.
    party.publish(tag, total.view(np.int64) if x.frac_bits == 0
                  else total.view(np.int64) / float(1 << x.frac_bits))
    return total


def reveal(x: SharedTensor, to: int | Sequence[int] | None = None) -> np.ndarray | None:
    """Open ``x`` to ``to`` (default: everyone), decoded to float64 (or int64 for integers).

    Cost: 1 round; each party sends ``8 * size`` bytes to each receiver.
    """
    opened = _open(x, to)
    if opened is None:
        return None
    if x.frac_bits == 0:
        return opened.view(np.int64)
    from ..arith.fixed import FixedPoint

    return FixedPoint(x.frac_bits).decode(opened)


def _encode_input(party: Any, value: Any, integer: bool) -> tuple[np.ndarray, int]:
    if value is None:
        raise ParameterError(f"party {party.id} owns this input but passed None")
    if integer:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iub":
            raise ParameterError("integer=True needs an integer array")
        return arr.astype(np.int64).view(np.uint64), 0
    return party.fixed.encode(value), party.fixed.frac_bits


def _seed_message(shape: tuple[int, ...], frac_bits: int) -> tuple[bytes, tuple[np.ndarray, ...]]:
    seed = random_seed()
    return seed, (np.frombuffer(seed, np.uint8), np.asarray(shape, dtype=np.uint64).reshape(-1),
                  np.asarray([frac_bits], dtype=np.uint8))


def _from_seed_message(party: Any, owner: int, tag: str, arrays: tuple[np.ndarray, ...]) -> SharedTensor:
    seed, shape, frac = read_seed_message(party, owner, tag, arrays, frac_bits=True)
    return SharedTensor(party, PRG(seed).uint64(shape), frac)


def share(party: Any, value: Any = None, owner: int = 0, *, integer: bool = False) -> SharedTensor:
    """Secret-share ``value`` held by ``owner``; every party calls it (others pass None).

    The owner sends each other party a fresh 128-bit seed; that party's share
    is the seed's PRG expansion, and the owner keeps ``x`` minus their sum.
    Cost: 1 round, ``17 + 8*ndim`` bytes to each other party (seed, shape, encoding).
    """
    if not 0 <= owner < party.n:
        raise ParameterError(f"owner {owner} out of range: parties are 0..{party.n - 1}")
    tag = party.fresh("share")
    if party.id != owner:
        return _from_seed_message(party, owner, tag, party.recv(owner, tag))
    enc, frac = _encode_input(party, value, integer)
    mine = enc.copy()
    for p in party.peers:
        seed, msg = _seed_message(enc.shape, frac)
        mine -= PRG(seed).uint64(enc.shape)
        party.send(p, tag, *msg)
    return SharedTensor(party, mine, frac)


def share_all(party: Any, value: Any, *, integer: bool = False) -> list[SharedTensor]:
    """Every party shares its own ``value`` at once (one round); returns them by owner."""
    tag = party.fresh("share_all")
    enc, frac = _encode_input(party, value, integer)
    mine = enc.copy()
    for p in party.peers:
        seed, msg = _seed_message(enc.shape, frac)
        mine -= PRG(seed).uint64(enc.shape)
        party.send(p, tag, *msg)
    out: list[SharedTensor] = []
    for owner in range(party.n):
        if owner == party.id:
            out.append(SharedTensor(party, mine, frac))
        else:
            out.append(_from_seed_message(party, owner, tag, party.recv(owner, tag)))
    return out


def concatenate(tensors: Sequence[SharedTensor], axis: int = 0) -> SharedTensor:
    """Concatenate shared tensors of one party and one encoding."""
    if not tensors:
        raise ParameterError("nothing to concatenate")
    first = tensors[0]
    for t in tensors[1:]:
        first._check_same_session(t)
        if t.frac_bits != first.frac_bits:
            raise ParameterError("cannot concatenate tensors of different encodings")
    return first._new(np.concatenate([t.share for t in tensors], axis=axis))


def stack(tensors: Sequence[SharedTensor], axis: int = 0) -> SharedTensor:
    """Stack shared tensors of one party and one encoding along a new axis."""
    if not tensors:
        raise ParameterError("nothing to stack")
    first = tensors[0]
    for t in tensors[1:]:
        first._check_same_session(t)
        if t.frac_bits != first.frac_bits:
            raise ParameterError("cannot stack tensors of different encodings")
    return first._new(np.stack([t.share for t in tensors], axis=axis))
