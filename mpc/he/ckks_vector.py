"""Encrypted real vectors of any length over CKKS ciphertexts, with depth tracking (layer: mpc core).

An :class:`EncryptedVector` is a list of TenSEAL ``CKKSVector`` chunks of at
most ``N/2`` values each, its logical length and its remaining multiplicative
depth. Every operation first checks shapes, keys and depth, then calls TenSEAL
once per chunk; a TenSEAL failure is translated by :func:`~mpc.he._tenseal.translate`.

Depth: a fresh ciphertext allows ``params.depth`` multiplications (one prime
of the coefficient modulus each, TenSEAL rescales automatically). A product
(plain or encrypted) uses one; :meth:`~EncryptedVector.dot` and
:meth:`~EncryptedVector.matvec` one; :meth:`~EncryptedVector.polyval` of degree
``d`` uses ``d.bit_length()`` (TenSEAL's square-and-multiply). Additions,
negation and :meth:`~EncryptedVector.sum` use none. An operation that needs
more than is left raises :class:`DepthError` before touching the ciphertexts.

TenSEAL's diagonal matrix product needs the ciphertext's slots to hold the
vector repeated (TenSEAL encrypts that way); an elementwise operation with a
plain *vector* breaks the repetition (TenSEAL encodes plain vectors without
repeating them). :meth:`~EncryptedVector.matvec` then uses the row method
(plain product and sum per output, whose rotation keys are a subset of the
diagonal method's) instead of returning wrong values. Scalars and encrypted
operands keep the repetition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import tenseal as ts

from . import serial
from ._tenseal import DepthError, matvec_steps, sum_steps, translate, wrap_ciphertext
from .ckks_linear import Diagonals, evaluate_diagonals
from ..errors import ParameterError

if TYPE_CHECKING:
    from .ckks import PublicContext

_Cpp = ts._ts_cpp.CKKSVector
_Plain = ts._ts_cpp.PlainTensorDouble
_TS_ERRORS = (ValueError, RuntimeError, TypeError)

__all__ = ["DepthError", "Diagonals", "EncryptedVector"]


class EncryptedVector:
    """A CKKS-encrypted 1-D real vector of any length.

    Supports ``+``, ``-`` (with another encrypted vector of the same length and
    key, a scalar or a plain vector), ``*`` (same operands, uses one level),
    unary ``-``, ``x @ W`` and ``M @ x``, :meth:`dot`, :meth:`sum`,
    :meth:`matvec`, :meth:`polyval`, :meth:`serialize`, and on one ciphertext
    :meth:`rotate` and :meth:`linear_transform`. Decrypt with
    :meth:`mpc.he.ckks.SecretContext.decrypt`.

    Attributes
    ----------
    context:
        The :class:`~mpc.he.ckks.PublicContext` it lives in.
    depth:
        Multiplications still allowed.
    """

    __slots__ = ("context", "_chunks", "_length", "_sizes", "_levels", "_replicated")

    context: "PublicContext"
    _chunks: list
    _length: int
    _sizes: tuple[int, ...]
    _levels: list[int]
    _replicated: bool
    __array_ufunc__ = None  # numpy defers ``M @ x``, ``a * x``, ``a + x`` to us

    @classmethod
    def _make(cls, context: "PublicContext", chunks: list, length: int, levels: list[int],
              replicated: bool = True, sizes: tuple[int, ...] | None = None) -> "EncryptedVector":
        out = cls.__new__(cls)
        out.context = context
        out._chunks = chunks
        out._length = length
        if sizes is None:  # the default layout: N/2 values per ciphertext
            s = context.slots
            sizes = tuple(min(s, length - i) for i in range(0, length, s))
        out._sizes = sizes
        out._levels = levels  # exact SEAL chain index of every chunk
        out._replicated = replicated
        return out

    @property
    def depth(self) -> int:
        """Multiplications still allowed (the lowest level of its ciphertexts)."""
        return min(self._levels)

    def __init__(self) -> None:  # pragma: no cover - construction is by encrypt/load
        raise TypeError("make EncryptedVector with PublicContext.encrypt or SecretContext.encrypt")

    # --- shape ---------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    @property
    def size(self) -> int:
        """Number of values."""
        return self._length

    @property
    def n_ciphertexts(self) -> int:
        """Number of CKKS ciphertexts (chunks of at most N/2 values); ``n_`` marks a count,
        where Paillier's ``ciphertexts`` attributes are the arrays themselves."""
        return len(self._chunks)

    def __repr__(self) -> str:
        return (f"EncryptedVector(size={self._length}, n_ciphertexts={len(self._chunks)}, "
                f"depth={self.depth}, key={self.context.key_id})")

    def __bool__(self) -> bool:
        raise TypeError("an EncryptedVector has no truth value (it would need decryption)")

    def _bounds(self) -> list[tuple[int, int]]:
        ends = np.cumsum(self._sizes).tolist()
        return list(zip([0] + ends[:-1], ends))

    # --- operand checks --------------------------------------------------------

    def _need_depth(self, needed: int, op: str, other: "EncryptedVector | None" = None) -> int:
        left = self.depth if other is None else min(self.depth, other.depth)
        if needed > left:
            raise DepthError(
                f"CKKS {op} needs {needed} multiplicative level(s) but the ciphertext has "
                f"{left} left (fresh ciphertexts of preset {self.context.params.name!r} have "
                f"{self.context.params.depth}); decrypt and re-encrypt, or use a preset with "
                "more depth ('polynomial' has 4, 'deep' has 7)")
        return left - needed

    def _check_pair(self, other: "EncryptedVector", op: str) -> None:
        if other.context.key_id != self.context.key_id:
            raise ParameterError(
                f"CKKS {op}: operands are under different keys "
                f"({self.context.key_id} and {other.context.key_id})")
        if other._length != self._length:
            raise ParameterError(
                f"CKKS {op}: lengths differ ({self._length} and {other._length})")
        if other._sizes != self._sizes:
            raise ParameterError(
                f"CKKS {op}: the vectors are split differently across ciphertexts (a matvec "
                "output longer than N/2 - n + 1 uses shorter chunks); decrypt and re-encrypt "
                "one of them, or add the other as a plain vector")

    def _plain(self, value, op: str) -> tuple[float | None, np.ndarray | None]:
        """A scalar (float) or a plain vector of this length (float64 array)."""
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ParameterError(f"CKKS {op}: plain operand has NaN or infinite values")
        if arr.ndim == 0:
            return float(arr), None
        if arr.shape != (self._length,):
            raise ParameterError(
                f"CKKS {op}: plain operand of shape {arr.shape} does not match the "
                f"encrypted vector of length {self._length} (use a scalar or a 1-D array)")
        return None, arr

    def _apply(self, fn, op: str) -> list:
        try:
            return [fn(i, c) for i, c in enumerate(self._chunks)]
        except _TS_ERRORS as exc:
            raise translate(exc, op) from exc

    def _derive(self, chunks: list, levels: list[int], replicated: bool,
                length: int | None = None, sizes: tuple[int, ...] | None = None) -> "EncryptedVector":
        if length is None:
            length, sizes = self._length, self._sizes
        return EncryptedVector._make(self.context, chunks, length, levels, replicated, sizes)

    def _pairwise(self, other: "EncryptedVector", op: str, name: str) -> list:
        """``getattr(a, name)(b)`` per chunk pair, called on the operand at the
        higher level: TenSEAL mod-switches the *argument* in place when it is the
        higher one, which would silently lower the level of a vector the caller holds.

        Invariant: a tracked level never exceeds the ciphertext's real level (a
        fresh zero from TenSEAL sits higher than tracked), so the argument, whose
        tracked level is at most the receiver's, is never lowered below its own
        tracked level and :class:`DepthError` stays sound."""
        out = []
        for a, b, la, lb in zip(self._chunks, other._chunks, self._levels, other._levels):
            try:
                if lb <= la:
                    out.append(getattr(a, name)(b))
                elif name == "sub":  # a - b = (-b) + a, -b is our own copy
                    out.append(b.neg().add(a))
                else:  # add and mul commute
                    out.append(getattr(b, name)(a))
            except _TS_ERRORS as exc:
                if "transparent" not in str(exc):
                    raise translate(exc, op) from exc
                # SEAL refuses an exactly-zero result (x - x): a fresh encryption of zero
                out.append(_Cpp(self.context._raw, [0.0] * a.size()))
        return out

    # --- elementwise ---------------------------------------------------------

    def _linear(self, other, op: str, enc_name: str, plain_name: str) -> "EncryptedVector":
        if isinstance(other, EncryptedVector):
            self._check_pair(other, op)
            chunks = self._pairwise(other, op, enc_name)
            return self._derive(chunks, list(map(min, self._levels, other._levels)),
                                self._replicated and other._replicated)
        scalar, vec = self._plain(other, op)
        if vec is None:
            chunks = self._apply(lambda i, c: getattr(c, plain_name)(scalar), op)
            return self._derive(chunks, list(self._levels), self._replicated)
        bounds = self._bounds()
        chunks = self._apply(lambda i, c: getattr(c, plain_name)(vec[slice(*bounds[i])].tolist()), op)
        return self._derive(chunks, list(self._levels), False)

    def __add__(self, other) -> "EncryptedVector":
        return self._linear(other, "add", "add", "add_plain")

    def __radd__(self, other) -> "EncryptedVector":
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self  # sum([...]) starts from 0
        return self._linear(other, "add", "add", "add_plain")

    def __sub__(self, other) -> "EncryptedVector":
        return self._linear(other, "subtract", "sub", "sub_plain")

    def __rsub__(self, other) -> "EncryptedVector":
        return (-self) + other

    def __neg__(self) -> "EncryptedVector":
        return self._derive(self._apply(lambda i, c: c.neg(), "negate"), list(self._levels),
                            self._replicated)

    def __mul__(self, other) -> "EncryptedVector":
        if isinstance(other, EncryptedVector):
            self._check_pair(other, "multiply")
            self._need_depth(1, "multiply", other)
            chunks = self._pairwise(other, "multiply", "mul")
            return self._derive(chunks, [min(a, b) - 1 for a, b in zip(self._levels, other._levels)],
                                self._replicated and other._replicated)
        self._need_depth(1, "multiply by a plain value")
        scalar, vec = self._plain(other, "multiply")
        if vec is None:
            chunks = self._apply(lambda i, c: c.mul_plain(scalar), "multiply")
        else:
            bounds = self._bounds()
            chunks = self._apply(lambda i, c: c.mul_plain(vec[slice(*bounds[i])].tolist()), "multiply")
        return self._derive(chunks, [lv - 1 for lv in self._levels], self._replicated and vec is None)

    __rmul__ = __mul__

    # --- rotations ------------------------------------------------------------

    def _single(self, op: str):
        if len(self._chunks) != 1:
            raise ParameterError(
                f"CKKS {op} works on a vector held in one ciphertext (length <= {self.context.slots}); "
                f"this one has {self._length} values in {len(self._chunks)} ciphertexts")
        return self._chunks[0]

    def _wrap(self, ct, op: str):
        try:
            return wrap_ciphertext(self.context._raw, ct, self._sizes[0], self.context._ts.global_scale)
        except _TS_ERRORS as exc:
            raise translate(exc, op) from exc

    def rotate(self, k: int) -> "EncryptedVector":
        """Encrypted ``numpy.roll(slots, k)`` of the ciphertext's slot vector (``N/2``
        values; the vector is its first ``len(self)``). No depth; one key switch.

        The slots past the length hold TenSEAL's repetition of the vector (a
        fresh encryption) or what earlier operations left there, so for a
        vector shorter than ``N/2`` the result is *not* ``numpy.roll`` of the
        vector itself: encrypt ``N/2`` values for exact cyclic semantics. Needs
        a Galois key for ``k`` (``SecretContext.create(steps=(k,))``), else
        :class:`ParameterError` before any work. One ciphertext only.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ParameterError(f"CKKS rotate: the step must be an integer, got {k!r}")
        chunk = self._single("rotate")
        slots = self.context.slots
        if int(k) % slots == 0:
            return self._derive([chunk], list(self._levels), self._replicated)  # chunks are never mutated
        self.context._need_rotation(int(k), "rotate")
        evaluator, _, keys = self.context._seal_tools()
        try:
            ct = chunk.ciphertext()[0]
            evaluator.rotate_vector_inplace(ct, (-int(k)) % slots, keys)
        except _TS_ERRORS as exc:
            raise translate(exc, "rotate") from exc
        return self._derive([self._wrap(ct, "rotate")], list(self._levels), False)

    def linear_transform(self, diagonals: Diagonals) -> "EncryptedVector":
        """Encrypted ``sum_i d_i * roll(x, -i)`` on the slot vector (one level).

        Baby-step giant-step (see :class:`Diagonals`): ``diagonals.rotations``
        rotations, one plain product per nonzero diagonal, one rescale per
        giant step, then the fold or window sum if any, on SEAL ciphertexts
        (:func:`~mpc.he.ckks_linear.evaluate_diagonals`), wrapped back into
        TenSEAL once. Needs Galois keys for ``diagonals.steps``. Same length
        as ``self``; one ciphertext.
        """
        if not isinstance(diagonals, Diagonals):
            raise TypeError("linear_transform takes a Diagonals")
        chunk = self._single("linear transform")
        ctx = self.context
        if diagonals.slots != ctx.slots:
            raise ParameterError(f"CKKS linear transform: diagonals of {diagonals.slots} slots, "
                                 f"the context has {ctx.slots}")
        depth = self._need_depth(1, "linear transform")
        for k in diagonals.steps:
            ctx._need_rotation(k, "linear transform")
        evaluator, encoder, keys = ctx._seal_tools()
        try:
            total = evaluate_diagonals(diagonals, chunk.ciphertext()[0], evaluator, encoder, keys,
                                       ctx._ts.global_scale)
        except _TS_ERRORS as exc:
            raise translate(exc, "linear transform") from exc
        return self._derive([self._wrap(total, "linear transform")], [depth], False)

    # --- reductions ------------------------------------------------------------

    def _sum_chunks(self, chunks: list, op: str, inplace: bool = False) -> list:
        """Sum of all values into one chunk; ``inplace`` only on chunks we own."""
        self.context._need_steps(sum_steps(max(e - s for s, e in self._bounds())), op,
                                 min(self._length, self.context.slots))
        try:
            sums = [c.sum_() or c for c in chunks] if inplace else [c.sum() for c in chunks]
            total = sums[0]
            for c in sums[1:]:
                total = total.add(c)
        except _TS_ERRORS as exc:
            raise translate(exc, op) from exc
        return [total]

    def sum(self) -> "EncryptedVector":
        """Encrypted sum of all values (length 1). No depth; ``ceil(log2 s)``
        rotations per ciphertext of ``s`` slots; needs rotations ``"sum"``."""
        return self._derive(self._sum_chunks(self._chunks, "sum"), [self.depth], False, 1)

    def dot(self, other) -> "EncryptedVector":
        """Encrypted inner product with a plain or encrypted vector (length 1, one level)."""
        prod = self * other
        return prod._derive(prod._sum_chunks(prod._chunks, "dot", inplace=True), [prod.depth], False, 1)

    def matvec(self, matrix) -> "EncryptedVector":
        """Encrypted ``matrix @ x`` for a plain ``(m, len(x))`` matrix (one level).

        Inputs and outputs of any length. Uses TenSEAL's diagonal method
        (rotations ``"matvec"``; ``n`` rotations per input chunk of ``n``
        values) or the row method (rotations ``"sum"``; ``m`` products and
        sums, one ciphertext per output), whichever rotates less among those
        the context has keys for: see ``_vecmat``.
        """
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[1] != self._length:
            raise ParameterError(
                f"CKKS matvec: matrix of shape {m.shape} does not match a vector of "
                f"length {self._length}; expected (m, {self._length})")
        return self._vecmat(m.T, "matvec")

    def __matmul__(self, matrix) -> "EncryptedVector":
        """``x @ W`` for a plain ``(len(x), m)`` matrix."""
        w = np.asarray(matrix, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != self._length:
            raise ParameterError(
                f"CKKS x @ W: matrix of shape {w.shape} does not match a vector of "
                f"length {self._length}; expected ({self._length}, m)")
        return self._vecmat(w, "x @ W")

    def __rmatmul__(self, matrix) -> "EncryptedVector":
        """``M @ x`` for a plain ``(m, len(x))`` matrix."""
        return self.matvec(matrix)

    def _vecmat(self, w: np.ndarray, op: str) -> "EncryptedVector":
        """``x @ w`` for a plain ``(len(x), m)`` matrix, by the cheaper available method.

        * diagonal (Halevi-Shoup, TenSEAL's ``mm``): one rotation per input value,
          per block of up to ``N/2 - n + 1`` outputs; needs rotations
          ``"matvec"`` and a vector whose slots repeat it.
        * rows: per output, a plain product and a sum (``log2 n`` rotations per
          input chunk); needs rotations ``"sum"``; any vector; each output is
          its own ciphertext (one value), so it is chosen when it rotates less:
          ``m * log2(n) < n`` roughly, i.e. for long inputs and few outputs.
        """
        if not np.all(np.isfinite(w)) or w.shape[1] == 0:
            raise ParameterError(f"CKKS {op}: the matrix is empty or has NaN/infinite values")
        depth = self._need_depth(1, op)
        slots, ctx = self.context.slots, self.context
        in_bounds = self._bounds()
        widest = max(e - s for s, e in in_bounds)
        out_len = w.shape[1]
        step = slots - widest + 1  # output slot j reads input slots j..j+n-1: no wrap
        diag_cost = -(-out_len // step) * self._length
        row_cost = out_len * sum(max(1, (e - s - 1).bit_length()) for s, e in in_bounds)
        has_diag = ctx._steps.issuperset(matvec_steps(widest, slots))
        has_rows = ctx._steps.issuperset(sum_steps(widest))
        use_rows = has_rows and (not self._replicated or not has_diag or row_cost < diag_cost)
        if not use_rows:  # (the "matvec" keys include the "sum" ones: only when both lack)
            ctx._need_steps(matvec_steps(widest, slots), "matvec", min(self._length, slots))
        chunks = []
        try:
            if use_rows:
                for j in range(out_len):
                    acc = None
                    for c, (s, e) in zip(self._chunks, in_bounds):
                        part = c.mul_plain(w[s:e, j].tolist())
                        part.sum_()
                        acc = part if acc is None else acc.add(part)
                    chunks.append(acc)
                sizes = (1,) * out_len
            else:
                for o in range(0, out_len, step):
                    acc = None
                    for c, (s, e) in zip(self._chunks, in_bounds):
                        part = c.mm(_Plain(np.ascontiguousarray(w[s:e, o:o + step]).tolist()))
                        acc = part if acc is None else acc.add(part)
                    chunks.append(acc)
                sizes = tuple(min(step, out_len - o) for o in range(0, out_len, step))
        except _TS_ERRORS as exc:
            raise translate(exc, op) from exc
        return self._derive(chunks, [depth] * len(chunks), not use_rows, out_len, sizes)

    def polyval(self, coefficients: Sequence[float]) -> "EncryptedVector":
        """Encrypted ``c[0] + c[1] x + ... + c[d] x^d`` elementwise (increasing
        order, as :func:`numpy.polynomial.polynomial.polyval`).

        Uses ``d.bit_length()`` levels for degree ``d`` (trailing zero
        coefficients ignored): degree 1 -> 1, 2-3 -> 2, 4-7 -> 3, 8-15 -> 4.
        """
        coeffs = np.asarray(coefficients, dtype=np.float64)
        if coeffs.ndim != 1 or coeffs.size == 0 or not np.all(np.isfinite(coeffs)):
            raise ParameterError("CKKS polyval: coefficients must be a non-empty finite 1-D sequence")
        nonzero = np.flatnonzero(coeffs)
        degree = int(nonzero[-1]) if nonzero.size else 0
        if degree == 0:  # a constant: a fresh encryption of it
            return self.context.encrypt(np.full(self._length, coeffs[0]))
        used = degree.bit_length()
        self._need_depth(used, f"polyval of degree {degree}")
        clist = coeffs[:degree + 1].tolist()
        chunks = self._apply(lambda i, c: c.polyval(clist), "polyval")
        return self._derive(chunks, [lv - used for lv in self._levels], self._replicated)

    # --- serialization -----------------------------------------------------------

    def serialize(self) -> bytes:
        """Envelope kind ``CKKS_VECTOR``: header {key_id, length, chunks,
        replicated}, body = each chunk's TenSEAL ``CKKSVectorProto`` as a
        length-prefixed part. The remaining depth is re-read from the
        ciphertexts on load."""
        header = {"key_id": self.context.key_id, "length": self._length,
                  "chunks": len(self._chunks), "replicated": self._replicated}
        try:
            parts = [c.serialize() for c in self._chunks]
        except _TS_ERRORS as exc:
            raise translate(exc, "serialize") from exc
        return serial.dump(serial.Kind.CKKS_VECTOR, header, parts)

    @classmethod
    def _load(cls, context: "PublicContext", data: bytes) -> "EncryptedVector":
        what = "CKKS vector"
        p = context.params
        per_chunk = 2 * p.poly_modulus_degree * 8 * len(p.coeff_mod_bit_sizes) + 4096
        header, body = serial.load(data, serial.Kind.CKKS_VECTOR)
        get = serial.header_field
        key_id = get(header, "key_id", str, what)
        if key_id != context.key_id:
            raise ParameterError(
                f"{what} was encrypted under key {key_id}; this context's key is {context.key_id}")
        length = get(header, "length", int, what)
        count = get(header, "chunks", int, what)
        replicated = get(header, "replicated", bool, what)
        if length < 1 or not -(-length // context.slots) <= count <= length:
            raise serial.EncodingError(f"{what}: {count} chunks cannot hold {length} values")
        if len(body) > count * (per_chunk + 8):
            raise serial.EncodingError(f"{what}: body of {len(body)} bytes is too large")
        parts = serial.split_parts(body, count, what)
        try:
            chunks = [_Cpp(context._raw, part) for part in parts]
        except _TS_ERRORS as exc:
            raise translate(exc, f"load {what}") from exc
        sizes = tuple(c.size() for c in chunks)
        if sum(sizes) != length or max(sizes) > context.slots:
            raise serial.EncodingError(f"{what}: chunk sizes {list(sizes)} do not match length {length}")
        out = cls._make(context, chunks, length, [context._level(c) for c in chunks], replicated,
                        sizes)
        return out
