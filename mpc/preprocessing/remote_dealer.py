"""The trusted dealer as a network node, and each party's link to it (layer: mpc core, preprocessing).

:func:`serve_dealer` runs the dealer of a session whose config has a
``[dealer]``; :class:`RemoteDealer` is what a party's
:class:`~mpc.preprocessing.dealer.DealerSource` talks to instead of an
in-process :class:`~mpc.preprocessing.dealer.TrustedDealer`. Messages are wire
frames over the pinned TLS mesh (:mod:`mpc.transport.mesh`).

**Trusted third party**: the dealer knows every triple.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import config as cfgmod
from ..errors import (EncodingError, ParameterError, PeerTimeout, ProtocolAbort, ProtocolError,
                      TransportError)
from ..transport.mesh import Node, connect
from ..transport.tcp import TcpEndpoint
from ..transport.wire import decode_frame, encode_frame
from .base import triple_shapes
from .dealer import TrustedDealer

MAX_DEALER_ELEMENTS = 1 << 28
"""Largest array (elements) the dealer will produce for one request."""
_KINDS = ("mul", "matmul", "trunc", "binary", "dabit")


def session_id(conf: cfgmod.SessionConfig, tag: str = "") -> bytes:
    """8-byte session id: the config's digest (parties, certificates, name) and a run tag."""
    return hashlib.sha256(b"concilium-run\0" + conf.digest() + tag.encode()).digest()[:8]


def nodes_of(conf: cfgmod.SessionConfig) -> dict[int, Node]:
    return {i: Node(i, n.host, n.port, n.der, n.listen) for i, n in conf.nodes().items()}


def node_names(conf: cfgmod.SessionConfig) -> dict[int, str]:
    """How errors name each node: ``party i``, and ``the dealer`` for the dealer's node."""
    names = {i: f"party {i}" for i in range(conf.n)}
    if conf.dealer is not None:
        names[conf.dealer_id] = "the dealer"
    return names


def key_for(cert: str) -> str:
    return str(Path(cert).with_suffix(".key"))


def _request_arrays(kind: str, args: tuple[Any, ...]) -> list[np.ndarray]:
    kind_arr = np.frombuffer(kind.encode("ascii"), np.uint8)
    if kind in ("mul", "matmul"):
        sa, sb = args
        return [kind_arr, np.asarray(sa, np.int64).reshape(-1), np.asarray(sb, np.int64).reshape(-1)]
    if kind == "trunc":
        shape, f = args
        return [kind_arr, np.asarray(shape, np.int64).reshape(-1), np.asarray([f], np.int64)]
    (shape,) = args
    return [kind_arr, np.asarray(shape, np.int64).reshape(-1)]


def _parse_request(arrays: tuple[np.ndarray, ...]) -> tuple[str, tuple[Any, ...]]:
    if not arrays or arrays[0].dtype != np.uint8:
        raise ParameterError("dealer request without a kind")
    kind = bytes(arrays[0]).decode("ascii", "replace")
    if kind not in _KINDS:
        raise ParameterError(f"dealer request of unknown kind {kind!r}")
    want = 3 if kind in ("mul", "matmul", "trunc") else 2
    if len(arrays) != want or any(a.dtype != np.int64 or a.ndim != 1 or a.size > 8 for a in arrays[1:]):
        raise ParameterError(f"malformed dealer request for {kind!r}")
    shapes = [tuple(int(s) for s in a) for a in arrays[1:]]
    for shape in shapes[:2] if kind != "trunc" else shapes[:1]:
        if any(s < 0 for s in shape) or int(np.prod(shape, dtype=object)) > MAX_DEALER_ELEMENTS:
            raise ParameterError(f"dealer request for shape {shape} is negative or above "
                                 f"{MAX_DEALER_ELEMENTS} elements")
    if kind in ("mul", "matmul"):
        result = triple_shapes(kind, shapes[0], shapes[1])   # also refuses incompatible shapes
        if int(np.prod(result, dtype=object)) > MAX_DEALER_ELEMENTS:
            raise ParameterError(f"dealer request for a {kind} product of shape {result}: above "
                                 f"{MAX_DEALER_ELEMENTS} elements")
    if kind == "trunc":
        if len(shapes[1]) != 1:
            raise ParameterError("malformed dealer request for 'trunc': one fractional-bit count")
        f = shapes[1][0]
        if not 0 < f < 64:
            raise ParameterError(f"dealer request with fractional bits {f}")
        return kind, (shapes[0], f)
    return kind, tuple(shapes)


