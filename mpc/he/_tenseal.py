"""Glue to TenSEAL's internals: selective Galois keys and readable errors (layer: mpc core).

TenSEAL can only generate *all* power-of-two rotation keys (35 MB at N = 8192
for four primes). We generate exactly the rotation steps an operation needs with
SEAL's ``KeyGenerator`` (``tenseal.sealapi``) and place them in the public
context's protobuf (field ``TenSEALContextProto.public_context.galois_keys``),
which TenSEAL loads as it is. The protobuf is read and written by the few lines
below (varints and length-delimited fields only), so no protobuf dependency.

TenSEAL errors surface as ``ValueError: std::exception`` or "scale out of
bounds" (OpenMined/TenSEAL#217, #78, #216): :func:`translate` turns them into
messages that say what to change.
"""

from __future__ import annotations

import os
import struct
import tempfile

import tenseal as ts
import tenseal.sealapi as sealapi

from ..errors import ConciliumError, EncodingError, ParameterError


_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None   # scratch files in memory


class DepthError(ParameterError):
    """An operation needs more multiplicative depth than the ciphertext has left."""


# --- rotation steps -------------------------------------------------------------

def sum_steps(length: int) -> list[int]:
    """Rotations TenSEAL's ``sum`` uses on a chunk of ``length`` slots: 2^k < length."""
    steps, k = [], 1
    while k < length:
        steps.append(k)
        k <<= 1
    return steps


def matvec_steps(length: int, slots: int) -> list[int]:
    """Rotations for the diagonal matrix-vector product on ``length`` inputs.

    TenSEAL rotates by every i < length; SEAL builds a rotation without its own
    key from signed powers of two (non-adjacent form), so +-2^k for 2^k <= the
    next power of two of ``length`` (capped below ``slots``) suffice.
    """
    top = 1
    while top < length:
        top <<= 1
    steps, k = [], 1
    while k <= top and k < slots:
        steps += [k, -k]
        k <<= 1
    return steps


def naf(step: int) -> list[int]:
    """Signed powers of two summing to ``step`` (non-adjacent form), as SEAL
    composes a rotation that has no key of its own."""
    out, k = [], 0
    while step:
        if step & 1:
            digit = 2 - (step & 3)  # +1 or -1
            out.append(digit << k)
            step -= digit
        step >>= 1
        k += 1
    return out


def signed_step(step: int, slots: int) -> int:
    """``step`` mod ``slots`` as a SEAL left-rotation step in (-slots/2, slots/2]."""
    s = step % slots
    return s - slots if s > slots // 2 else s


def rotation_available(step: int, slots: int, available: frozenset[int]) -> bool:
    """Can SEAL rotate left by ``step`` with keys for ``available`` (steps mod ``slots``)?"""
    s = signed_step(step, slots)
    return s == 0 or s % slots in available or all(c % slots in available for c in naf(s))


def wrap_ciphertext(raw_context, ciphertext, size: int, scale: float):
    """A TenSEAL ``CKKSVector`` of ``size`` values around a SEAL ciphertext.

    TenSEAL builds vectors only from values or from a ``CKKSVectorProto``
    (1: packed size, 2: SEAL ciphertext bytes, 3: scale as a double); SEAL's
    Python binding saves ciphertexts only to a file (a ciphertext is not secret).
    """
    with tempfile.TemporaryDirectory(prefix="concilium-ct-", dir=_SHM) as tmp:
        path = os.path.join(tmp, "ct")
        ciphertext.save(path)
        with open(path, "rb") as fh:
            data = fh.read()
    proto = _emit([(1, 2, _varint(size)), (2, 2, data), (3, 1, struct.pack("<d", scale))])
    return ts._ts_cpp.CKKSVector(raw_context, proto)


# --- protobuf (just enough for TenSEALContextProto) -------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = val = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise EncodingError("malformed TenSEAL context (varint)")
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, pos


