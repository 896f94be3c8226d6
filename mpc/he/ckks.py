"""CKKS approximate homomorphic encryption of real vectors, on TenSEAL (layer: mpc core).

Two contexts, two roles:

* :class:`SecretContext`, made by the key holder: secret key, public key,
  relinearisation keys and only the rotation (Galois) keys asked for. It
  encrypts and decrypts.
* :class:`PublicContext`, sent to the party that computes (a server): the same
  without the secret key. It encrypts and evaluates, never decrypts. Its
  serialization never contains the secret key.

:class:`EncryptedVector` holds a real vector of any length, split transparently
into ``N/2``-slot ciphertexts, with ``+ - *`` (by plain or encrypted values),
:meth:`~EncryptedVector.dot`, :meth:`~EncryptedVector.sum`,
:meth:`~EncryptedVector.matvec`, :meth:`~EncryptedVector.polyval`, and on one
ciphertext :meth:`~EncryptedVector.rotate` (``numpy.roll`` of the slots, keys
for chosen ``steps`` only) and :meth:`~EncryptedVector.linear_transform`
(baby-step giant-step diagonal method on :class:`Diagonals`). Each vector
tracks its remaining multiplicative depth, so an operation that would run out
raises :class:`DepthError` *before* TenSEAL produces garbage or an opaque error.

Security
--------
IND-CPA under RLWE for the parameters of the HomomorphicEncryption.org 128-bit
table (checked, see :mod:`mpc.he.params`), semi-honest: the evaluator learns
nothing about the values, but CKKS decryptions leak noise and so must not be
shown to the evaluator (Li-Micciancio, Eurocrypt 2021). No integrity: a
malicious evaluator can return any ciphertext.

Cost
----
One ciphertext per ``N/2`` values: about ``2 * N * 8 * (primes left)`` bytes
uncompressed (330 kB serialized at N = 8192, three primes). Rotations (sum, dot,
matvec) cost one key switch each; a sum of ``s`` slots takes ``ceil(log2 s)``.
Measured costs are in ``docs/he.md`` and ``python -m bench he``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tenseal as ts
import tenseal.sealapi as sealapi

from . import serial
from ..errors import ParameterError
from ._tenseal import (DepthError, check_public_context_body, context_shape, matvec_steps,
                       public_context_with_galois, public_key_id, rotation_available, sum_steps, translate)
from .ckks_linear import Diagonals
from .ckks_vector import EncryptedVector
from .params import CKKSParams, check_security, resolve

_Cpp = ts._ts_cpp.CKKSVector
ROTATIONS = ("sum", "matvec")

__all__ = ["DepthError", "Diagonals", "EncryptedVector", "PublicContext", "SecretContext", "ROTATIONS"]


def _check_steps(steps: Sequence[int], slots: int) -> tuple[int, ...]:
    """Explicit :meth:`EncryptedVector.rotate` steps, normalised to ``[1, slots)``, sorted, unique."""
    out = set()
    for k in steps:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ParameterError(f"rotation steps must be integers, got {k!r}")
        if int(k) % slots:
            out.add(int(k) % slots)
    return tuple(sorted(out))


def _steps_for(rotations: Sequence[str], max_length: int, slots: int,
               steps: Sequence[int] = ()) -> list[int]:
    """SEAL left-rotation steps to make keys for: the kinds' and ``-k`` for each np.roll step ``k``."""
    keys = {(-k) % slots for k in steps}
    for kind in rotations:
        if kind == "sum":
            keys.update(sum_steps(min(max_length, slots)))
        elif kind == "matvec":
            keys.update(matvec_steps(min(max_length, slots), slots))
        else:
            raise ParameterError(f"unknown rotation kind {kind!r}; use {ROTATIONS}")
    return sorted(keys)


def _public_key_id(ctx: ts.Context) -> str:
    """The public key identifies the key pair."""
    return public_key_id(ctx.serialize(save_public_key=True, save_secret_key=False,
                                       save_galois_keys=False, save_relin_keys=False))


