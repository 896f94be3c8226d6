"""The per-batch steps of :func:`ml.vertical.fit_paillier`: residual shares, masked encrypted gradients (layer: ml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mpc.errors import EncodingError, IntegrityError, ParameterError, ProtocolError
from mpc.he.packing import PackedArray, Packing, decrypt_packed, pack_encrypted
from mpc.rand import PRG, derive_seed, random_seed
from mpc.schema import ArraySpec
from mpc.sharing.tensor import SharedTensor

if TYPE_CHECKING:
    from mpc.party import Party

_FRAC = 16                 # fixed-point bits of the plain features in the encrypted products
_RING = 1 << 64            # residual shares and returned gradient entries live in Z_2^64
_OFFSET = 1 << 255         # keeps every masked slot positive: |X^T d_q| < 2^(64+62-f) << 2^255
_MASK_BITS = 296           # slot masks below 2^296: statistical distance < 2^(127-296) = 2^-169
_MASKED = Packing(value_bits=_MASK_BITS + 1, signed=False)   # slot: v + _OFFSET + mask < 2^297


def _residual_share(party: Party, u: np.ndarray, y_ring: np.ndarray | None, activation: str) -> np.ndarray:
    """This party's share in ``Z_2^64`` of ``sigma(z) - y`` (step 1 of :func:`fit_paillier`)."""
    try:
        encoded = party.fixed.encode(u)
    except EncodingError as exc:
        raise ParameterError(f"party {party.id}: the training diverged ({exc}); lower lr") from None
    if activation == "taylor":
        share = encoded
    else:
        share = SharedTensor(party, encoded, party.fixed.frac_bits).clip(0.0, 1.0).share
    return share - y_ring if y_ring is not None else share


def _pair_seeds(party: Party) -> dict[int, bytes]:
    """A fresh 16-byte seed shared with each other party (the smaller id draws it)."""
    seeds: dict[int, Any] = {}
    if party.n < 3:
        return seeds
    for q in party.peers:
        if party.id < q:
            seeds[q] = random_seed()
            party.send(q, "pair-seed", np.frombuffer(seeds[q], dtype=np.uint8))
    for q in party.peers:
        if q < party.id:
            (s,) = party.recv(q, "pair-seed")
            if s.dtype != np.uint8 or s.shape != (16,):
                raise ProtocolError(f"party {party.id}: malformed seed from party {q}")
            seeds[q] = s.tobytes()
    return seeds


def _zero_sum_mask(party: Party, seeds: dict[int, bytes], target: int, step: int,
                   count: int) -> np.ndarray:
    """This decryptor's part of masks that sum to 0 mod 2^64 over all decryptors for ``target``."""
    total = np.zeros(count, dtype=np.uint64)
    for r, seed in seeds.items():
        if r == target:
            continue
        vals = PRG(derive_seed(seed, "vertical-mask", step * party.n + target)).uint64(count)
        total = total + vals if party.id < r else total - vals
    return total


def _gradient(party: Party, keys: Any, pubs: dict, widths: dict, seeds: dict[int, bytes],
              x_int: np.ndarray, share: np.ndarray, step: int) -> np.ndarray:
    """``X_p^T d`` scaled by ``2^(16+f)``, by steps 2-5 of :func:`fit_paillier` (float64)."""
    rows, d = x_int.shape
    enc = keys.public.encrypt(share)                                            # step 2
    party.send_many(party.peers, "residual", np.frombuffer(enc.serialize(), dtype=np.uint8))
    masks = {}
    for q in party.peers:                                                       # step 3
        raw = _recv_one(party, q, "residual")
        theirs = _load_cts(pubs[q], raw, (rows,), f"party {party.id}: residuals of party {q}")
        prod = theirs.__rmatmul__(x_int.T)
        masks[q] = [_OFFSET + r for r in _random_bits(party.prg, d, _MASK_BITS)]
        packed = pack_encrypted(prod, _MASKED, masks[q])
        party.send(q, "masked-gradient", np.frombuffer(packed.serialize(), dtype=np.uint8))
    for p in party.peers:                                                       # step 4
        raw = _recv_one(party, p, "masked-gradient")
        slots = _open_masked(keys, raw, widths[p], f"party {party.id}: gradient of party {p}")
        party.send(p, "unmasked", slots + _zero_sum_mask(party, seeds, p, step, widths[p]))
    total = x_int.T.view(np.uint64) @ share                                     # step 5
    for q in party.peers:
        (back,) = party.recv_checked(q, "unmasked", [ArraySpec(np.uint64, (d,), field="unmasked gradient")])
        total = total + back - np.array([m % _RING for m in masks[q]], dtype=np.uint64)
    return total.view(np.int64).astype(np.float64)


def _recv_one(party: Party, frm: int, name: str) -> np.ndarray:
    """One serialized message (1-D uint8) from ``frm``; else :class:`MalformedPeerData`."""
    return party.recv_checked(frm, name, [ArraySpec(np.uint8, (None,), field="serialized ciphertexts")])[0]


def _load_cts(public: Any, arr: np.ndarray, shape: tuple[int, ...], what: str) -> Any:
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ProtocolError(f"{what}: expected serialized ciphertexts (1-D uint8)")
    try:
        enc = public.load_ciphertexts(arr.tobytes())
    except (IntegrityError, EncodingError) as exc:
        raise ProtocolError(f"{what}: {exc}") from exc
    if enc.shape != shape:
        raise ProtocolError(f"{what}: expected {shape} ciphertexts, got {enc.shape}")
    return enc


def _random_bits(prg: PRG, count: int, bits: int) -> list[int]:
    width = (bits + 7) // 8
    raw = prg.bytes(width * count)
    return [int.from_bytes(raw[k:k + width], "big") >> (8 * width - bits)
            for k in range(0, len(raw), width)]


def _open_masked(keys: Any, raw: np.ndarray, count: int, what: str) -> np.ndarray:
    """Decrypt a peer's packed masked gradient: its ``count`` slots modulo 2^64 (uint64)."""
    try:
        packed = PackedArray.load(keys.public, raw.tobytes())
    except (IntegrityError, EncodingError) as exc:
        raise ProtocolError(f"{what}: {exc}") from exc
    if packed.packing != _MASKED or packed.length != count or packed.weight != 1:
        raise ProtocolError(f"{what}: expected {count} masked values in {_MASKED}, got "
                            f"{packed.length} in {packed.packing} (weight {packed.weight})")
    try:
        slots = decrypt_packed(keys.secret, packed)
    except EncodingError as exc:
        raise ProtocolError(f"{what}: a packed value is out of range (a slot overflowed)") from exc
    return np.array([int(v) % _RING for v in slots], dtype=np.uint64)
