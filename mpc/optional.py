"""Optional packages behind extras, imported only when a feature needs them (layer: mpc core).

A plain ``pip install concilium`` gives every documented API; the few features that
need a package outside the base install (a progress bar, a plot) import it through
:func:`require`, which names the extra to install when it is missing.

========  ==============  ==================================
extra     package         used by
========  ==============  ==================================
progress  tqdm            ``ml.federated.train(progress=True)`` (else a plain line)
plot      matplotlib      ``ml.federated.History.plot``
sklearn   scikit-learn    ``ml.clients.SklearnClient``
torch     torch           ``ml.clients.TorchClient``
onnx      onnx            ``ml.inference.from_onnx`` (onnxruntime: tests, example)
ray       ray             ``backend="ray"`` of the simulators (:mod:`mpc.backend`)
========  ==============  ==================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConciliumError


class MissingExtra(ConciliumError, ModuleNotFoundError):
    """A feature needs a package that the base install leaves out; the message names the extra."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtra` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.partition(".")[0]
        raise MissingExtra(f"{feature} needs the package {top!r}, which the base install leaves "
                           f"out: pip install 'concilium[{extra}]'", name=top) from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported (it is imported if so)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


__all__ = ["MissingExtra", "available", "require"]
