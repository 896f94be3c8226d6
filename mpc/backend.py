"""Where simulated clients run: this process (``"local"``) or a Ray cluster (``"ray"``) (layer: mpc core).

The simulators (:func:`protocols.secagg.simulate`, the analytics queries,
:func:`ml.federated.train`) take ``backend="local"`` (the default: nothing to
start) or ``backend="ray"`` / :class:`Ray` ``(address=..., cpus=...)``. With
Ray, clients are split into shards, one Ray actor per CPU; each actor builds
its clients (keys, seeds and, when given as a function, data are drawn inside
the actor) and runs their steps; the driver runs the server. Ray is the
optional extra ``ray`` and is imported only here, only when chosen
(:class:`~mpc.optional.MissingExtra` names the extra when it is missing).

A Ray cluster is one trust domain: it simulates, it does not deploy. The object
store holds what the driver sends and receives (the protocol's messages and
the arguments an actor is built with), never a client's private keys.
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .errors import ParameterError
from .optional import require


@dataclass(frozen=True)
class Ray:
    """Run clients on Ray.

    Parameters
    ----------
    address:
        A running cluster to join (``"auto"``, ``"ray://head:10001"``, ...);
        default ``RAY_ADDRESS`` from the environment, else a local Ray started
        by :func:`ray.init`. A Ray session already started in this process is used as is.
    cpus:
        Actors to spread the clients over (one CPU each); default every CPU of
        the cluster. For a local start, also the CPUs Ray is given.
    actors:
        Actors (shards of clients); default one per CPU. More actors than
        CPUs share them (each reserves ``cpus / actors`` of a CPU): smaller
        shards, so a dying worker takes fewer clients with it.
    chunk:
        Clients per task: the driver holds at most one chunk's messages while
        it folds them in, so memory does not grow with the number of clients.
    """

    address: str | None = None
    cpus: int | None = None
    actors: int | None = None
    chunk: int = 256

    def __post_init__(self) -> None:
        if self.cpus is not None and self.cpus < 1:
            raise ParameterError(f"Ray(cpus={self.cpus}): at least one CPU")
        if self.actors is not None and self.actors < 1:
            raise ParameterError(f"Ray(actors={self.actors}): at least one actor")
        if self.chunk < 1:
            raise ParameterError(f"Ray(chunk={self.chunk}): at least one client per task")


def resolve(backend: str | Ray | None) -> Ray | None:
    """``None`` for the local backend, a :class:`Ray` for Ray (``"ray"``: the defaults)."""
    if backend is None or backend == "local":
        return None
    if backend == "ray":
        return Ray()
    if isinstance(backend, Ray):
        return backend
    raise ParameterError(f"unknown backend {backend!r}: use 'local', 'ray' or mpc.backend.Ray(...)")


def ray_module(feature: str) -> Any:
    """The ``ray`` package, or :class:`~mpc.optional.MissingExtra` naming the extra ``ray``."""
    return require("ray", "ray", feature)


def connect(options: Ray, feature: str) -> tuple[Any, int, float]:
    """Start or join Ray; return the module, the number of actors and the CPUs each reserves."""
    ray = ray_module(feature)
    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS") or None
        extra: dict[str, Any] = {} if address else {"num_cpus": options.cpus}
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **extra)
    total = int(ray.cluster_resources().get("CPU", 1))
    cpus = options.cpus or total
    if cpus > total:
        raise ParameterError(f"Ray(cpus={cpus}) asks for more CPUs than the cluster has ({total})")
    actors = options.actors or cpus
    return ray, actors, min(1.0, cpus / actors)


def shards(ids: Sequence[int], parts: int) -> list[list[int]]:
    """Split ``ids`` round-robin into at most ``parts`` non-empty shards."""
    parts = max(1, min(parts, len(ids)))
    return [list(ids[i::parts]) for i in range(parts)]


def chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    """``ids`` in consecutive pieces of at most ``size``."""
    return [list(ids[i:i + size]) for i in range(0, len(ids), size)]


def peak_mb() -> float:
    """This process's peak resident memory in MB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)


class Pool:
    """Ray actors of one class, one per shard; calls whose actor died come back as ``None``.

    A worker that dies (killed, out of memory, its node lost) makes every call
    pending on it, and every later one, return ``None``: the simulators count
    its clients as dropped, as a client that stops answering.
    """

    def __init__(self, ray: Any, cls: type, args: Sequence[tuple], cpus_each: float = 1.0) -> None:
        self._ray = ray
        remote = ray.remote(num_cpus=cpus_each, max_restarts=0, max_task_retries=0)(cls)
        self.actors = [remote.remote(*a) for a in args]
        self.dead: set[int] = set()

    def run(self, calls: Sequence[tuple[int, str, tuple]]) -> Iterator[tuple[int, int, Any]]:
        """Submit ``(actor, method, args)`` calls; yield ``(call, actor, result)`` in call order.

        Every call is submitted at once; results are fetched one at a time and
        released, so this process holds one result at a time (the others wait
        in Ray's object store).
        """
        ray = self._ray
        lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
        refs = [None if a in self.dead else getattr(self.actors[a], method).remote(*args)
                for a, method, args in calls]
        for i, (a, _, _) in enumerate(calls):
            ref, refs[i] = refs[i], None
            result = None
            if ref is not None:
                try:
                    result = ray.get(ref)
                except lost:
                    self.dead.add(a)
            yield i, a, result

    def close(self) -> None:
        """End the actors (their clients' secrets go with them)."""
        for actor in self.actors:
            self._ray.kill(actor)


__all__ = ["Pool", "Ray", "chunks", "connect", "peak_mb", "ray_module", "resolve", "shards"]
