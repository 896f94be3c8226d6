"""Training neural networks on secret shares (layer: ml).

* :mod:`ml.training.autograd` -- reverse-mode autograd: a tape of secure operations and their backward rules;
* :mod:`ml.training.nn` -- Linear, ReLU, Sigmoid, Sequential, SGD with momentum, on shares;
* :mod:`ml.training.plan` -- fixed-point planning: the public bounds of a whole training run, checked up front;
* :mod:`ml.training.secure` -- party code and an in-process runner for data split by rows, by columns or outsourced;
* :mod:`ml.training.reference` -- the same training in float64, from the same start and schedule.

See ``docs/training.md``.
"""
