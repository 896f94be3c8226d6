"""Homomorphic encryption (layer: mpc core): CKKS on TenSEAL, Paillier on gmpy2.

* :mod:`mpc.he.ckks` - approximate arithmetic on encrypted real vectors:
  :class:`SecretContext` (key holder), :class:`PublicContext` (evaluator),
  :class:`EncryptedVector`; parameters in :mod:`mpc.he.params`.
* :mod:`mpc.he.paillier` - exact additive encryption of integers and fixed-point
  reals: :func:`paillier_keygen` / :class:`PaillierKeypair`, :class:`EncryptedArray`
  (:mod:`mpc.he.paillier_array`);
  several values per ciphertext in :mod:`mpc.he.packing` (:class:`Packing`,
  :class:`PackedArray`).
* :mod:`mpc.he.serial` - the documented byte format of keys, contexts and ciphertexts.

Nothing is created at import time; every key lives in an explicit object.
"""

from . import ckks, packing, paillier, paillier_array, params, serial
from ._tenseal import DepthError
from .ckks import EncryptedVector, PublicContext, SecretContext
from .packing import PackedArray, Packing
from .paillier import PaillierKeypair, PaillierPublicKey, PaillierSecretKey
from .paillier_array import EncryptedArray
from .paillier import keygen as paillier_keygen
from .params import MAX_COEFF_MODULUS_BITS, PRESETS, CKKSParams, check_security

__all__ = [
    "CKKSParams", "DepthError", "EncryptedArray", "EncryptedVector", "MAX_COEFF_MODULUS_BITS",
    "PRESETS", "PackedArray", "Packing", "PaillierKeypair", "PaillierPublicKey",
    "PaillierSecretKey", "PublicContext", "SecretContext", "check_security", "ckks", "packing",
    "paillier", "paillier_array", "paillier_keygen", "params", "serial",
]
