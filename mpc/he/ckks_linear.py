"""Plain linear maps of a CKKS slot vector by the diagonal method, baby-step giant-step (layer: mpc core).

:class:`Diagonals` holds the map (its nonzero diagonals, the baby step, an
optional fold or window sum) and caches its encoded plaintexts per level;
:func:`evaluate_diagonals` runs it on one SEAL ciphertext. Users call
:meth:`mpc.he.EncryptedVector.linear_transform`, which checks keys and depth
first and wraps the result back into TenSEAL.

References: Halevi, Shoup, "Algorithms in HElib", CRYPTO 2014 (diagonal
method); Halevi, Shoup, "Faster homomorphic linear transformations in
HElib", CRYPTO 2018 (baby-step giant-step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import tenseal.sealapi as sealapi

from ..errors import ParameterError

if TYPE_CHECKING:
    from .ckks import PublicContext

__all__ = ["Diagonals", "evaluate_diagonals"]


class Diagonals:
    """A plain linear map on the slot vector, ``y = sum_i d_i * roll(x, -i)``, for
    :meth:`EncryptedVector.linear_transform` (Halevi-Shoup diagonal method).

    ``diagonals`` maps a shift ``i`` in ``[0, slots)`` to a length-``slots``
    vector ``d_i``; all-zero ones are dropped. Evaluated baby-step giant-step
    (Halevi-Shoup 2018): ``i = g*b + t``, ``y = sum_g roll(sum_t roll(d_i, g*b) *
    roll(x, -t), -g*b)``, so one rotation per distinct nonzero ``t`` and ``g``
    (``b - 1`` and ``ceil(span / b) - 1`` for consecutive shifts) instead of
    one per diagonal; ``baby=None`` picks the ``b`` that rotates least.
    ``fold``: then add the ``slots / fold`` blocks of ``fold`` slots
    (``y += roll(y, -fold * 2^k)``, ``log2(slots / fold)`` rotations), every
    block ending up with the sum. ``window``: then add to each slot the
    ``window - 1`` slots after it (``y += roll(y, -2^k)``, ``log2(window)``
    rotations), e.g. the sum of a block of up to ``window`` values into its
    first slot. The plaintexts are encoded once per
    ciphertext level and kept here (reuse the object for every input:
    encoding costs more than the product).
    """

    __slots__ = ("slots", "baby", "fold", "window", "_terms", "_encoded")

    def __init__(self, diagonals: Mapping[int, np.ndarray], slots: int, baby: int | None = None,
                 fold: int = 0, window: int = 0) -> None:
        kept = {}
        for i, d in diagonals.items():
            d = np.asarray(d, dtype=np.float64)
            if isinstance(i, bool) or not 0 <= int(i) < slots or d.shape != (slots,):
                raise ParameterError(f"diagonal {i!r}: need a shift in [0, {slots}) and {slots} values, "
                                     f"got shape {d.shape}")
            if not np.all(np.isfinite(d)):
                raise ParameterError(f"diagonal {i}: NaN or infinite values")
            if np.any(d):
                kept[int(i)] = d
        if not kept:
            raise ParameterError("a linear transform needs at least one nonzero diagonal")
        if fold and (fold < 1 or slots % fold or (slots // fold) & (slots // fold - 1)):
            raise ParameterError(f"fold {fold} must divide the {slots} slots into a power of two of blocks")
        if window and (window < 1 or window > slots or window & (window - 1)):
            raise ParameterError(f"window {window} must be a power of two of at most {slots} slots")
        shifts = np.array(sorted(kept))
        span = int(shifts[-1]) + 1
        if baby is None:
            cost = [np.unique(shifts % b[0]).size + np.unique(shifts // b[0]).size for b in
                    np.arange(1, span + 1)[:, None]]
            b = int(np.argmin(cost)) + 1
        else:
            b = int(baby)
        if not 1 <= b <= span:
            raise ParameterError(f"baby step {baby} must be in [1, {span}]")
        terms: dict[tuple[int, int], np.ndarray] = {}
        for i, d in kept.items():
            g, t = divmod(i, b)
            terms[(g, t)] = np.roll(d, g * b)
        self.slots, self.baby, self.fold, self.window, self._terms = slots, b, int(fold), int(window), terms
        self._encoded: dict[tuple, dict] = {}

    def _folds(self) -> list[int]:
        """Left rotations of the fold, then of the window sum (each ``y += roll(y, -r)``)."""
        out = [self.fold << k for k in range((self.slots // self.fold).bit_length() - 1)] if self.fold else []
        return out + [1 << k for k in range(max(self.window, 1).bit_length() - 1)]

    @property
    def steps(self) -> list[int]:
        """The :meth:`EncryptedVector.rotate` steps (``numpy.roll`` convention) it needs keys for."""
        b = self.baby
        need = {-t for _, t in self._terms if t} | {-g * b for g, _ in self._terms if g}
        return sorted({k % self.slots for k in need | {-f for f in self._folds()}})

    @property
    def rotations(self) -> int:
        """Rotations per evaluation."""
        return (len({t for _, t in self._terms if t}) + len({g for g, _ in self._terms if g})
                + len(self._folds()))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The same map on a plain slot vector, in float64 (the evaluation order undone)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.zeros(self.slots)
        for (g, t), pt in self._terms.items():
            y += np.roll(pt * np.roll(x, -t), -g * self.baby)
        for f in self._folds():
            y = y + np.roll(y, -f)
        return y

    def prepare(self, context: "PublicContext", depth: int) -> None:
        """Encode the plaintexts now for ciphertexts with ``depth`` levels left (else on first use)."""
        if not 1 <= depth <= context.params.depth:
            raise ParameterError(f"depth {depth} outside [1, {context.params.depth}]")
        if self.slots != context.slots:
            raise ParameterError(f"diagonals of {self.slots} slots, the context has {context.slots}")
        data = context._ts.seal_context().data.first_context_data()
        while data.chain_index() > depth:
            data = data.next_context_data()
        self._plaintexts(context._seal_tools()[1], data.parms_id(), context._ts.global_scale)

    def _plaintexts(self, encoder, parms_id, scale: float) -> dict:
        key = (tuple(parms_id), scale)
        if key not in self._encoded:
            out = {}
            for gt, d in self._terms.items():
                pt = sealapi.Plaintext()
                encoder.encode(d.tolist(), parms_id, scale, pt)
                out[gt] = pt
            self._encoded[key] = out
        return self._encoded[key]


def evaluate_diagonals(diagonals: Diagonals, x, evaluator, encoder, keys, scale: float):
    """``sum_i d_i * roll(x, -i)`` (then the fold / window sum) on a SEAL ciphertext ``x``.

    Steps: (1) baby rotations ``x_t = roll(x, -t)``; (2) per giant step ``g``,
    ``acc_g = sum_t roll(d_{gb+t}, gb) * x_t``, one rescale, then
    ``roll(acc_g, -gb)``; (3) the sum over ``g``; (4) ``y += roll(y, -r)`` for
    each fold / window rotation ``r``. Keys and depth are the caller's checks.
    """
    b = diagonals.baby
    plains = diagonals._plaintexts(encoder, x.parms_id(), scale)
    baby = {0: x}
    for t in sorted({t for _, t in plains if t}):
        r = sealapi.Ciphertext()
        evaluator.rotate_vector(x, t, keys, r)
        baby[t] = r
    total = None
    for g in sorted({g for g, _ in plains}):
        acc = None
        for (gg, t), pt in plains.items():
            if gg != g:
                continue
            term = sealapi.Ciphertext()
            evaluator.multiply_plain(baby[t], pt, term)
            if acc is None:
                acc = term
            else:
                evaluator.add_inplace(acc, term)
        assert acc is not None  # every giant step has at least one diagonal
        evaluator.rescale_to_next_inplace(acc)
        acc.scale = scale  # as TenSEAL does after every rescale
        if g:
            evaluator.rotate_vector_inplace(acc, g * b, keys)
        if total is None:
            total = acc
        else:
            evaluator.add_inplace(total, acc)
    for f in diagonals._folds():
        r = sealapi.Ciphertext()
        evaluator.rotate_vector(total, f, keys, r)
        evaluator.add_inplace(total, r)
    return total
