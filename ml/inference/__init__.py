"""Private inference: a model answers without seeing the input (layer: ml).

* :mod:`ml.inference.layers` -- the private-inference form of a model (:class:`~ml.inference.layers.Network`)
  and its plaintext reference;
* :mod:`ml.inference.convert` -- scikit-learn and :mod:`ml.models` models to that form;
* :mod:`ml.inference.secure` -- inference on secret shares (weights and inputs shared);
* :mod:`ml.inference.ckks` -- inference on CKKS-encrypted inputs with plaintext weights;
* :mod:`ml.inference.train` -- square-activation MLPs for CKKS.

Nothing is imported here, so ``import ml.inference.secure`` does not load TenSEAL.
See ``docs/inference.md``.
"""