class RemoteDealer:
    """A party's link to the dealer node: what :class:`DealerSource` asks a dealer for.

    **Trusted third party**, as :class:`~mpc.preprocessing.dealer.TrustedDealer` (which
    warns once, where it runs: the ``mpc dealer`` process or ``run_local``'s launcher).
    Only the last party sends requests ((kind, shapes), not logged as party
    traffic); every party logs exactly the dealer messages it would log in
    memory (its 16-byte seed; corrections to the last party), so costs match.
    """

    def __init__(self, endpoint: TcpEndpoint, node: int, n_parties: int, session: bytes,
                 timeout: float) -> None:
        self.endpoint = endpoint
        self.node = node
        self.n = n_parties
        self.session = session
        self.timeout = timeout
        self._seed: bytes | None = None

    def _recv(self, tag: str) -> tuple[np.ndarray, ...]:
        raw = self.endpoint.recv_frame(self.node, self.timeout, repr(tag))
        try:
            frame = decode_frame(raw, session=self.session)
        except EncodingError as exc:
            raise EncodingError(f"party {self.endpoint.id}: bad frame from the dealer (node "
                                f"{self.node}) while waiting for {tag!r}: {exc}") from None
        if frame.tag != tag:
            raise ProtocolError(f"expected {tag!r} from the dealer but received {frame.tag!r}")
        return frame.arrays

    def seed_for(self, party_id: int) -> bytes:
        if self._seed is None:
            (seed,) = self._recv("dealer/seed")
            if seed.dtype != np.uint8 or seed.shape != (16,):
                raise EncodingError("the dealer's seed is not 16 bytes")
            self._seed = bytes(seed)
        return self._seed

    def correction(self, k: int, kind: str, *args: Any) -> tuple[np.ndarray, ...]:
        frame = encode_frame(f"dealer/request#{k}", _request_arrays(kind, args), session=self.session)
        self.endpoint.send_frame(self.node, frame)
        return tuple(np.array(a) for a in self._recv(f"dealer/{kind}#{k}"))


def serve_dealer(config: cfgmod.SessionConfig | str | os.PathLike[str], *, key: str | None = None,
                 session_tag: str = "", master_seed: bytes | None = None) -> int:
    """Run the session's dealer until the last party is done; return the requests served.

    Steps: connect to every party (pinned TLS); send each party its 16-byte
    seed; then answer the last party's requests in order (request ``k`` must
    be the ``k``-th: a replayed or skipped counter is refused, since two
    kinds asked for the same ``k`` would reuse one random stream).
    """
    conf = config if isinstance(config, cfgmod.SessionConfig) else cfgmod.load(config)
    if conf.dealer is None:
        raise ParameterError("the config has no [dealer] section")
    me = conf.dealer_id
    session = session_id(conf, session_tag)
    cert = str(conf.dealer.certificate)
    endpoint = connect(me, nodes_of(conf), cert=cert, key=key or key_for(cert), session=session,
                       timeout=conf.timeout, digest_peers=set(), names=node_names(conf))
    dealer = TrustedDealer(conf.n, master_seed)
    last = conf.n - 1
    served = 0
    try:
        for p in range(conf.n):
            seed = np.frombuffer(dealer.seed_for(p), np.uint8)
            endpoint.send_frame(p, encode_frame("dealer/seed", [seed], session=session))
            if p != last:
                endpoint.say_goodbye(p)
        while True:
            try:
                raw = endpoint.recv_frame(last, conf.timeout, "a request")
            except PeerTimeout:
                # The last party may compute for long between requests, but if another
                # party failed (crashed, aborted, timed out on a frozen peer) the session is over.
                gone = sorted(endpoint.dropped_peers())
                if gone:
                    raise ProtocolAbort(f"dealer: part{'ies' if len(gone) > 1 else 'y'} "
                                        f"{', '.join(map(str, gone))} failed; no more requests "
                                        "will come") from None
                continue
            except TransportError:
                if last in endpoint.finished_peers():
                    break
                raise
            try:
                frame = decode_frame(raw, session=session)
            except EncodingError as exc:
                raise EncodingError(f"dealer: bad frame from party {last} while waiting for "
                                    f"request #{served}: {exc}") from None
            if frame.tag != f"dealer/request#{served}":
                raise ProtocolError(f"dealer expected request #{served}, got {frame.tag!r}")
            kind, args = _parse_request(frame.arrays)
            corr = dealer.correction(served, kind, *args)
            endpoint.send_frame(last, encode_frame(f"dealer/{kind}#{served}", list(corr), session=session))
            served += 1
    except BaseException as exc:
        endpoint.abort(f"dealer: {type(exc).__name__}: {exc}")
        raise
    endpoint.close()
    return served
