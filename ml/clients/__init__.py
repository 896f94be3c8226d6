"""Federated clients of any framework behind one numpy interface (layer: ml).

:class:`Client` (``get_weights``, ``set_weights``, ``fit``, ``evaluate``) is
what :func:`ml.federated.train` drives. Adapters: :class:`NumpyClient` (the
built-in models), :class:`SklearnClient` (scikit-learn; ``pip install
'concilium[sklearn]'``) and :class:`TorchClient` (PyTorch; ``pip install
'concilium[torch]'``); scikit-learn and PyTorch are imported only when an
adapter of theirs is built.
"""

from .base import Client, ClientFactory, Config, Weights, flatten, unflatten
from .numpy_model import NumpyClient
from .pytorch import TorchClient
from .scikit import SklearnClient

__all__ = ["Client", "ClientFactory", "Config", "NumpyClient", "SklearnClient", "TorchClient", "Weights",
           "flatten", "unflatten"]