class PublicContext:
    """Public evaluation context: encrypt and compute, never decrypt.

    Made by :meth:`SecretContext.public` or :meth:`PublicContext.load`.

    Attributes
    ----------
    params:
        The :class:`~mpc.he.params.CKKSParams`.
    rotations, max_length:
        Which rotation keys it holds: ``"sum"`` (also for dot) and/or ``"matvec"``,
        for vectors (or ciphertext chunks) of up to ``max_length`` slots.
    steps:
        Explicit :meth:`EncryptedVector.rotate` steps it holds keys for
        (``numpy.roll`` convention, normalised to ``[1, N/2)``).
    key_id:
        Fingerprint of the public key; ciphertexts carry it.
    """

    __slots__ = ("_ts", "_raw", "params", "rotations", "max_length", "key_id", "_steps",
                 "_max_value", "steps", "_rot_keys", "_seal")

    def __init__(self, tscontext: ts.Context, params: CKKSParams, rotations: tuple[str, ...],
                 max_length: int, key_id: str | None = None, steps: Sequence[int] = ()) -> None:
        if tscontext.is_private():
            raise serial.EncodingError("a PublicContext must not hold a secret key")
        self._ts = tscontext
        self._raw = tscontext.data
        self.params = params
        self.rotations = rotations
        self.max_length = max_length
        self.key_id = key_id or _public_key_id(tscontext)
        self.steps = _check_steps(steps, params.slots)
        self._steps = frozenset(_steps_for(rotations, max_length, params.slots, self.steps))
        self._rot_keys = frozenset(s % params.slots for s in self._steps)
        self._max_value = params.max_abs_value
        self._seal: tuple | None = None

    @property
    def slots(self) -> int:
        """Values per ciphertext (N/2)."""
        return self.params.slots

    @property
    def depth(self) -> int:
        """Multiplicative depth of a fresh ciphertext."""
        return self.params.depth

    def encrypt(self, values: Sequence[float] | np.ndarray) -> EncryptedVector:
        """Encrypt a 1-D real vector of any length (split into N/2-slot ciphertexts).

        Raises
        ------
        EncodingError
            Not 1-D, empty, non-finite, or a value of magnitude at least
            ``params.max_abs_value`` (it would not decrypt correctly).
        """
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise serial.EncodingError(f"CKKS encrypts non-empty 1-D vectors, got shape {x.shape}")
        peak = float(np.max(np.abs(x)))
        if not peak < self._max_value:  # also catches NaN
            raise serial.EncodingError(
                f"CKKS values must be finite with |x| < {self._max_value:g} "
                f"(2^(first prime - scale - 1)); got max |x| = {peak:g}")
        slots, raw = self.params.slots, self._raw
        try:
            chunks = [_Cpp(raw, x[i:i + slots].tolist()) for i in range(0, x.size, slots)]
        except (ValueError, RuntimeError, TypeError) as exc:
            raise translate(exc, "encrypt") from exc
        return EncryptedVector._make(self, chunks, x.size, [self.params.depth] * len(chunks))

    def serialize(self) -> bytes:
        """The context for a server: public key, relinearisation and chosen Galois
        keys. Never the secret key. Format: :mod:`mpc.he.serial`, kind
        ``CKKS_PUBLIC_CONTEXT``, body = TenSEAL's protobuf."""
        body = self._ts.serialize(save_public_key=True, save_secret_key=False,
                                  save_galois_keys=True, save_relin_keys=True)
        return serial.dump(serial.Kind.CKKS_PUBLIC_CONTEXT, self._header(), body)

    def _header(self) -> dict:
        p = self.params
        return {"n": p.poly_modulus_degree, "bits": list(p.coeff_mod_bit_sizes),
                "scale_bits": p.scale_bits, "name": p.name, "rotations": list(self.rotations),
                "max_length": self.max_length, "key_id": self.key_id, "steps": list(self.steps)}

    @classmethod
    def load(cls, data: bytes, n_threads: int | None = None) -> "PublicContext":
        """Load a serialized public context; refuse one outside the 128-bit table
        or one that holds a secret key.

        Raises
        ------
        EncodingError
            Malformed envelope, header or TenSEAL body (the body's protobuf layout is
            checked before TenSEAL parses it; SEAL's own errors are wrapped), a secret
            key, or header parameters / key id that do not match the body.
        IntegrityError
            Digest mismatch (see :mod:`mpc.he.serial`).
        ParameterError
            Header parameters outside the 128-bit security table or unusable by TenSEAL.
        """
        header, body = serial.load(data, serial.Kind.CKKS_PUBLIC_CONTEXT)
        params, rotations, max_length, key_id, steps = _parse_header(header, "CKKS public context")
        tsctx = _load_ts(bytes(body), n_threads, params, "CKKS public context", public=True)
        if tsctx.is_private():
            raise serial.EncodingError("serialized public context holds a secret key; refusing")
        out = cls(tsctx, params, rotations, max_length, steps=steps)
        if out.key_id != key_id:
            raise serial.EncodingError(
                f"CKKS public context: header key id {key_id} does not match its key {out.key_id}")
        return out

    def load_vector(self, data: bytes) -> EncryptedVector:
        """Load an :meth:`EncryptedVector.serialize` output made under this key."""
        return EncryptedVector._load(self, data)

    def _level(self, chunk) -> int:
        """Multiplications left in a TenSEAL CKKSVector (its SEAL chain index)."""
        seal = self._ts.seal_context().data
        data = seal.get_context_data(chunk.ciphertext()[0].parms_id())
        if data is None:
            raise serial.EncodingError("CKKS ciphertext does not belong to this context")
        return int(data.chain_index())

    def _seal_tools(self) -> tuple:
        """(SEAL evaluator, CKKS encoder, Galois keys or None), made once per context."""
        if self._seal is None:
            seal = self._ts.seal_context().data
            try:
                keys = self._ts.galois_keys().data if self._steps else None
            except (ValueError, RuntimeError, TypeError) as exc:
                raise ParameterError("CKKS: this public context lists rotation steps but holds no "
                                     "Galois keys; recreate it with SecretContext.create(steps=...)") from exc
            self._seal = (sealapi.Evaluator(seal), sealapi.CKKSEncoder(seal), keys)
        return self._seal

    def _need_rotation(self, step: int, op: str) -> None:
        """Refuse a ``numpy.roll`` rotation by ``step`` that no Galois key here can make."""
        slots = self.params.slots
        if not rotation_available(-step, slots, self._rot_keys):
            raise ParameterError(
                f"CKKS {op}: no rotation (Galois) key for step {step} (mod {slots} slots: "
                f"{step % slots}); this context has explicit steps {list(self.steps)} and "
                f"rotations={self.rotations} for max_length={self.max_length}. Create the "
                f"SecretContext with steps=({step},) (or include it)")

    def _need_steps(self, steps: list[int], op: str, length: int) -> None:
        if not self._steps.issuperset(steps):
            kind = "matvec" if op == "matvec" else "sum"
            raise ParameterError(
                f"CKKS {op}: missing rotation (Galois) keys; {op} on {length} slots needs "
                f"rotations {kind!r} for max_length >= {length}, this context has rotations="
                f"{self.rotations} for max_length={self.max_length}. Create the SecretContext "
                f"with rotations=({kind!r},) and max_length={length} or more")


