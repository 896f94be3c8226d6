"""Many small signed or unsigned values per Paillier plaintext, with checked headroom (layer: mpc core).

A 2048-bit plaintext has room for far more than one 32-bit value. A
:class:`Packing` cuts it into *slots* of ``slot_bits`` bits; every value ``v``
(an integer, or a real scaled by ``2^frac_bits``) with
``-2^(value_bits-1) <= v < 2^(value_bits-1)`` is stored offset by
``2^(value_bits-1)`` (``signed=False``: ``0 <= v < 2^value_bits``, stored as
is), so a slot holds a non-negative number below ``2^value_bits``. Adding ``k`` packed ciphertexts adds slotwise with no carry
between slots as long as ``k <= max_additions``, because
``slot_bits = value_bits + ceil(log2(max_additions))``. A
:class:`PackedArray` counts its *weight* (how many fresh encryptions it
sums, times any plain factor) and refuses an addition or multiplication that
would exceed ``max_additions`` before it happens; decryption subtracts
``weight * offset`` per slot and also checks that no slot and no bit
above the last slot is out of range (a corrupted or foreign ciphertext).

Cost: ``ceil(len / slots)`` ciphertexts instead of ``len``, with
``slots = (bits - 1) // slot_bits`` (48 slots of 42 bits at 2048 bits for
32-bit values and 1000 additions): encryption, decryption, addition and
bandwidth all shrink by that factor. FATE packs SecureBoost's gradient and
hessian the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import serial
from typing import Sequence

import gmpy2

from .paillier import PaillierPublicKey, PaillierSecretKey
from .paillier_array import EncryptedArray, _obj, check_key_id, parse_ciphertexts
from ..errors import EncodingError, ParameterError

__all__ = ["PackedArray", "Packing", "decrypt_packed", "encrypt_packed", "pack_encrypted"]


@dataclass(frozen=True)
class Packing:
    """Layout of packed plaintexts.

    Parameters
    ----------
    value_bits:
        Range of one encoded value: ``-2^(value_bits-1) <= v < 2^(value_bits-1)``,
        or ``0 <= v < 2^value_bits`` when ``signed`` is False (unsigned 32-bit
        values: ``Packing(32, signed=False)``).
    max_additions:
        Most packed encryptions that may be summed (the headroom).
    frac_bits:
        Fixed-point fractional bits applied to real inputs (0: integers only).
    signed:
        Whether values may be negative (stored offset by ``2^(value_bits-1)``).
    """

    value_bits: int
    max_additions: int = 1
    frac_bits: int = 0
    signed: bool = True

    def __post_init__(self) -> None:
        for name in ("value_bits", "max_additions", "frac_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ParameterError(f"Packing.{name} must be an int, got {v!r}")
        if not 2 <= self.value_bits <= 1024:
            raise ParameterError(f"Packing.value_bits must be in 2..1024, got {self.value_bits}")
        if self.max_additions < 1:
            raise ParameterError(f"Packing.max_additions must be at least 1, got {self.max_additions}")
        if not 0 <= self.frac_bits < self.value_bits:
            raise ParameterError(
                f"Packing.frac_bits must be in 0..value_bits-1, got {self.frac_bits}")
        if not isinstance(self.signed, bool):
            raise ParameterError(f"Packing.signed must be True or False, got {self.signed!r}")

    @property
    def offset(self) -> int:
        """Added to each value before packing: ``2^(value_bits-1)`` if signed, else 0."""
        return 1 << (self.value_bits - 1) if self.signed else 0

    @property
    def slot_bits(self) -> int:
        """Bits per slot: ``value_bits + ceil(log2(max_additions))``."""
        return self.value_bits + (self.max_additions - 1).bit_length()

    def slots(self, public: PaillierPublicKey) -> int:
        """Values per ciphertext under ``public``: the plaintext stays below ``2^(bits-1) < n``."""
        count = (public.bits - 1) // self.slot_bits
        if count < 1:
            raise ParameterError(f"a {self.slot_bits}-bit slot does not fit a {public.bits}-bit key")
        return count

    def _as_dict(self) -> dict:
        return {"value_bits": self.value_bits, "max_additions": self.max_additions,
                "frac_bits": self.frac_bits, "signed": self.signed}


def _encode_values(values, packing: Packing) -> list[int]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise EncodingError(f"packing takes a non-empty 1-D array, got shape {arr.shape}")
    offset = packing.offset
    if arr.dtype == object and not all(isinstance(v, int) or type(v).__name__ == "mpz"
                                       for v in arr.tolist()):
        raise EncodingError("an object array to pack must hold integers only")
    if arr.dtype == object or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        ints = [int(v) << packing.frac_bits for v in arr.tolist()]
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise EncodingError("cannot pack NaN or infinite values")
        if packing.frac_bits == 0 and not np.all(arr == np.round(arr)):
            raise EncodingError("non-integer values need Packing(frac_bits > 0)")
        scale = float(1 << packing.frac_bits)
        ints = [round(v * scale) for v in arr.tolist()]
    else:
        raise EncodingError(f"cannot pack values of dtype {arr.dtype}")
    lo, hi = min(ints), max(ints)
    if lo < -offset or hi >= (1 << packing.value_bits) - offset:
        span = (f"[-2^{packing.value_bits - 1}, 2^{packing.value_bits - 1})" if packing.signed
                else f"[0, 2^{packing.value_bits})")
        raise EncodingError(
            f"a value does not fit Packing(value_bits={packing.value_bits}, frac_bits="
            f"{packing.frac_bits}, signed={packing.signed}): encoded values must lie in "
            f"{span}")   # the values themselves may be secret: not quoted
    return [v + offset for v in ints]


def encrypt_packed(public: PaillierPublicKey, values, packing: Packing, *,
                   randomness: list | None = None) -> "PackedArray":
    """Encrypt a 1-D array into ``ceil(len / slots)`` packed ciphertexts
    (``randomness``: as in :meth:`PaillierPublicKey.encrypt`, one per ciphertext)."""
    shifted = _encode_values(values, packing)
    per, sb = packing.slots(public), packing.slot_bits
    plaintexts = []
    for start in range(0, len(shifted), per):
        m = 0
        for i, s in enumerate(shifted[start:start + per]):
            m |= s << (i * sb)
        plaintexts.append(m)
    cts = public.encrypt_raw(plaintexts, randomness)
    return PackedArray(public, _obj(cts, (len(cts),)), packing, len(shifted), 1)


def pack_encrypted(enc: EncryptedArray, packing: Packing,
                   add: Sequence[int] | None = None) -> "PackedArray":
    """Pack values that are already encrypted, without the secret key: a :class:`PackedArray`
    of weight 1 whose slot i holds ``v_i + offset + add_i``.

    Horner's rule on the ciphertexts (``slot_bits`` squarings per slot); the
    offsets and ``add`` (plain integers >= 0, e.g. masks that hide the values
    from the key holder) enter as one fresh encryption per packed ciphertext,
    which also re-randomises it. Nobody can check encrypted values: the caller
    vouches that every ``v_i + add_i`` lies in the packing's range (a ``v_i``
    may be negative when ``add_i`` lifts it); :func:`decrypt_packed` refuses a
    slot that carried over, as far as it shows.
    """
    if not isinstance(enc, EncryptedArray) or enc.ciphertexts.ndim != 1 or enc.ciphertexts.size == 0:
        raise ParameterError("pack_encrypted takes a non-empty 1-D EncryptedArray")
    if enc.frac_bits != packing.frac_bits:
        raise ParameterError(f"values with {enc.frac_bits} fractional bits cannot be packed as "
                             f"Packing(frac_bits={packing.frac_bits})")
    cts, public = list(enc.ciphertexts), enc.public
    extra = [0] * len(cts) if add is None else [int(a) for a in add]
    if len(extra) != len(cts) or any(a < 0 for a in extra):
        raise ParameterError(f"add must be {len(cts)} integers >= 0")
    n2, per, sb = public.n_squared, packing.slots(public), packing.slot_bits
    out = []
    for g in range(0, len(cts), per):
        acc = cts[min(g + per, len(cts)) - 1]
        for c in reversed(cts[g:min(g + per, len(cts)) - 1]):
            acc = gmpy2.powmod(acc, 1 << sb, n2) * c % n2
        plain = sum((packing.offset + a) << (sb * i) for i, a in enumerate(extra[g:g + per]))
        (fresh,) = public.encrypt_raw([plain % public.n])
        out.append(acc * fresh % n2)
    return PackedArray(public, _obj(out, (len(out),)), packing, len(cts), 1)


def decrypt_packed(secret: PaillierSecretKey, packed: "PackedArray") -> np.ndarray:
    """Decrypt, unpack and decode: int64 (uint64 for unsigned packing; object for
    values beyond 64 bits) when ``frac_bits`` is 0, else float64."""
    if not isinstance(packed, PackedArray):
        raise TypeError(f"expected a PackedArray, not {type(packed).__name__}")
    if packed.public != secret.public:
        raise ParameterError(f"ciphertexts are under key {packed.public.key_id}, "
                             f"this is {secret.public.key_id}")
    p = packed.packing
    per, sb = p.slots(packed.public), p.slot_bits
    mask = (1 << sb) - 1
    offset = packed.weight * p.offset
    top = packed.weight * ((1 << p.value_bits) - 1)  # largest honest slot
    out: list[int] = []
    remaining = packed.length
    for m in secret.decrypt_raw(list(packed.ciphertexts)):
        count = min(per, remaining)
        m = int(m)
        if m >> (count * sb):
            raise EncodingError("packed plaintext has bits above its last slot: overflow or "
                                "a ciphertext that was not made with this packing")
        for i in range(count):
            s = (m >> (i * sb)) & mask
            if s > top:
                raise EncodingError(f"packed slot out of range for weight {packed.weight}: overflow")
            out.append(s - offset)
        remaining -= count
    if p.frac_bits:
        scale = 1 << p.frac_bits
        return np.array([v / scale for v in out], dtype=np.float64)
    if not p.signed and all(v < (1 << 64) for v in out):
        return np.array(out, dtype=np.uint64)
    if p.signed and all(-(1 << 63) <= v < (1 << 63) for v in out):
        return np.array(out, dtype=np.int64)
    return _obj(out, (len(out),))


class PackedArray:
    """Packed Paillier ciphertexts of a 1-D array, with the weight they carry.

    ``a + b`` (same key, packing and length; weights add), ``sum([...])``,
    ``a * k`` for a plain int ``k >= 0`` (weight times ``k``). Every operation
    that would push the weight over ``packing.max_additions`` raises
    :class:`~mpc.errors.EncodingError` first.
    """

    __slots__ = ("public", "ciphertexts", "packing", "length", "weight")
    __array_ufunc__ = None

    def __init__(self, public: PaillierPublicKey, ciphertexts: np.ndarray, packing: Packing,
                 length: int, weight: int) -> None:
        self.public = public
        self.ciphertexts = ciphertexts
        self.packing = packing
        self.length = length
        self.weight = weight

    def __len__(self) -> int:
        return self.length

    @property
    def n_ciphertexts(self) -> int:
        """Number of packed ciphertexts (``ciphertexts`` is the array of them)."""
        return len(self.ciphertexts)

    def __repr__(self) -> str:
        return (f"PackedArray(length={self.length}, n_ciphertexts={len(self.ciphertexts)}, "
                f"weight={self.weight}/{self.packing.max_additions}, key={self.public.key_id})")

    def _checked_weight(self, weight: int, op: str) -> int:
        if weight > self.packing.max_additions:
            raise EncodingError(
                f"packed {op} would reach weight {weight}, over the headroom of "
                f"max_additions={self.packing.max_additions}: slots would overflow into each "
                "other. Use a Packing with larger max_additions")
        return weight

    def __add__(self, other) -> "PackedArray":
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self  # lets sum() start from 0
        if not isinstance(other, PackedArray):
            raise TypeError("packed ciphertexts add only to packed ciphertexts")
        if other.public != self.public:
            raise ParameterError("cannot add packed ciphertexts under different keys")
        if other.packing != self.packing or other.length != self.length:
            raise ParameterError(
                f"cannot add packed arrays of different layouts ({self.packing}, length "
                f"{self.length}) and ({other.packing}, length {other.length})")
        weight = self._checked_weight(self.weight + other.weight, "addition")
        cts = self.ciphertexts * other.ciphertexts % self.public.n_squared
        return PackedArray(self.public, cts, self.packing, self.length, weight)

    __radd__ = __add__

    def __mul__(self, k) -> "PackedArray":
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ParameterError("packed ciphertexts multiply only by plain integers >= 0 "
                                 "(a negative factor would break the offsets)")
        weight = self._checked_weight(self.weight * int(k), "multiplication")
        n2 = self.public.n_squared
        cts = _obj([pow(c, int(k), n2) for c in self.ciphertexts], (len(self.ciphertexts),))
        return PackedArray(self.public, cts, self.packing, self.length, weight)

    __rmul__ = __mul__

    def rerandomize(self) -> "PackedArray":
        """Fresh randomness for the same plaintexts; see
        :meth:`mpc.he.paillier.EncryptedArray.rerandomize`."""
        n2 = self.public.n_squared
        rs = self.public.randomness(len(self.ciphertexts))
        cts = _obj([c * r % n2 for c, r in zip(self.ciphertexts, rs)], (len(rs),))
        return PackedArray(self.public, cts, self.packing, self.length, self.weight)

    def serialize(self) -> bytes:
        """Envelope kind ``PAILLIER_PACKED``: header {key_id, packing, length,
        weight}, body as :meth:`EncryptedArray.serialize`."""
        width = (self.public.n_squared.bit_length() + 7) // 8
        body = b"".join(int(c).to_bytes(width, "big") for c in self.ciphertexts)
        header = {"key_id": self.public.key_id, "packing": self.packing._as_dict(),
                  "length": self.length, "weight": self.weight}
        return serial.dump(serial.Kind.PAILLIER_PACKED, header, body)

    @classmethod
    def load(cls, public: PaillierPublicKey, data: bytes) -> "PackedArray":
        """Inverse of :meth:`serialize`."""
        what = "packed Paillier ciphertexts"
        header, body = serial.load(data, serial.Kind.PAILLIER_PACKED)
        check_key_id(public, header, what)
        get = serial.header_field
        layout = get(header, "packing", dict, what)
        try:
            packing = Packing(**{k: layout[k] for k in ("value_bits", "max_additions", "frac_bits")},
                              signed=layout.get("signed", True))   # absent: written before unsigned
        except (KeyError, TypeError, ParameterError) as exc:
            raise EncodingError(f"{what}: bad packing in the header") from exc
        length, weight = get(header, "length", int, what), get(header, "weight", int, what)
        if length < 1 or not 0 <= weight <= packing.max_additions:
            raise EncodingError(f"{what}: bad length or weight in the header")
        count = -(-length // packing.slots(public))
        return cls(public, parse_ciphertexts(public, body, count, what), packing, length, weight)
