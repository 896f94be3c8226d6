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

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..arith.fixed import FixedPoint
from ..errors import ParameterError
from ..preprocessing.base import matmul_shape
from . import bounds
from .beaver import beaver_product
from .opening import _open, _targets, reveal  # noqa: F401  (_targets: re-exported)
from .public import _is_numeric, _negate_public
from .scaling import public_times, times_public
from .truncation import truncate

if TYPE_CHECKING:
    from ..party import Party


class SharedTensor:
    """One party's additive share of a secret tensor.

    Create with :func:`share` or :func:`share_all`; open with :meth:`reveal`.

    ``bound`` is a **public magnitude bound**: ``|x| <= bound`` for every
    element (real units). It starts at the owner's declaration
    (``share(..., bound=...)``, else the session's ``input_bound``) and each
    operation derives its result's bound from its operands' (sums add, products
    multiply, ``@`` also by the inner dimension, ``sum`` by the count,
    comparisons give 1, approximations their documented ranges, ``clip`` its
    limits). An operation whose bound could leave the representable range
    raises :class:`~mpc.errors.RangeError` before computing (see
    :mod:`mpc.sharing.bounds`): a result is never a silently wrapped number.
    :meth:`assume_bound` asserts a tighter bound, at the caller's risk.
    Built directly from shares without a bound, a tensor gets the largest one
    its encoding can hold.
    """

    __slots__ = ("party", "share", "frac_bits", "bound")
    __array_ufunc__ = None  # numpy defers ``array + shared`` to our reflected ops

    def __init__(self, party: Party, share: np.ndarray, frac_bits: int, bound: float | None = None) -> None:
        self.party = party
        self.share = np.asarray(share, dtype=np.uint64)
        self.frac_bits = frac_bits
        self.bound = bounds.largest(frac_bits) if bound is None else float(bound)

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

    def _new(self, share: np.ndarray, frac_bits: int | None = None, bound: float | None = None) -> "SharedTensor":
        return SharedTensor(self.party, share, self.frac_bits if frac_bits is None else frac_bits,
                            self.bound if bound is None else bound)

    def assume_bound(self, bound: float) -> "SharedTensor":
        """The same shares with the public bound ``bound`` (if tighter): the caller's promise.

        Use it where the computation knows more than the bound arithmetic (a
        mean, a probability, a clipped or standardized value). A false promise
        makes later results wrong without an error: it is your responsibility.
        """
        value = bounds.validate(bound, self.frac_bits, "assume_bound")
        return self._new(self.share, bound=min(value, self.bound))

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

        return FixedPoint(frac_bits).encode(arr.astype(np.float64))

    def _broadcast_check(self, other_shape: tuple[int, ...]) -> None:
        try:
            np.broadcast_shapes(self.shape, other_shape)
        except ValueError:
            raise ParameterError(f"shapes {self.shape} and {tuple(other_shape)} do not broadcast") from None

    def _aligned(self, other: "SharedTensor", op: str = "+",
                 ring_bits: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Both shares at the same number of fractional bits (integers are scaled up)."""
        self._check_same_session(other)
        f = max(self.frac_bits, other.frac_bits)
        bounds.check(op, self.bound, f, ring_bits)
        bounds.check(op, other.bound, f, ring_bits)
        a = self.share << np.uint64(f - self.frac_bits) if f != self.frac_bits else self.share
        b = other.share << np.uint64(f - other.frac_bits) if f != other.frac_bits else other.share
        return a, b, f

    # -- linear operations (local) -----------------------------------------------------
    def _add(self, other: Any, op: str = "+", ring_bits: int | None = None) -> "SharedTensor":
        """``self + other``; ``ring_bits`` widens the range (a comparison's difference may reach 2^63)."""
        if isinstance(other, SharedTensor):
            a, b, f = self._aligned(other, op, ring_bits)
            self._broadcast_check(other.shape)
            bound = bounds.check(op, self.bound + other.bound, f, ring_bits)
            return self._new(a + b, f, bound)
        enc = self._encode_public(other, self.frac_bits)
        self._broadcast_check(enc.shape)
        bound = bounds.check(op, self.bound + bounds.public_peak(other, self.frac_bits), self.frac_bits,
                             ring_bits)
        if self.party.id == 0:
            return self._new(self.share + enc, bound=bound)
        return self._new(np.broadcast_to(self.share, np.broadcast_shapes(self.shape, enc.shape)).copy(),
                         bound=bound)

    def __add__(self, other: Any) -> "SharedTensor":
        return self._add(other)

    __radd__ = __add__

    def __neg__(self) -> "SharedTensor":
        return self._new(np.uint64(0) - self.share)

    def __sub__(self, other: Any) -> "SharedTensor":
        if isinstance(other, SharedTensor):
            return self._add(-other, "-")
        return self._add(_negate_public(other), "-")

    def __rsub__(self, other: Any) -> "SharedTensor":
        return (-self) + other

    # -- products ------------------------------------------------------------------------
    def _product(self, other: Any, op: str, claim: float | None = None) -> "SharedTensor":
        """``self * other`` or ``self @ other``; ``claim``: a bound on the result the caller asserts."""
        name = "*" if op == "mul" else "@"
        if isinstance(other, SharedTensor):
            self._check_same_session(other)
            if op == "mul":
                self._broadcast_check(other.shape)
                inner = 1
            else:

                matmul_shape(self.shape, other.shape)
                inner = self.shape[-1]
            raw = self.frac_bits + other.frac_bits
            bound = bounds.up(self.bound * other.bound * inner)
            if claim is not None:
                bound = min(bound, bounds.validate(claim, min(raw, self.party.fixed.frac_bits), "bound"))
            bounds.check_product(name, bound, raw, min(raw, self.party.fixed.frac_bits))
            z = beaver_product(self.party, self.share, other.share, op)
            return self._rescale(z, raw, bound)
        return times_public(self, other, op)

    def _rescale(self, z: np.ndarray, frac_bits: int, bound: float) -> "SharedTensor":
        target = min(frac_bits, self.party.fixed.frac_bits)
        if frac_bits > target:
            z = truncate(self.party, z, frac_bits - target)
        return self._new(z, target, bounds.rounded(bound, target, frac_bits > target))

    def __mul__(self, other: Any) -> "SharedTensor":
        if not isinstance(other, SharedTensor):
            self._broadcast_check(np.shape(other))
        return self._product(other, "mul")

    __rmul__ = __mul__

    def __matmul__(self, other: Any) -> "SharedTensor":
        if not isinstance(other, SharedTensor):
            other = np.asarray(other)

            matmul_shape(self.shape, other.shape)
        return self._product(other, "matmul")

    def __rmatmul__(self, other: Any) -> "SharedTensor":
        other = np.asarray(other)
        return public_times(other, self)

    def dot(self, other: Any, *, bound: float | None = None) -> "SharedTensor":
        """Dot product / matrix product, as ``numpy.dot`` for 1-D and 2-D operands.

        ``bound`` asserts a public bound on the result tighter than
        ``self.bound * other.bound * inner`` (e.g. from a published norm of a
        weight matrix); as :meth:`assume_bound`, it is the caller's promise.
        """
        if bound is None or not isinstance(other, SharedTensor):
            out = self @ other
            return out if bound is None else out.assume_bound(bound)
        return self._product(other, "matmul", claim=bound)

    def square(self) -> "SharedTensor":
        return self * self

    # -- reductions and shape ------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "SharedTensor":
        out = self.share.sum(axis=axis, keepdims=keepdims, dtype=np.uint64)
        count = self.size // max(1, out.size) if self.size else 0
        bound = bounds.check("sum", self.bound * count, self.frac_bits)
        return self._new(out, bound=bound)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "SharedTensor":
        """Mean along ``axis``: a sum and one public multiplication (1 round for reals)."""
        count = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        if count == 0:
            raise ParameterError("mean of an empty tensor")
        total = self.sum(axis=axis, keepdims=keepdims)
        if total.frac_bits == 0:
            f = self.party.fixed.frac_bits
            bounds.check("mean", total.bound, f)
            total = total._new(total.share << np.uint64(f), f)
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
        a, b, f = self._aligned(value, "[]=")
        if f != self.frac_bits:
            raise ParameterError("assigned tensor must have the same encoding")
        self.share[index] = b
        self.bound = max(self.bound, value.bound)

    # -- comparisons and nonlinear functions (mpc.sharing.compare, mpc.sharing.approx) ----
    __hash__ = object.__hash__  # keep identity hashing although ``==`` is overloaded

    def __lt__(self, other: Any) -> "SharedTensor":
        return compare.less(self, other)

    def __le__(self, other: Any) -> "SharedTensor":
        return compare.less_equal(self, other)

    def __gt__(self, other: Any) -> "SharedTensor":
        return compare.greater(self, other)

    def __ge__(self, other: Any) -> "SharedTensor":
        return compare.greater_equal(self, other)

    def __eq__(self, other: Any) -> "SharedTensor":  # type: ignore[override]
        if not isinstance(other, SharedTensor) and not _is_numeric(other):
            return NotImplemented
        return compare.equal(self, other)

    def __ne__(self, other: Any) -> "SharedTensor":  # type: ignore[override]
        if not isinstance(other, SharedTensor) and not _is_numeric(other):
            return NotImplemented
        return compare.not_equal(self, other)

    def sign(self) -> "SharedTensor":
        return compare.sign(self)

    def abs(self) -> "SharedTensor":
        return compare.absolute(self)

    __abs__ = abs

    def relu(self) -> "SharedTensor":
        return compare.relu(self)

    def max(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        return compare.reduce_max(self, axis, keepdims)

    def min(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        return compare.reduce_min(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> "SharedTensor":
        return compare.argmax(self, axis, keepdims)

    def clip(self, lo: Any = None, hi: Any = None) -> "SharedTensor":
        return compare.clip(self, lo, hi)

    def exp(self) -> "SharedTensor":
        return approx.exp(self)

    def log(self) -> "SharedTensor":
        return approx.log(self)

    def sigmoid(self) -> "SharedTensor":
        return approx.sigmoid(self)

    def tanh(self) -> "SharedTensor":
        return approx.tanh(self)

    def softmax(self, axis: int = -1) -> "SharedTensor":
        return approx.softmax(self, axis)

    def reciprocal(self) -> "SharedTensor":
        return approx.reciprocal(self)

    def sqrt(self) -> "SharedTensor":
        return approx.sqrt(self)

    def rsqrt(self) -> "SharedTensor":
        return approx.rsqrt(self)

    def __truediv__(self, other: Any) -> "SharedTensor":
        return approx.divide(self, other)

    def __rtruediv__(self, other: Any) -> "SharedTensor":
        return approx.divide(other, self)

    # -- opening ---------------------------------------------------------------------------
    def reveal(self, to: int | Sequence[int] | None = None) -> np.ndarray | None:
        """Open the secret: to every party (default) or only to ``to``; others get None."""
        return reveal(self, to)

    def reveal_ring(self, to: int | Sequence[int] | None = None) -> np.ndarray | None:
        """Open the raw ring elements (uint64) instead of decoded values."""
        return _open(self, to)

def where(cond: Any, a: Any, b: Any) -> "SharedTensor":
    """``a`` where the shared 0/1 ``cond`` is 1, else ``b`` (see :func:`mpc.sharing.compare.where`)."""
    return compare.where(cond, a, b)

def concatenate(tensors: Sequence[SharedTensor], axis: int = 0) -> SharedTensor:
    """Concatenate shared tensors of one party and one encoding."""
    if not tensors:
        raise ParameterError("nothing to concatenate")
    first = tensors[0]
    for t in tensors[1:]:
        first._check_same_session(t)
        if t.frac_bits != first.frac_bits:
            raise ParameterError("cannot concatenate tensors of different encodings")
    return first._new(np.concatenate([t.share for t in tensors], axis=axis),
                      bound=max(t.bound for t in tensors))


def stack(tensors: Sequence[SharedTensor], axis: int = 0) -> SharedTensor:
    """Stack shared tensors of one party and one encoding along a new axis."""
    if not tensors:
        raise ParameterError("nothing to stack")
    first = tensors[0]
    for t in tensors[1:]:
        first._check_same_session(t)
        if t.frac_bits != first.frac_bits:
            raise ParameterError("cannot stack tensors of different encodings")
    return first._new(np.stack([t.share for t in tensors], axis=axis), bound=max(t.bound for t in tensors))


# The comparison and approximation protocols and the input sharing (share, share_all) build
# on SharedTensor, and its operators (``<``, ``x.exp()``...) call them: imported once it exists.
from . import approx, compare  # noqa: E402
from .inputs import share as share, share_all as share_all  # noqa: E402