def _parse_header(header: dict, what: str) -> tuple[CKKSParams, tuple[str, ...], int, str, tuple[int, ...]]:
    get = serial.header_field
    bits = get(header, "bits", list, what)
    if not all(isinstance(b, int) for b in bits):
        raise serial.EncodingError(f"{what}: bad coefficient-modulus bits")
    name = header.get("name")
    params = CKKSParams(get(header, "n", int, what), tuple(bits),
                        get(header, "scale_bits", int, what),
                        name if isinstance(name, str) else None)
    resolve(params)  # refuse parameters outside the 128-bit table
    rotations = tuple(get(header, "rotations", list, what))
    if not set(rotations) <= set(ROTATIONS):
        raise serial.EncodingError(f"{what}: unknown rotations {rotations}")
    steps = header.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(k, int) and not isinstance(k, bool)
                                              and 0 < k < params.slots for k in steps):
        raise serial.EncodingError(f"{what}: header field 'steps' must list integers in [1, N/2)")
    return (params, rotations, get(header, "max_length", int, what), get(header, "key_id", str, what),
            tuple(steps))


def _load_ts(body: bytes, n_threads: int | None, params: CKKSParams, what: str,
             public: bool = False) -> ts.Context:
    if public:
        check_public_context_body(body, what)
    try:
        tsctx = ts.context_from(body, n_threads)
    except (ValueError, RuntimeError, TypeError) as exc:
        # malformed bytes, whatever TenSEAL/SEAL says about them
        raise serial.EncodingError(f"{what}: TenSEAL/SEAL could not load the body ({exc})") from exc
    n, bits = context_shape(tsctx)
    check_security(n, bits)
    if (n, bits) != (params.poly_modulus_degree, params.coeff_mod_bit_sizes) or \
            tsctx.global_scale != 2.0 ** params.scale_bits:
        raise serial.EncodingError(f"{what}: header parameters do not match the context")
    return tsctx


