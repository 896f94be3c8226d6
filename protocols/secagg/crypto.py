"""SecAgg primitives: X25519 keys, key derivation, share encryption, mask expansion (layer: protocols).

Pure functions and small objects with no I/O:

* X25519 key pairs and agreement through PyNaCl's bindings (RFC 7748); an
  agreement that yields the all-zero point (a low-order public key) is refused;
* key derivation with SHA-256 / SHAKE-128 over a domain label, the session id,
  the ordered pair of client ids and the DH output: full 128-bit mask seeds and
  256-bit encryption keys (never folded to 32 bits);
* ChaCha20-Poly1305 for the Shamir shares sent from client to client through
  the server, with the sender and recipient bound in the nonce and the
  associated data;
* :class:`MaskExpander`: expands a 16-byte seed into a mask of d ring elements.
  The mask is exactly the stream of :class:`mpc.rand.PRG` ``(seed, nonce)``
  (AES-128-CTR, ``tests/protocols/secagg/test_secagg_crypto.py`` pins the equality) written into
  one reused buffer, so the server's hot loop neither allocates nor copies.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import CryptoError

from mpc.errors import IntegrityError, ParameterError
from mpc.rand import SEED_BYTES, random_seed

KEY_BYTES = 32
"""X25519 secret and public key length."""
TAG_BYTES = 16
"""Poly1305 tag length."""


class KeyPair:
    """An X25519 key pair: 32-byte secret scalar and its public point."""

    __slots__ = ("secret", "public")

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = random_seed(KEY_BYTES) if secret is None else bytes(secret)
        if len(self.secret) != KEY_BYTES:
            raise ParameterError(f"an X25519 secret key has {KEY_BYTES} bytes, got {len(self.secret)}")
        self.public = public_key(self.secret)


def public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (RFC 7748 clamping applies)."""
    return crypto_scalarmult_base(bytes(secret))


def agree(secret: bytes, peer_public: bytes) -> bytes:
    """X25519 shared secret; :class:`IntegrityError` for a low-order peer key."""
    try:
        return crypto_scalarmult(bytes(secret), bytes(peer_public))
    except (CryptoError, RuntimeError, TypeError, ValueError):
        raise IntegrityError("key agreement failed (invalid or low-order public key)") from None


_CHECK_SCALAR = hashlib.sha256(b"concilium/secagg/key-check").digest()


_FIELD_PRIME = 2**255 - 19


def valid_public_key(pk: bytes) -> bool:
    """True if ``pk`` is 32 bytes in canonical form (top bit clear, u below 2^255 - 19) and
    not a low-order point (agreement gives non-zero). X25519 ignores the top bit: without the
    canonical check one key has two byte strings, which duplicate checks would miss."""
    if len(pk) != KEY_BYTES or int.from_bytes(pk, "little") >= _FIELD_PRIME:
        return False
    try:
        crypto_scalarmult(_CHECK_SCALAR, bytes(pk))
    except (CryptoError, RuntimeError, TypeError, ValueError):
        return False
    return True


def _pair(u: int, v: int) -> bytes:
    return struct.pack("<II", min(u, v), max(u, v))


def mask_seed(shared: bytes, session: bytes, u: int, v: int) -> bytes:
    """128-bit seed of the pairwise mask of clients u and v (symmetric in u, v)."""
    h = hashlib.shake_128(b"concilium/secagg/mask\x00" + session + _pair(u, v) + shared)
    return h.digest(SEED_BYTES)


def encryption_key(shared: bytes, session: bytes, u: int, v: int) -> bytes:
    """256-bit ChaCha20-Poly1305 key for the shares exchanged by u and v."""
    return hashlib.sha256(b"concilium/secagg/enc\x00" + session + _pair(u, v) + shared).digest()


def _nonce(sender: int, recipient: int) -> bytes:
    return struct.pack("<IIi", sender, recipient, 0)


def encrypt_share(key: bytes, session: bytes, sender: int, recipient: int,
                  payload: bytes) -> bytes:
    """Encrypt ``payload`` from ``sender`` to ``recipient`` (each key is used once per direction)."""
    aad = b"concilium/secagg/share\x00" + session
    return ChaCha20Poly1305(key).encrypt(_nonce(sender, recipient), payload, aad)


def decrypt_share(key: bytes, session: bytes, sender: int, recipient: int,
                  ciphertext: bytes) -> bytes:
    """Decrypt and authenticate; :class:`IntegrityError` on any failure (deliberately opaque)."""
    aad = b"concilium/secagg/share\x00" + session
    try:
        return ChaCha20Poly1305(key).decrypt(_nonce(sender, recipient), bytes(ciphertext), aad)
    except (InvalidTag, ValueError):
        raise IntegrityError("share ciphertext failed authentication") from None


class MaskExpander:
    """Expand 16-byte seeds into masks of ``d`` elements of ``dtype`` (uint32 or uint64).

    ``expand(seed, nonce)`` returns the first ``d * itemsize`` bytes of
    ``mpc.rand.PRG(seed, nonce)`` viewed as ``dtype``: uniform over Z_2^32 or
    Z_2^64, hence over Z_2^k after reduction for any k up to the word size.
    The returned view is overwritten by the next call. Not thread-safe: one
    expander per thread.
    """

    def __init__(self, d: int, dtype: np.dtype | type) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.uint32), np.dtype(np.uint64)):
            raise ParameterError(f"masks are uint32 or uint64, not {self.dtype}")
        if d < 1:
            raise ParameterError(f"mask length must be positive, got {d}")
        self.d = int(d)
        self.nbytes = self.d * self.dtype.itemsize
        self._zeros = bytes(self.nbytes)
        self._buf = np.empty(self.nbytes + 16, dtype=np.uint8)  # update_into needs 15 spare bytes
        self._out = memoryview(self._buf)  # type: ignore[arg-type]  # numpy stubs: ndarray is a buffer
        self._view = self._buf[:self.nbytes].view(self.dtype)

    def expand(self, seed: bytes, nonce: int = 0) -> np.ndarray:
        """The mask for ``seed``: a view into the reused buffer."""
        if len(seed) != SEED_BYTES:
            raise ParameterError(f"mask seeds have {SEED_BYTES} bytes")
        iv = struct.pack(">QQ", nonce, 0)  # the IV of mpc.rand.PRG(seed, nonce)
        enc = Cipher(algorithms.AES(bytes(seed)), modes.CTR(iv)).encryptor()
        enc.update_into(self._zeros, self._out)
        return self._view

    def add(self, acc: np.ndarray, seed: bytes, sign: int = 1, nonce: int = 0) -> None:
        """``acc += sign * mask(seed)`` in place, wrapping modulo the word size."""
        mask = self.expand(seed, nonce)
        if sign >= 0:
            np.add(acc, mask, out=acc)
        else:
            np.subtract(acc, mask, out=acc)
