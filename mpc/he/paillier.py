"""Paillier additively homomorphic encryption on gmpy2 (layer: mpc core).

Keys: :func:`keygen` returns a :class:`PaillierKeypair` of a
:class:`PaillierPublicKey` (encrypts, evaluates) and a :class:`PaillierSecretKey`
(decrypts). :class:`EncryptedArray` holds a numpy array of ciphertexts of
signed integers or fixed-point reals, with ``+``, ``-`` (encrypted or plain),
``*`` by plain values, :meth:`~EncryptedArray.sum`, :meth:`~EncryptedArray.dot`
and ``M @ x``. Many small values per ciphertext: :mod:`mpc.he.packing`.

Scheme
------
1. Key generation: primes ``p, q`` of ``bits/2`` bits each, ``n = p q`` of
   exactly ``bits`` bits; ``g = n + 1``; ``h = -x^2 mod n`` for a random ``x``
   and ``h_s = h^n mod n^2`` (Damgard-Jurik-Nielsen, DJN10 section 4.1, as in
   ABY's libdjn).
2. Encryption of ``m``: ``c = (1 + m n) * h_s^a mod n^2`` with ``a`` uniform
   below ``2^ceil(bits/2)``. ``g^m = 1 + m n`` needs no exponentiation, and
   ``h_s^a`` is a fixed-base exponentiation with a precomputed table of
   ``h_s^(d 2^(6i))`` (171 products per encryption at 2048 bits, about 5.6 MB
   per key, built on first use by a batch of 64 values or more, or by
   :meth:`PaillierPublicKey.precompute`).
3. Decryption with CRT (Paillier99 section 7): ``m_p = L_p(c^(p-1) mod p^2) h_p
   mod p`` with ``L_p(u) = (u - 1)/p`` and ``h_p = L_p(g^(p-1) mod p^2)^-1``,
   the same mod ``q``, then ``m`` by CRT: two half-size exponentiations with
   half-size exponents instead of one ``c^lambda mod n^2``.
4. ``E(a) E(b) = E(a + b)``, ``E(a)^k = E(k a)``, ``E(a)^-1 = E(-a)``.

Encoding: a signed integer ``v`` is ``v mod n``; decryption maps ``[0, n/3]`` to
itself and ``[n - n/3, n)`` to negatives, and refuses the middle third as an
overflow. A real ``x`` with ``frac_bits = f`` is ``round(x 2^f)``; products with
a real plain value add the plain value's fractional bits.

Security
--------
IND-CPA under the decisional composite residuosity assumption (Paillier99);
a computed ciphertext must be re-randomized (:meth:`EncryptedArray.rerandomize`)
before the key holder sees it, or its randomness reveals the plain factors;
the DJN randomness ``h_s^a`` with a half-length ``a`` is the variant of DJN10
section 4.1, semantically secure under DCR as argued there. Keys below 2048
bits (about 112-bit security, NIST SP 800-57) are refused unless
``insecure_for_testing=True``. Semi-honest: ciphertexts are malleable and carry
no integrity; an evaluator can return any ciphertext. Every random value comes
from the OS CSPRNG (:func:`mpc.rand.random_seed`).

Cost
----
A ciphertext is ``2 * bits / 8`` bytes (512 B at 2048 bits). Encryption: 171
modular products mod ``n^2`` (table) or one 1024-bit-exponent exponentiation;
decryption: two exponentiations mod ``p^2``, ``q^2``; addition: one product;
plain multiplication by ``k``: one exponentiation by ``k``'s bit length.

References
----------
[Paillier99] P. Paillier, Public-key cryptosystems based on composite degree
residuosity classes, Eurocrypt 1999.
[DJN10] I. Damgard, M. Jurik, J. B. Nielsen, A generalization of Paillier's
public-key system with applications to electronic voting, IJIS 9(6), 2010.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import gmpy2
import numpy as np
from gmpy2 import mpz

from . import serial
from ..errors import EncodingError, ParameterError
from ..rand import random_seed
from .paillier_array import EncryptedArray, _obj, multiexp, parse_ciphertexts

MIN_BITS = 2048
"""Smallest modulus accepted without ``insecure_for_testing`` (112-bit security)."""
DEFAULT_BITS = 2048
_WINDOW = 6
_TABLE_AFTER = 64  # values encrypted in one call that justify building the table
_MR_ROUNDS = 40

__all__ = ["DEFAULT_BITS", "MIN_BITS", "EncryptedArray", "PaillierKeypair", "PaillierPublicKey",
           "PaillierSecretKey", "keygen", "multiexp", "parse_ciphertexts"]


def _randint(bits: int) -> mpz:
    """Uniform integer below 2^bits from the OS CSPRNG."""
    nbytes = max(16, (bits + 7) // 8)
    return mpz(int.from_bytes(random_seed(nbytes), "big")) >> (8 * nbytes - bits)


def _prime(bits: int) -> mpz:
    """A random prime of exactly ``bits`` bits with its two top bits set."""
    while True:
        c = _randint(bits) | (mpz(3) << (bits - 2)) | 1
        if gmpy2.is_prime(c, _MR_ROUNDS):
            return c


def _check_bits(bits: int, insecure_for_testing: bool, what: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, type(mpz(0)))) or bits % 2:
        raise ParameterError(f"{what}: modulus size must be an even number of bits, got {bits!r}")
    if bits < MIN_BITS and not insecure_for_testing:
        raise ParameterError(
            f"{what}: a {bits}-bit Paillier modulus is insecure; at least {MIN_BITS} bits are "
            "required (pass insecure_for_testing=True only in tests)")
    if bits < 256:
        raise ParameterError(f"{what}: {bits} bits is too small even for tests (minimum 256)")


class PaillierKeypair(NamedTuple):
    """A public key and its secret key."""

    public: "PaillierPublicKey"
    secret: "PaillierSecretKey"


def keygen(bits: int = DEFAULT_BITS, *, insecure_for_testing: bool = False) -> PaillierKeypair:
    """Generate a Paillier key pair with an ``bits``-bit modulus.

    Raises
    ------
    ParameterError
        ``bits`` below 2048 without ``insecure_for_testing=True``, or odd.
    """
    _check_bits(bits, insecure_for_testing, "Paillier keygen")
    while True:
        p, q = _prime(bits // 2), _prime(bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    while True:
        x = _randint(bits) % n
        if x > 1 and gmpy2.gcd(x, n) == 1:
            break
    h = (-x * x) % n
    public = PaillierPublicKey(n, gmpy2.powmod(h, n, n * n), insecure_for_testing=insecure_for_testing)
    return PaillierKeypair(public, PaillierSecretKey(public, p, q))


class PaillierPublicKey:
    """Encrypts and evaluates; see the module docstring for the scheme.

    Attributes
    ----------
    n, n_squared:
        The modulus and its square (gmpy2 integers).
    bits:
        Bit length of ``n``.
    max_int:
        Largest magnitude a decrypted signed value may have: ``n // 3``.
    key_id:
        Fingerprint of ``n``; ciphertexts carry it.
    """

    __slots__ = ("n", "n_squared", "hs", "bits", "max_int", "key_id", "_rbits", "_table",
                 "insecure")

    def __init__(self, n: int, hs: int, *, insecure_for_testing: bool = False) -> None:
        n, hs = mpz(n), mpz(hs)
        if n.bit_length() < MIN_BITS and not insecure_for_testing:
            raise ParameterError(
                f"Paillier public key: a {n.bit_length()}-bit modulus is insecure; at least "
                f"{MIN_BITS} bits are required (insecure_for_testing=True only in tests)")
        if n % 2 == 0 or gmpy2.is_square(n) or gmpy2.is_prime(n):
            raise ParameterError("Paillier public key: n must be an odd composite, not a square")
        self.n = n
        self.n_squared = n * n
        if not 1 < hs < self.n_squared or gmpy2.gcd(hs, n) != 1:
            raise ParameterError("Paillier public key: h_s must be a unit mod n^2")
        self.hs = hs
        self.bits = n.bit_length()
        self.max_int = n // 3
        self.key_id = serial.fingerprint(b"paillier", _to_bytes(n))
        self._rbits = (self.bits + 1) // 2
        self._table: list[list[mpz]] | None = None
        self.insecure = insecure_for_testing

    def is_ciphertext(self, c: mpz | int) -> bool:
        """True if ``c`` is a unit modulo n^2 (``0 < c < n^2``, ``gcd(c, n) = 1``): the only
        values a peer may hand in as ciphertexts. A non-unit such as ``n`` or a multiple of
        a prime factor decrypts to a value tied to the factors of n."""
        return 0 < c < self.n_squared and gmpy2.gcd(c, self.n) == 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and other.n == self.n and other.hs == self.hs

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, key_id={self.key_id})"

    # --- randomness and raw encryption -------------------------------------------

    def precompute(self) -> None:
        """Build the fixed-base table for ``h_s`` now (~0.5 s and 5.6 MB at 2048 bits)."""
        if self._table is not None:
            return
        n2, base, table = self.n_squared, self.hs, []
        for _ in range(-(-self._rbits // _WINDOW)):
            row = [mpz(1), base]
            for _ in range(2, 1 << _WINDOW):
                row.append(row[-1] * base % n2)
            table.append(row)
            base = row[-1] * base % n2
        self._table = table

    def randomness(self, count: int) -> list[mpz]:
        """``count`` fresh values ``h_s^a mod n^2`` (the r^n part of ciphertexts).

        Can be called ahead of time (offline) and the result passed to
        :meth:`encrypt_raw`; every value must be used once only.
        """
        if count >= _TABLE_AFTER:
            self.precompute()
        rb, nbytes = self._rbits, (self._rbits + 7) // 8
        raw = random_seed(max(16, count * nbytes))
        exps = [int.from_bytes(raw[i * nbytes:(i + 1) * nbytes], "big") >> (8 * nbytes - rb)
                for i in range(count)]
        n2, table = self.n_squared, self._table
        if table is None:
            return [gmpy2.powmod(self.hs, a, n2) for a in exps]
        mask = (1 << _WINDOW) - 1
        out = []
        for a in exps:
            acc, i = mpz(1), 0
            while a:
                d = a & mask
                if d:
                    acc = acc * table[i][d] % n2
                a >>= _WINDOW
                i += 1
            out.append(acc)
        return out

    def encrypt_raw(self, plaintexts: list[int], randomness: list[mpz] | None = None) -> list[mpz]:
        """Encrypt integers already reduced to ``[0, n)`` (no encoding).

        A ``randomness`` list is consumed (emptied): encrypting twice with one
        value would reveal the difference of the plaintexts.
        """
        n, n2 = self.n, self.n_squared
        rs = self.randomness(len(plaintexts)) if randomness is None else list(randomness)
        if randomness is not None and not rs and plaintexts:
            raise ParameterError("this randomness was already used (each value encrypts once only)")
        if len(rs) != len(plaintexts):
            raise ParameterError(f"{len(plaintexts)} plaintexts but {len(rs)} random values")
        if isinstance(randomness, list):
            randomness.clear()
        out = []
        for m, r in zip(plaintexts, rs):
            m = mpz(m)
            if not 0 <= m < n:
                raise EncodingError("Paillier plaintext outside [0, n)")
            out.append((1 + m * n) * r % n2)
        return out

    # --- encoding ----------------------------------------------------------------

    def encode(self, values, frac_bits: int = 0) -> np.ndarray:
        """Signed integers (or reals scaled by ``2^frac_bits``) as an object array
        of residues mod ``n``. Refuses magnitudes above :attr:`max_int`."""
        if not isinstance(frac_bits, int) or frac_bits < 0:
            raise ParameterError(f"frac_bits must be a non-negative int, got {frac_bits!r}")
        arr = np.asarray(values)
        if arr.dtype == object:
            ints = np.vectorize(lambda v: _to_int(v, frac_bits), otypes=[object])(arr)
        elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
            ints = arr.astype(object) * (1 << frac_bits) if frac_bits else arr.astype(object)
        elif np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)):
                raise EncodingError("cannot encrypt NaN or infinite values")
            if frac_bits == 0 and not np.all(arr == np.round(arr)):
                raise EncodingError("non-integer values need frac_bits > 0 (fixed point)")
            ints = np.vectorize(lambda v: _to_int(v, frac_bits), otypes=[object])(arr)
        else:
            raise EncodingError(f"cannot encrypt values of dtype {arr.dtype}")
        if ints.size and max(abs(int(v)) for v in ints.flat) > self.max_int:
            raise EncodingError(
                f"a value exceeds the signed range of this key (|v| <= n/3, about 2^{self.bits - 2})")
        return np.vectorize(lambda v: mpz(v) % self.n, otypes=[object])(ints) if ints.size else ints

    def encrypt(self, values, frac_bits: int = 0, *,
                randomness: list[mpz] | None = None) -> "EncryptedArray":
        """Encrypt an array (or scalar) of signed integers, or of reals as fixed
        point with ``frac_bits`` fractional bits. Returns an :class:`EncryptedArray`
        of the same shape. ``randomness``: one unused :meth:`randomness` value
        per element, drawn ahead of time (the online cost is then one product)."""
        encoded = self.encode(values, frac_bits)
        flat = self.encrypt_raw(list(encoded.flat), randomness)
        return EncryptedArray(self, _obj(flat, encoded.shape), frac_bits)

    def encrypt_packed(self, values, packing, *, randomness: list[mpz] | None = None):
        """Encrypt a 1-D array several values per ciphertext: see :mod:`mpc.he.packing`."""
        from .packing import encrypt_packed
        return encrypt_packed(self, values, packing, randomness=randomness)

    # --- serialization ---------------------------------------------------------------

    def serialize(self) -> bytes:
        """Envelope kind ``PAILLIER_PUBLIC_KEY``: header {bits, key_id}, body =
        ``n`` and ``h_s`` as length-prefixed big-endian integers."""
        return serial.dump(serial.Kind.PAILLIER_PUBLIC_KEY, {"bits": self.bits, "key_id": self.key_id},
                           serial.join_parts([_to_bytes(self.n), _to_bytes(self.hs)]))

    @classmethod
    def load(cls, data: bytes, *, insecure_for_testing: bool = False) -> "PaillierPublicKey":
        """Load :meth:`serialize` output; refuses keys under 2048 bits unless
        ``insecure_for_testing`` and keys whose fingerprint does not match."""
        header, body = serial.load(data, serial.Kind.PAILLIER_PUBLIC_KEY, max_body=4096)
        n_b, hs_b = serial.split_parts(body, 2, "Paillier public key")
        key = cls(_from_bytes(n_b), _from_bytes(hs_b), insecure_for_testing=insecure_for_testing)
        if header.get("key_id") != key.key_id or header.get("bits") != key.bits:
            raise EncodingError("Paillier public key: header does not match the key")
        return key

    def load_ciphertexts(self, data: bytes) -> "EncryptedArray":
        """Load :meth:`EncryptedArray.serialize` output made under this key."""
        return EncryptedArray.load(self, data)

    def load_packed(self, data: bytes):
        """Load :meth:`mpc.he.packing.PackedArray.serialize` output made under this key."""
        from .packing import PackedArray
        return PackedArray.load(self, data)


class PaillierSecretKey:
    """Decrypts ciphertexts of :attr:`public` with CRT (see the module docstring)."""

    __slots__ = ("public", "_g", "_p", "_q", "_p2", "_q2", "_hp", "_hq", "_q_inv")

    def __init__(self, public: PaillierPublicKey, p: int, q: int, *, g: int | None = None) -> None:
        """``g`` is ``n + 1`` (what :meth:`PaillierPublicKey.encrypt` uses); another
        generator is accepted only to check textbook examples."""
        p, q = mpz(p), mpz(q)
        if p * q != public.n or p == q:
            raise ParameterError("Paillier secret key: p * q does not match the public key")
        self.public = public
        self._g = public.n + 1 if g is None else mpz(g)
        self._p, self._q = p, q
        self._p2, self._q2 = p * p, q * q
        self._hp = self._h(p, self._p2)
        self._hq = self._h(q, self._q2)
        self._q_inv = gmpy2.invert(q, p)

    def _h(self, prime: mpz, square: mpz) -> mpz:
        return gmpy2.invert((gmpy2.powmod(self._g, prime - 1, square) - 1) // prime, prime)

    def __repr__(self) -> str:
        return f"PaillierSecretKey(bits={self.public.bits}, key_id={self.public.key_id})"

    def decrypt_raw(self, ciphertexts: list[mpz]) -> list[mpz]:
        """Plaintexts in ``[0, n)`` (no decoding), by CRT."""
        p, q, p2, q2 = self._p, self._q, self._p2, self._q2
        hp, hq, qinv = self._hp, self._hq, self._q_inv
        # one gmpy2 call per prime for the whole batch (it releases the GIL)
        ups = gmpy2.powmod_base_list([mpz(c) % p2 for c in ciphertexts], p - 1, p2)
        uqs = gmpy2.powmod_base_list([mpz(c) % q2 for c in ciphertexts], q - 1, q2)
        out = []
        for up, uq in zip(ups, uqs):
            mp = (up - 1) // p * hp % p
            mq = (uq - 1) // q * hq % q
            out.append(mq + ((mp - mq) * qinv % p) * q)  # Garner's CRT
        return out

    def decode(self, plaintexts: np.ndarray, frac_bits: int) -> np.ndarray:
        """Residues mod n to signed integers (int64 when they fit, else object)
        or, with ``frac_bits``, to float64. Refuses the middle third (overflow)."""
        n, top = self.public.n, self.public.max_int

        def signed(m: mpz) -> int:
            if m <= top:
                return int(m)
            if m >= n - top:
                return int(m - n)
            raise EncodingError(
                "Paillier decryption overflow: the result left the signed range |v| <= n/3 "
                "(too many additions or too large factors)")

        ints = np.vectorize(signed, otypes=[object])(plaintexts) if plaintexts.size else plaintexts
        if frac_bits:
            scale = 1 << frac_bits
            return np.vectorize(lambda v: v / scale, otypes=[np.float64])(ints) \
                if ints.size else ints.astype(np.float64)
        if ints.size and all(-(1 << 63) <= v < (1 << 63) for v in ints.flat):
            return ints.astype(np.int64)
        return ints

    def decrypt(self, encrypted: "EncryptedArray") -> np.ndarray:
        """Decrypt and decode an :class:`EncryptedArray` (its shape is kept)."""
        if not isinstance(encrypted, EncryptedArray):
            raise TypeError(f"can only decrypt an EncryptedArray, not {type(encrypted).__name__}")
        if encrypted.public != self.public:
            raise ParameterError(
                f"ciphertexts are under key {encrypted.public.key_id}, this is {self.public.key_id}")
        flat = self.decrypt_raw(list(encrypted.ciphertexts.flat))
        return self.decode(_obj(flat, encrypted.shape), encrypted.frac_bits)

    def decrypt_packed(self, packed) -> np.ndarray:
        """Decrypt a :class:`~mpc.he.packing.PackedArray` (see :mod:`mpc.he.packing`)."""
        from .packing import decrypt_packed
        return decrypt_packed(self, packed)

    def serialize(self) -> bytes:
        """Envelope kind ``PAILLIER_SECRET_KEY``: header {bits, key_id}, body =
        ``n``, ``h_s``, ``p``, ``q`` as length-prefixed big-endian integers."""
        pk = self.public
        return serial.dump(serial.Kind.PAILLIER_SECRET_KEY, {"bits": pk.bits, "key_id": pk.key_id},
                           serial.join_parts([_to_bytes(v) for v in (pk.n, pk.hs, self._p, self._q)]))

    @classmethod
    def load(cls, data: bytes, *, insecure_for_testing: bool = False) -> "PaillierSecretKey":
        """Load :meth:`serialize` output; checks ``p q = n`` and that p, q are prime."""
        header, body = serial.load(data, serial.Kind.PAILLIER_SECRET_KEY, max_body=8192)
        n, hs, p, q = (_from_bytes(b) for b in serial.split_parts(body, 4, "Paillier secret key"))
        public = PaillierPublicKey(n, hs, insecure_for_testing=insecure_for_testing)
        if header.get("key_id") != public.key_id:
            raise EncodingError("Paillier secret key: header does not match the key")
        if p * q != public.n:
            raise ParameterError("Paillier secret key: p * q does not match the public key")
        if not (gmpy2.is_prime(p, _MR_ROUNDS) and gmpy2.is_prime(q, _MR_ROUNDS)):
            raise ParameterError("Paillier secret key: p and q must be prime")
        return cls(public, p, q)


# --- helpers ------------------------------------------------------------------------------
def _to_int(v, frac_bits: int) -> int:
    if isinstance(v, (int, np.integer)) or type(v) is type(mpz(0)):
        return int(v) << frac_bits
    f = float(v)
    if not math.isfinite(f):
        raise EncodingError("cannot encrypt NaN or infinite values")
    if not frac_bits:
        return _exact_int(f)
    # exact: a float is m 2^e, so round(f 2^frac_bits) needs no float product (which overflows)
    num, den = f.as_integer_ratio()
    return round(Fraction(num << frac_bits, den))


def _exact_int(f: float) -> int:
    if f != int(f):
        raise EncodingError("non-integer values need frac_bits > 0 (fixed point)")
    return int(f)

def _to_bytes(v: int) -> bytes:
    v = int(v)
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


def _from_bytes(b: bytes) -> mpz:
    return mpz(int.from_bytes(b, "big"))