class SecretContext:
    """The key holder's context: encrypts and decrypts; hands out :meth:`public`.

    Create with :meth:`create`. ``rotations`` chooses the only Galois keys made:
    ``"sum"`` for :meth:`EncryptedVector.sum` and ``dot`` (rotations by 2^k < s),
    ``"matvec"`` for :meth:`EncryptedVector.matvec` (rotations by +-2^k), for
    vectors or ciphertext chunks of up to ``max_length`` slots (default: all N/2).
    ``steps`` adds one key per :meth:`EncryptedVector.rotate` step ``k``
    (``numpy.roll`` convention; a step without its own key is refused unless
    SEAL can compose it from signed powers of two the context holds).
    At N = 8192 each key is about 0.73 MB (``linear``) to 1.39 MB (``quadratic``),
    measured; ask only for what you use.
    """

    __slots__ = ("_ts", "_sk", "_public")

    def __init__(self, private: ts.Context, public: PublicContext) -> None:
        if not private.is_private():
            raise serial.EncodingError("a SecretContext needs a TenSEAL context with a secret key")
        self._ts = private
        self._sk = private.secret_key().data
        self._public = public

    @classmethod
    def create(cls, params: str | CKKSParams = "quadratic", *, rotations: Sequence[str] = (),
               max_length: int | None = None, n_threads: int | None = None,
               steps: Sequence[int] = ()) -> "SecretContext":
        """New keys for a preset name (see :data:`~mpc.he.params.PRESETS`) or
        checked custom :class:`~mpc.he.params.CKKSParams`.

        Raises
        ------
        ParameterError
            Parameters outside the 128-bit table (naming the bound), unknown preset.
        """
        p = resolve(params)
        rotations = tuple(dict.fromkeys(rotations))
        length = p.slots if max_length is None else int(max_length)
        if not 1 <= length:
            raise ParameterError(f"max_length must be positive, got {length}")
        explicit = _check_steps(steps, p.slots)
        seal_steps = _steps_for(rotations, length, p.slots, explicit)
        try:
            private = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=p.poly_modulus_degree,
                                 coeff_mod_bit_sizes=list(p.coeff_mod_bit_sizes),
                                 n_threads=n_threads)
            private.global_scale = 2.0 ** p.scale_bits
            public_ts, key_id = public_context_with_galois(private, seal_steps)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise translate(exc, "create context") from exc
        return cls(private, PublicContext(public_ts, p, rotations, length, key_id, steps=explicit))

    def public(self) -> PublicContext:
        """The evaluation context to give to a server (no secret key)."""
        return self._public

    @property
    def params(self) -> CKKSParams:
        return self._public.params

    def encrypt(self, values: Sequence[float] | np.ndarray) -> EncryptedVector:
        """Encrypt under the public key (same as ``public().encrypt``)."""
        return self._public.encrypt(values)

    def decrypt(self, vector: EncryptedVector) -> np.ndarray:
        """Decrypt to a float64 array of the vector's length."""
        if not isinstance(vector, EncryptedVector):
            raise TypeError(f"can only decrypt an EncryptedVector, not {type(vector).__name__}")
        if vector.context.key_id != self._public.key_id:
            raise serial.EncodingError(
                f"vector was encrypted under key {vector.context.key_id}, this is {self._public.key_id}")
        sk = self._sk
        try:
            parts = [c.decrypt(sk) for c in vector._chunks]
        except (ValueError, RuntimeError, TypeError) as exc:
            raise translate(exc, "decrypt") from exc
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

    def serialize_public(self) -> bytes:
        """The public context, for a server: what ``public().serialize()`` gives
        (public, relinearisation and Galois keys; never the secret key)."""
        return self._public.serialize()

    def serialize_with_secret_key(self) -> bytes:
        """Everything, secret key included: only for other key holders, over an
        authenticated and encrypted channel. Read back with :meth:`load`.

        The body holds two TenSEAL protobufs (the private context without Galois
        keys, then the public one) as length-prefixed parts.
        """
        private = self._ts.serialize(save_public_key=True, save_secret_key=True,
                                     save_galois_keys=False, save_relin_keys=True)
        public = self._public._ts.serialize(save_public_key=True, save_secret_key=False,
                                            save_galois_keys=True, save_relin_keys=True)
        return serial.dump(serial.Kind.CKKS_SECRET_CONTEXT, self._public._header(),
                           [private, public])

    def serialize(self, *args: object, **kwargs: object) -> bytes:
        """Refused: say which one is meant, :meth:`serialize_public` or
        :meth:`serialize_with_secret_key` (a secret context's ``serialize()`` that
        quietly left the key out, or put it in, would surprise one reader or the other)."""
        raise TypeError("SecretContext.serialize() is ambiguous: call serialize_public() for a "
                        "server (no secret key) or serialize_with_secret_key() for another key "
                        "holder")

    @classmethod
    def load(cls, data: bytes, n_threads: int | None = None) -> "SecretContext":
        """Load :meth:`serialize_with_secret_key` output; checks that the
        secret key decrypts what the public key encrypts."""
        what = "CKKS secret context"
        header, body = serial.load(data, serial.Kind.CKKS_SECRET_CONTEXT)
        params, rotations, max_length, key_id, steps = _parse_header(header, what)
        private_b, public_b = serial.split_parts(body, 2, what)
        private = _load_ts(private_b, n_threads, params, what)
        public = PublicContext(_load_ts(public_b, n_threads, params, what), params, rotations,
                               max_length, steps=steps)   # the id is computed from the key itself
        if public.key_id != key_id:
            raise serial.EncodingError(f"{what}: header key id {key_id} does not match its key "
                                       f"{public.key_id}")
        out = cls(private, public)
        probe = out.decrypt(public.encrypt([1.0]))
        if abs(probe[0] - 1.0) > 1e-3:
            raise serial.EncodingError(f"{what}: the secret key does not match the public key")
        return out