def _parse(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            fields.append((num, wire, value))
            continue
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size, pos = _read_varint(buf, pos)
        if size is None or pos + size > len(buf):
            raise EncodingError("malformed TenSEAL context (field)")
        fields.append((num, wire, buf[pos:pos + size]))
        pos += size
    return fields


# TenSEALContextProto / TenSEALPublicProto (tenseal/proto/tensealcontext.proto): field
# number -> (wire type, required). A public context has no private_context (3).
_CONTEXT_FIELDS = {1: (2, True), 2: (2, True), 4: (0, False)}
_PUBLIC_FIELDS = {1: (2, True), 2: (0, False), 3: (1, True), 4: (2, True), 5: (2, False)}
_NAMES = {(0, 1): "encryption_parameters", (0, 2): "public_context", (0, 3): "private_context",
          (0, 4): "encryption_type", (1, 1): "public_key", (1, 2): "auto_flags", (1, 3): "scale",
          (1, 4): "relin_keys", (1, 5): "galois_keys"}


def _check_message(buf: bytes, spec: dict[int, tuple[int, bool]], level: int,
                   what: str) -> dict[int, int | bytes]:
    out: dict[int, int | bytes] = {}
    for num, wire, value in _parse(buf):
        name = _NAMES.get((level, num), f"field {num}")
        if num not in spec:
            raise EncodingError(f"{what}: TenSEAL body has an unexpected {name}")
        if wire != spec[num][0] or num in out:
            raise EncodingError(f"{what}: TenSEAL body field {name} is repeated or of the wrong type")
        if wire == 2 and not value:
            raise EncodingError(f"{what}: TenSEAL body field {name} is empty")
        out[num] = value
    missing = [_NAMES[(level, n)] for n, (_, req) in spec.items() if req and n not in out]
    if missing:
        raise EncodingError(f"{what}: TenSEAL body lacks {', '.join(missing)}")
    return out


def check_public_context_body(body: bytes, what: str) -> None:
    """Check the protobuf layout of a public TenSEAL context before TenSEAL parses it.

    TenSEAL (0.3.x) accepts a public_context without a public key, and then
    crashes the process (segmentation fault) when that context is serialized, as
    :class:`PublicContext` does to compute its key id. So every field must be
    known, of its wire type, present at most once and non-empty, and the required
    ones present: encryption parameters; public key, scale and relinearisation keys
    (every context :meth:`PublicContext.serialize` writes has them). A
    private_context is refused. The SEAL objects inside the fields are left to
    SEAL's own checked loaders (their errors become EncodingError in the caller).
    """
    top = _check_message(body, _CONTEXT_FIELDS, 0, what)
    _check_message(top[2], _PUBLIC_FIELDS, 1, what)  # type: ignore[arg-type]


def _emit(fields: list[tuple[int, int, int | bytes]]) -> bytes:
    out: list[bytes] = []
    for num, wire, value in fields:
        out.append(_varint(num << 3 | wire))
        if wire == 0:
            out.append(_varint(int(value)))  # type: ignore[arg-type]
        elif wire == 2:
            out += (_varint(len(value)), value)  # type: ignore[arg-type]
        else:
            out.append(value)  # type: ignore[arg-type]
    return b"".join(out)   # one copy of the (large) key fields


def public_key_id(blob: bytes) -> str:
    """Fingerprint of the encryption parameters and public key in a serialized
    TenSEAL context (fields 1 and public_context.public_key)."""
    from .serial import fingerprint
    top = {num: value for num, _, value in _parse(blob)}
    pub = {num: value for num, _, value in _parse(top[2])}  # type: ignore[arg-type]
    return fingerprint(top[1], pub.get(1, b""))  # type: ignore[arg-type]


def public_context_with_galois(ctx: ts.Context, steps: list[int]) -> tuple[ts.Context, str]:
    """A public copy of ``ctx`` (no secret key) holding Galois keys for ``steps``
    only, and its :func:`public_key_id`.

    The keys are made in SEAL's seeded form (half of each key is a PRG seed
    until TenSEAL loads it): half the bytes to write and compress, which was
    the largest cost of a context's creation.
    """
    blob = ctx.serialize(save_public_key=True, save_secret_key=False,
                         save_galois_keys=False, save_relin_keys=True)
    key_id = public_key_id(blob)
    if steps:
        keygen = sealapi.KeyGenerator(ctx.seal_context().data, ctx.secret_key().data)
        n2 = 2 * ctx.seal_context().data.key_context_data().parms().poly_modulus_degree()
        # pass Galois elements, not steps: a list of non-negative ints would match
        # the elements overload anyway. Rotation by k (left) is 3^k mod 2N.
        elts = sorted({pow(3, s % (n2 // 4), n2) for s in steps})
        keys = keygen.create_galois_keys(elts)   # Serializable<GaloisKeys>: seeded
        # Galois keys are public evaluation keys: a temporary file is harmless.
        with tempfile.TemporaryDirectory(prefix="concilium-gk-", dir=_SHM) as tmp:
            path = os.path.join(tmp, "galois")
            keys.save(path)
            with open(path, "rb") as fh:
                galois = fh.read()
        pieces = []
        for num, wire, value in _parse(blob):
            if num == 2 and wire == 2:  # public_context, + galois_keys without joining it twice
                sub = _emit([f for f in _parse(value) if f[0] != 5])  # type: ignore[arg-type]
                tail = _varint(5 << 3 | 2) + _varint(len(galois))
                pieces += [_emit([(num, wire, b"")])[:-1], _varint(len(sub) + len(tail) + len(galois)),
                           sub, tail, galois]
            else:
                pieces.append(_emit([(num, wire, value)]))
        blob = b"".join(pieces)
    public = ts.context_from(blob)
    if not public.is_public():
        raise ConciliumError("internal: public context still holds a secret key")
    return public, key_id


def context_shape(ctx: ts.Context) -> tuple[int, tuple[int, ...]]:
    """(N, coefficient-modulus bit sizes) actually used by a TenSEAL context."""
    parms = ctx.seal_context().data.key_context_data().parms()
    return parms.poly_modulus_degree(), tuple(m.bit_count() for m in parms.coeff_modulus())


# --- errors ---------------------------------------------------------------------

def translate(exc: Exception, op: str) -> ConciliumError:
    """Turn a TenSEAL/SEAL exception raised during ``op`` into an actionable error."""
    msg = str(exc)
    if "scale out of bounds" in msg or "end of modulus switching chain" in msg:
        return DepthError(
            f"CKKS {op}: {msg!r} - the ciphertext has no multiplicative depth (or scale "
            "room) left. Use a preset with more depth (e.g. 'polynomial' or 'deep'), fewer "
            "chained multiplications, or decrypt and re-encrypt.")
    if "Galois key not present" in msg or "galois keys" in msg.lower():
        return ParameterError(
            f"CKKS {op}: missing rotation (Galois) key. Create the SecretContext with "
            "rotations=('sum',) for sum/dot or ('matvec',) for matrix products, and "
            "max_length at least the vector length.")
    if "different contexts" in msg or "parms_id" in msg or "mismatch" in msg:
        return ParameterError(
            f"CKKS {op}: operands come from different contexts or keys ({msg!r}); both "
            "must be encrypted under the same context.")
    if "transparent" in msg:
        return ParameterError(f"CKKS {op}: the result would be a transparent (unencrypted) "
                              "ciphertext, e.g. a product with an all-zero plain vector")
    if "std::exception" in msg or "invalid" in msg or "parse" in msg.lower():
        return EncodingError(
            f"CKKS {op}: TenSEAL failed with {msg!r}. Usual causes: corrupted ciphertext "
            "or context bytes, a ciphertext loaded with a context other than the one that "
            "made it, or parameters SEAL rejects.")
    return ParameterError(f"CKKS {op}: TenSEAL error: {msg}")
