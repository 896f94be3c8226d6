"""Oblivious transfer (layer: mpc core): base OT on Ed25519 and IKNP extension.

* :mod:`mpc.ot.base`: Chou-Orlandi "simplest OT", random and chosen-message;
* :mod:`mpc.ot.iknp`: :class:`IKNPSender` / :class:`IKNPReceiver`, random,
  correlated and chosen-message OT extension;
* :mod:`mpc.ot.kkrt`: KKRT16 batched related-key OPRF (1-out-of-N OT extension);
* :mod:`mpc.ot.crhash`: the fixed-key AES hash shared with garbled circuits;
* :mod:`mpc.ot.transpose`: the bit-matrix transpose of OT extension.
"""

from .iknp import IKNPReceiver, IKNPSender

__all__ = ["IKNPReceiver", "IKNPSender"]
