"""Arrays of Paillier ciphertexts and their homomorphic operations (layer: mpc core).

:class:`EncryptedArray` is what :meth:`mpc.he.paillier.PaillierPublicKey.encrypt`
returns: a numpy object array of ciphertexts under one key and the fractional
bits of their fixed-point encoding. The scheme, its security and its costs are
described in :mod:`mpc.he.paillier`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import gmpy2
import numpy as np
from gmpy2 import mpz

from . import serial
from ..errors import EncodingError, ParameterError

if TYPE_CHECKING:
    from .paillier import PaillierPublicKey

__all__ = ["EncryptedArray", "multiexp", "parse_ciphertexts"]


class EncryptedArray:
    """A numpy-shaped array of Paillier ciphertexts under one public key.

    ``a + b``, ``a - b`` (encrypted or plain, broadcasting), ``-a``, ``a * k``
    for plain integers or reals (reals are encoded with ``plain_frac_bits`` = 16
    fractional bits, use :meth:`mul` to choose), :meth:`sum`, :meth:`dot` with
    a plain vector and ``M @ a`` for a plain matrix ``M``.

    Range: every result must stay within the signed range ``|v| <= n/3``
    (about 2^2046 at 2048 bits), fractional bits included. Whoever computes on
    ciphertexts cannot see the values, so sums and products are not checked:
    a result beyond the range wraps modulo n, and decryption refuses only
    those that land in the middle third (``EncodingError``); the others
    decrypt to a wrong number. Choose factors and ``frac_bits`` with that
    headroom in mind (the packed form checks its slots' headroom).

    Attributes
    ----------
    public:
        The :class:`PaillierPublicKey`.
    ciphertexts:
        Object array of gmpy2 integers in ``(0, n^2)``.
    frac_bits:
        Fractional bits of the encoded values (0 for integers).
    """

    __slots__ = ("public", "ciphertexts", "frac_bits")
    __array_ufunc__ = None  # numpy defers ``M @ a``, ``k * a``, ``b + a`` to us

    def __init__(self, public: PaillierPublicKey, ciphertexts: np.ndarray, frac_bits: int = 0) -> None:
        self.public = public
        self.ciphertexts = ciphertexts
        self.frac_bits = frac_bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ciphertexts.shape

    @property
    def n_ciphertexts(self) -> int:
        """Number of ciphertexts, one per value (``ciphertexts`` is the array of them)."""
        return int(self.ciphertexts.size)

    def __len__(self) -> int:
        return len(self.ciphertexts)

    def __getitem__(self, index) -> "EncryptedArray":
        sub = self.ciphertexts[index]
        if not isinstance(sub, np.ndarray):
            sub = _obj([sub], ())
        return EncryptedArray(self.public, sub, self.frac_bits)

    def reshape(self, *shape) -> "EncryptedArray":
        return EncryptedArray(self.public, self.ciphertexts.reshape(*shape), self.frac_bits)

    def __repr__(self) -> str:
        return (f"EncryptedArray(shape={self.shape}, frac_bits={self.frac_bits}, "
                f"key={self.public.key_id})")

    def __bool__(self) -> bool:
        raise TypeError("an EncryptedArray has no truth value (it would need decryption)")

    # --- helpers ----------------------------------------------------------------------

    def _like(self, cts: np.ndarray, frac_bits: int | None = None) -> "EncryptedArray":
        if not isinstance(cts, np.ndarray):  # numpy returns scalars from 0-d operations
            cts = _obj([cts], ())
        return EncryptedArray(self.public, cts, self.frac_bits if frac_bits is None else frac_bits)

    def _rescaled(self, frac_bits: int) -> np.ndarray:
        """Ciphertexts of the same values with ``frac_bits`` >= own fractional bits."""
        if frac_bits == self.frac_bits:
            return self.ciphertexts
        return _powmod(self.ciphertexts, 1 << (frac_bits - self.frac_bits), self.public.n_squared)

    # --- addition ----------------------------------------------------------------------

    def __add__(self, other) -> "EncryptedArray":
        n2 = self.public.n_squared
        if isinstance(other, EncryptedArray):
            if other.public != self.public:
                raise ParameterError(
                    f"cannot add ciphertexts under different keys ({self.public.key_id}, "
                    f"{other.public.key_id})")
            if self.shape == other.shape and self.frac_bits == other.frac_bits:  # fast path
                return self._like(_obj([x * y % n2 for x, y in
                                        zip(self.ciphertexts.flat, other.ciphertexts.flat)],
                                       self.shape))
            f = max(self.frac_bits, other.frac_bits)
            a, b = np.broadcast_arrays(self._rescaled(f), other._rescaled(f))
            return self._like(a * b % n2, f)
        encoded = self.public.encode(other, self.frac_bits)
        n = self.public.n
        factor = np.vectorize(lambda m: (1 + m * n) % n2, otypes=[object])(encoded) \
            if encoded.size else encoded
        a, b = np.broadcast_arrays(self.ciphertexts, factor)
        return self._like(a * b % n2)

    __radd__ = __add__

    def __neg__(self) -> "EncryptedArray":
        n2 = self.public.n_squared
        return self._like(np.vectorize(lambda c: gmpy2.invert(c, n2), otypes=[object])(self.ciphertexts))

    def __sub__(self, other) -> "EncryptedArray":
        if isinstance(other, EncryptedArray):
            return self + (-other)
        arr = np.asarray(other)
        if arr.dtype.kind in "uib":   # Python ints: negating uint/bool numpy arrays would wrap
            arr = arr.astype(object)
        return self + (-arr)

    def __rsub__(self, other) -> "EncryptedArray":
        return (-self) + other

    # --- plain multiplication ------------------------------------------------------------

    def mul(self, factor, plain_frac_bits: int = 16) -> "EncryptedArray":
        """Multiply by plain integers (exact) or reals encoded with
        ``plain_frac_bits`` fractional bits (the result has ``frac_bits +
        plain_frac_bits``). Broadcasts like numpy."""
        k, fb = _plain_ints(factor, plain_frac_bits)
        cts, ks = np.broadcast_arrays(self.ciphertexts, k)
        return self._like(_powmod(cts, ks, self.public.n_squared), self.frac_bits + fb)

    def __mul__(self, factor) -> "EncryptedArray":
        if isinstance(factor, EncryptedArray):
            raise TypeError("Paillier cannot multiply two ciphertexts (use CKKS or MPC)")
        return self.mul(factor)

    __rmul__ = __mul__

    def sum(self, axis: int | None = None) -> "EncryptedArray":
        """Encrypted sum over ``axis`` (all elements by default): products of
        ciphertexts, reduced pairwise."""
        cts = self.ciphertexts.reshape(-1) if axis is None else np.moveaxis(self.ciphertexts, axis, 0)
        if cts.shape[0] == 0:
            raise ParameterError("sum of an empty EncryptedArray")
        n2 = self.public.n_squared
        while cts.shape[0] > 1:
            half = cts.shape[0] // 2
            paired = cts[:half] * cts[half:2 * half] % n2
            cts = np.concatenate([paired, cts[2 * half:]]) if cts.shape[0] % 2 else paired
        out = cts[0]
        return self._like(out if isinstance(out, np.ndarray) else _obj([out], ()))

    def dot(self, weights, plain_frac_bits: int = 16) -> "EncryptedArray":
        """Encrypted inner product of a 1-D EncryptedArray with plain weights
        (one multi-exponentiation, see :func:`multiexp`)."""
        w = np.asarray(weights)
        if self.ciphertexts.ndim != 1 or w.shape != self.shape:
            raise ParameterError(f"dot needs a 1-D array and weights of the same shape, "
                                 f"got {self.shape} and {w.shape}")
        return self.__rmatmul__(w.reshape(1, -1), plain_frac_bits).reshape(())

    def __rmatmul__(self, matrix, plain_frac_bits: int = 16) -> "EncryptedArray":
        """``M @ a`` for a plain ``(m, n)`` matrix and a 1-D encrypted ``a`` of
        length n: one :func:`multiexp` per row."""
        m = np.asarray(matrix)
        if m.ndim != 2 or self.ciphertexts.ndim != 1 or m.shape[1] != self.shape[0]:
            raise ParameterError(f"M @ a needs M of shape (m, {self.shape[0]}) and a 1-D a, "
                                 f"got {m.shape} and {self.shape}")
        k, fb = _plain_ints(m, plain_frac_bits)
        bases, n2 = list(self.ciphertexts), self.public.n_squared
        rows = [multiexp(bases, list(row), n2) for row in k]
        return self._like(_obj(rows, (len(rows),)), self.frac_bits + fb)

    def __matmul__(self, matrix) -> "EncryptedArray":
        """``a @ W`` for a 1-D encrypted ``a`` of length n and a plain ``(n, m)`` ``W``."""
        w = np.asarray(matrix)
        if w.ndim != 2:
            raise ParameterError(f"a @ W needs a 2-D W, got shape {w.shape}")
        return self.__rmatmul__(w.T)

    def rerandomize(self) -> "EncryptedArray":
        """The same plaintexts under fresh randomness (times fresh encryptions of 0).

        Call it before sending a *computed* ciphertext to the key holder: the
        key holder can extract the randomness of a ciphertext, and that of
        ``M @ a`` or ``a * k`` is a product of powers of the inputs'
        randomness, from which the plain factors ``M`` or ``k`` can be solved.
        (A zero factor even gives the constant ciphertext 1.)
        """
        n2 = self.public.n_squared
        rs = self.public.randomness(self.ciphertexts.size)
        return self._like(_obj([c * r % n2 for c, r in zip(self.ciphertexts.flat, rs)],
                               self.shape))

    # --- serialization ---------------------------------------------------------------------

    def serialize(self) -> bytes:
        """Envelope kind ``PAILLIER_CIPHERTEXTS``: header {key_id, shape,
        frac_bits}, body = the ciphertexts in C order, each ``2 * bytes(n)``
        bytes, big-endian."""
        width = _width(self.public)
        body = b"".join(int(c).to_bytes(width, "big") for c in self.ciphertexts.flat)
        header = {"key_id": self.public.key_id, "shape": list(self.shape), "frac_bits": self.frac_bits}
        return serial.dump(serial.Kind.PAILLIER_CIPHERTEXTS, header, body)

    @classmethod
    def load(cls, public: PaillierPublicKey, data: bytes) -> "EncryptedArray":
        """Inverse of :meth:`serialize`; every ciphertext must be a unit mod ``n^2``."""
        what = "Paillier ciphertexts"
        header, body = serial.load(data, serial.Kind.PAILLIER_CIPHERTEXTS)
        check_key_id(public, header, what)
        get = serial.header_field
        shape = get(header, "shape", list, what)
        frac_bits = get(header, "frac_bits", int, what)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape) or frac_bits < 0:
            raise EncodingError(f"{what}: bad shape or frac_bits in the header")
        return cls(public, parse_ciphertexts(public, body, math.prod(shape), what).reshape(shape),
                   frac_bits)


# --- helpers ------------------------------------------------------------------------------

def check_key_id(public: PaillierPublicKey, header: dict, what: str) -> None:
    """Refuse serialized ciphertexts that were made under another public key."""
    if serial.header_field(header, "key_id", str, what) != public.key_id:
        raise ParameterError(f"{what} were encrypted under key {header['key_id']}; "
                             f"this key is {public.key_id}")


def parse_ciphertexts(public: PaillierPublicKey, body: memoryview | bytes, count: int,
                      what: str) -> np.ndarray:
    """``count`` fixed-width big-endian ciphertexts, each checked to be a unit mod n^2."""
    width = _width(public)
    if len(body) != count * width:
        raise EncodingError(f"{what}: {len(body)} bytes for {count} ciphertexts of {width} bytes")
    raw = bytes(body)
    out = []
    for i in range(count):
        c = mpz(int.from_bytes(raw[i * width:(i + 1) * width], "big"))
        if not public.is_ciphertext(c):
            raise EncodingError(f"{what}: ciphertext {i} is not a unit modulo n^2")
        out.append(c)
    return _obj(out, (count,))


def multiexp(bases: list[mpz], exps: list[int], modulus: mpz, window: int = 4) -> mpz:
    """``prod(b ** e) mod modulus`` for signed integer exponents (units as bases).

    Bucket method (Pippenger): per ``window``-bit digit, each base is multiplied
    into the bucket of its digit and the buckets are combined with two running
    products; negative exponents go to a second product that is inverted once.
    About ``len(bases) * bits / window`` products instead of
    ``len(bases) * 1.5 * bits`` for separate exponentiations.
    """
    def positive(pairs: list[tuple[mpz, int]]) -> mpz:
        acc = mpz(1)
        if not pairs:
            return acc
        mask = (1 << window) - 1
        for j in reversed(range(-(-max(e for _, e in pairs).bit_length() // window))):
            for _ in range(window):
                acc = acc * acc % modulus
            buckets: list[mpz | None] = [None] * (mask + 1)
            for b, e in pairs:
                d = (e >> (j * window)) & mask
                if d:
                    prev = buckets[d]
                    buckets[d] = b if prev is None else prev * b % modulus
            running = total = mpz(1)
            for d in range(mask, 0, -1):
                if buckets[d] is not None:
                    running = running * buckets[d] % modulus
                total = total * running % modulus
            acc = acc * total % modulus
        return acc

    pos = [(b, int(e)) for b, e in zip(bases, exps) if e > 0]
    neg = [(b, -int(e)) for b, e in zip(bases, exps) if e < 0]
    out = positive(pos)
    if neg:
        out = out * gmpy2.invert(positive(neg), modulus) % modulus
    return out


def _width(public: PaillierPublicKey) -> int:
    return (public.n_squared.bit_length() + 7) // 8


def _obj(values: list, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``values`` (gmpy2 integers) in ``shape``.

    ``np.fromiter``: assigning a list of mpz into an object array makes numpy
    probe every element as a possible sequence, 300 times slower.
    """
    return np.fromiter(values, dtype=object, count=len(values)).reshape(shape)

def _powmod(bases: np.ndarray, exps, modulus: mpz) -> np.ndarray:
    """Elementwise ``bases ** exps mod modulus``; negative exponents use inverses."""
    out = np.frompyfunc(lambda b, e: gmpy2.powmod(b, int(e), modulus), 2, 1)(bases, exps)
    return out.astype(object) if isinstance(out, np.ndarray) else _obj([out], ())


def _plain_ints(factor, plain_frac_bits: int) -> tuple[np.ndarray, int]:
    """Plain factors as Python ints and the fractional bits they carry."""
    arr = np.asarray(factor)
    if arr.dtype == object or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(object), 0
    if not np.issubdtype(arr.dtype, np.floating):
        raise EncodingError(f"cannot multiply by values of dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise EncodingError("cannot multiply by NaN or infinite values")
    if np.all(arr == np.round(arr)) and np.all(np.abs(arr) < 2.0**53):
        return np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(object), 0
    scale = float(1 << plain_frac_bits)
    return np.vectorize(lambda v: round(v * scale), otypes=[object])(arr), plain_frac_bits
