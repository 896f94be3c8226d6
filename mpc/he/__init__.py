"""Homomorphic encryption (layer: mpc core): CKKS on TenSEAL, Paillier on gmpy2.

* :mod:`mpc.he.ckks` - approximate arithmetic on encrypted real vectors:
  :class:`SecretContext` (key holder), :class:`PublicContext` (evaluator),
  :class:`EncryptedVector`; parameters in :mod:`mpc.he.params`.
* :mod:`mpc.he.serial` - the documented byte format of keys, contexts and ciphertexts.

Nothing is created at import time; every key lives in an explicit object.
"""

from . import ckks, params, serial
from ._tenseal import DepthError
from .ckks import EncryptedVector, PublicContext, SecretContext
from .params import MAX_COEFF_MODULUS_BITS, PRESETS, CKKSParams, check_security

__all__ = [
    "CKKSParams", "DepthError", "EncryptedVector", "MAX_COEFF_MODULUS_BITS", "PRESETS",
    "PublicContext", "SecretContext", "check_security", "ckks", "params", "serial",
]
