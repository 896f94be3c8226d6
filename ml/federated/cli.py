"""``mpc fl server`` and ``mpc fl client``: federated roles as processes, from the command line (layer: ml).

::

    mpc fl server --config fl.toml --test test.npz [--history run.json]
    mpc fl client --config fl.toml --id 3 --data hospital3.npz

Data files are ``.npz`` with arrays ``X`` and ``y``. The model is the
config's ``[model]`` table: ``kind = "logistic"`` (``features``, ``l2``),
``"softmax"`` (``features``, ``classes``, ``l2``) or ``"mlp"`` (``features``,
``classes``, ``hidden``, ``l2``, ``seed``). Other frameworks use the Python
API (:func:`ml.federated.serve`, :func:`ml.federated.run_client`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import numpy as np

from mpc.errors import ConciliumError, ParameterError

from ..clients.numpy_model import NumpyClient
from ..models import MLP, LogisticRegression, Model, SoftmaxRegression


def build_model(spec: dict[str, Any]) -> Model:
    """The built-in model the config's ``[model]`` table names."""
    kind = spec.get("kind", "logistic")
    try:
        if kind == "logistic":
            return LogisticRegression(int(spec["features"]), l2=float(spec.get("l2", 0.0)))
        if kind == "softmax":
            return SoftmaxRegression(int(spec["features"]), int(spec["classes"]),
                                     l2=float(spec.get("l2", 0.0)))
        if kind == "mlp":
            return MLP(int(spec["features"]), int(spec["classes"]),
                       hidden=tuple(spec.get("hidden", (32,))), l2=float(spec.get("l2", 0.0)),
                       seed=int(spec.get("seed", 0)))
    except KeyError as exc:
        raise ParameterError(f"config [model]: kind {kind!r} needs {exc.args[0]!r}") from None
    raise ParameterError(f"config [model]: unknown kind {kind!r}; use logistic, softmax or mlp")


def load_data(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` from an ``.npz`` file (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return np.asarray(f["X"], dtype=np.float64), np.asarray(f["y"])
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read data file {path}: {exc}") from None
    except KeyError:
        raise ParameterError(f"data file {path} needs arrays 'X' and 'y'") from None


class _NoEvaluation(NumpyClient):
    """The server's model without a held-out set: weights only, no score."""

    def evaluate(self, config: dict) -> tuple[float, int, dict[str, float]]:
        return float("nan"), 0, {"accuracy": float("nan")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpc fl", description="federated learning across processes "
                                "and machines (pinned TLS 1.3)")
    sub = p.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server", help="run the federated server")
    server.add_argument("--config", required=True, help="the run's TOML config")
    server.add_argument("--key", help="the server's private key (default: beside its certificate)")
    server.add_argument("--test", metavar="FILE.npz", help="held-out X, y the server scores rounds on")
    server.add_argument("--history", metavar="FILE.json", help="write the per-round history here")
    server.add_argument("--quiet", action="store_true", help="print only the final line")
    client = sub.add_parser("client", help="run one federated client")
    client.add_argument("--config", required=True, help="the run's TOML config")
    client.add_argument("--id", type=int, required=True, help="this client's id in the config")
    client.add_argument("--data", required=True, metavar="FILE.npz", help="this client's X, y")
    client.add_argument("--key", help="this client's private key (default: beside its certificate)")
    client.add_argument("--certificate", help="present this certificate (default: the config's)")
    client.add_argument("--fault", help=argparse.SUPPRESS)  # ROUND:STEP:kill|stall, tests only
    return p


def _server(ns: argparse.Namespace) -> int:
    from . import network
    from .server import serve

    config = network.load(ns.config)
    model = build_model(config.model)
    evaluator = NumpyClient(model, load_data(ns.test)) if ns.test else \
        _NoEvaluation(model, (np.zeros((0, 1)), np.zeros(0)))
    log = None if ns.quiet else (lambda text: print(text, flush=True))
    result = serve(config, evaluator, key=ns.key, log=log)
    for reason in result.refused:
        print(f"server: refused a connection: {reason}", file=sys.stderr)
    if ns.history:
        result.history.save_json(ns.history)
    print(f"final accuracy: {result.history.final_accuracy:.4f}")
    return 0


def _client(ns: argparse.Namespace) -> int:
    from . import network
    from .client import run_client

    config = network.load(ns.config)
    client = NumpyClient(build_model(config.model), load_data(ns.data))
    fault = None
    if ns.fault:
        r, step, action = ns.fault.split(":")
        fault = (int(r), step, action)
    report = run_client(config, ns.id, client, key=ns.key, certificate=ns.certificate, fault=fault)
    print(f"client {ns.id}: fitted rounds {report.fitted}, finished {report.finished}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        return _server(ns) if ns.role == "server" else _client(ns)
    except ConciliumError as exc:
        who = "server" if ns.role == "server" else f"client {ns.id}"
        print(f"mpc fl {who}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["build_model", "load_data", "main", "parser"]
