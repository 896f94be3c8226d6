"""Fuzzing every decoder that reads a peer's (or a file's) bytes: ``python -m bench fuzz``.

Each decoder gets valid seed inputs; a case is a seed mutated at the byte
level (flips, cuts, insertions, splices, interesting integers) or, for
structured inputs, at the level of their parts (the arrays of a frame, the
header and body of an HE envelope, re-sealed so that the digest passes).
A decoder may accept a case or raise a documented error: any
:class:`~mpc.errors.ConciliumError` (the library's error tree). Anything else
is an *undocumented exception* and a bug in the decoder.

One record per decoder: ``name="fuzz"``, ``params={"decoder": ...}``, fields
``cases``, ``undocumented_exceptions`` (must be 0), ``exceptions`` (count by
type, documented ones included) and ``examples`` (the first few undocumented
ones, for a bug report). Cases per decoder: 10^5 (``CONCILIUM_FUZZ_CASES`` to
change it), 300 with ``--quick``; ``CONCILIUM_FUZZ_DECODERS=wire,psi`` runs only
those.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.common import record
from mpc.errors import ConciliumError
from mpc.transport.wire import DTYPES, WireLimits, decode_frame, encode_frame

SESSION = b"fuzzfuzz"
DEFAULT_CASES = 100_000
QUICK_CASES = 300
_INTERESTING = [0, 1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 2**15, 2**16 - 1,
                2**31 - 1, 2**31, 2**32 - 1, 2**40, 2**63, 2**64 - 1]


@dataclass
class Decoder:
    """A decoder under test: valid seeds and a function that decodes one input."""

    name: str
    seeds: list[Any]
    decode: Callable[[Any], Any]
    mutate: Callable[[np.random.Generator, Any], Any]


# -- mutators --------------------------------------------------------------------------------
def mutate_bytes(rng: np.random.Generator, data: bytes) -> bytes:
    """One to four byte-level mutations of ``data``."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        op = int(rng.integers(0, 7))
        pos = int(rng.integers(0, len(buf) + 1))
        if op == 0 and buf:                       # flip bits
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:                             # random byte
            if buf:
                buf[min(pos, len(buf) - 1)] = int(rng.integers(0, 256))
        elif op == 2:                             # truncate
            del buf[pos:]
        elif op == 3:                             # insert random bytes
            buf[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
        elif op == 4 and buf:                     # delete a run
            del buf[pos:pos + int(rng.integers(1, 9))]
        elif op == 5:                             # an interesting integer, u8/u16/u32/u64
            size = int(rng.choice([1, 2, 4, 8]))
            v = int(rng.choice(_INTERESTING)) % (1 << (8 * size))
            buf[pos:pos + size] = v.to_bytes(size, "little" if rng.integers(0, 2) else "big")
        else:                                     # duplicate a slice
            j = int(rng.integers(0, len(buf) + 1))
            buf[pos:pos] = buf[j:j + int(rng.integers(1, 33))]
    return bytes(buf)


def _random_array(rng: np.random.Generator) -> np.ndarray:
    dt = DTYPES[int(rng.integers(0, len(DTYPES)))]
    ndim = int(rng.integers(0, 4))
    shape = tuple(int(rng.integers(0, 5)) for _ in range(ndim))
    raw = rng.bytes(int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
    return np.frombuffer(raw, dt).reshape(shape).copy()


def mutate_arrays(rng: np.random.Generator, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Structure-aware: change the count, dtypes, shapes or values of a message's arrays."""
    arrs = [np.array(a) for a in arrays]
    for _ in range(int(rng.integers(1, 3))):
        op = int(rng.integers(0, 7))
        k = int(rng.integers(0, len(arrs))) if arrs else 0
        if op == 0 and arrs:
            del arrs[k]
        elif op == 1:
            arrs.insert(k, _random_array(rng) if rng.integers(0, 2) or not arrs else arrs[k % len(arrs)])
        elif op == 2 and arrs:                    # another dtype, same bytes where possible
            dt = DTYPES[int(rng.integers(0, len(DTYPES)))]
            raw = arrs[k].tobytes()
            raw = raw[:len(raw) - len(raw) % dt.itemsize]
            arrs[k] = np.frombuffer(raw, dt).copy()
        elif op == 3 and arrs:                    # another shape
            a = arrs[k].reshape(-1)
            cut = int(rng.integers(0, a.size + 2))
            arrs[k] = a[:cut] if rng.integers(0, 2) else a[:cut].reshape(1, -1)
        elif op == 4 and arrs and arrs[k].size:   # interesting values
            a = arrs[k].reshape(-1).copy()
            v = int(rng.choice(_INTERESTING))
            info = np.iinfo(a.dtype) if a.dtype.kind in "iu" else None
            if info is not None:
                v = max(info.min, min(info.max, v if rng.integers(0, 2) else -v))
            elif a.dtype.kind == "f":
                v = float(rng.choice([np.nan, np.inf, -np.inf, -1.0, 1e300, v]))
            with np.errstate(over="ignore", invalid="ignore"):
                a[int(rng.integers(0, a.size))] = v
            arrs[k] = a.reshape(arrs[k].shape)
        elif op == 5 and arrs:                    # random content, same dtype and shape
            a = arrs[k]
            arrs[k] = np.frombuffer(rng.bytes(a.nbytes), a.dtype).reshape(a.shape).copy()
        else:
            arrs = [_random_array(rng) for _ in range(int(rng.integers(0, 4)))]
    return arrs


def _frame_mutator(rng: np.random.Generator, seed: bytes) -> bytes:
    """Half byte-level, half array-level mutations of a wire frame."""
    if rng.integers(0, 2):
        return mutate_bytes(rng, seed)
    frame = decode_frame(seed, session=SESSION)
    arrs = mutate_arrays(rng, list(frame.arrays))
    return encode_frame(frame.tag, arrs, session=SESSION, round=frame.round)


def _frames(*messages: tuple[str, list[np.ndarray]]) -> list[bytes]:
    return [encode_frame(tag, arrs, session=SESSION, round=3) for tag, arrs in messages]


# -- the decoders ------------------------------------------------------------------------------
class _StubParty:
    """What a message check reads of a party: id, limits, codec, its tags and the round of
    the last message (named by MalformedPeerData), and a scripted receive."""

    def __init__(self, arrays: tuple[np.ndarray, ...] = ()) -> None:
        from mpc.arith.fixed import FixedPoint
        self.id, self.n = 1, 2
        self.limits = WireLimits(max_share_elements=1 << 16)
        self.fixed = FixedPoint(16)
        self._arrays = arrays
        self.last_round = 0

    def tag(self, name: str) -> str:
        return name

    def recv(self, frm: int, name: str, **_: Any) -> tuple[np.ndarray, ...]:
        return self._arrays

    def recv_checked(self, frm: int, name: str, schema: Any, **_: Any) -> tuple[np.ndarray, ...]:
        """The party's own schema check (:meth:`mpc.Party.recv_checked`) over the scripted receive."""
        import mpc
        return mpc.Party.recv_checked(self, frm, name, schema)  # type: ignore[arg-type]

    def phase(self, name: str) -> Any:
        return nullcontext()


def _wire() -> Decoder:
    seeds = _frames(("mul#0", [np.arange(6, dtype=np.uint64).reshape(2, 3)]),
                    ("a/b/c", [np.zeros(0, np.uint8), np.ones((2, 2), np.float64), np.array(True)]),
                    ("t", []))
    return Decoder("wire", seeds, lambda d: decode_frame(d, session=SESSION), mutate_bytes)


def _tcp_records() -> Decoder:
    from mpc.transport import tcp

    ep = tcp.TcpEndpoint.__new__(tcp.TcpEndpoint)   # the record parser only, no sockets
    ep.limits = WireLimits(max_frame_bytes=1 << 16)
    ep.id = 0
    ep.names = {}
    ep._conns = {1: None}   # the session's nodes (an ABORT record may name where a failure began)

    class _C:
        peer = 1
        bye_received = False

        def __init__(self) -> None:
            import queue
            self.frames = queue.SimpleQueue()
            self.head = bytearray(tcp.RECORD.size)
            self.body = None
            self.queued = 0

    def decode(data: bytes) -> None:
        c = _C()
        pos = 0
        while pos + tcp.RECORD.size <= len(data):
            c.head[:] = data[pos:pos + tcp.RECORD.size]
            pos += tcp.RECORD.size
            ep._start_record(c)
            if pos + c.body_len > len(data):
                return                          # waits for more bytes
            c.body[:] = np.frombuffer(data[pos:pos + c.body_len], np.uint8)
            pos += c.body_len
            ep._finish_record(c)
            while not c.frames.empty():
                kind, value = c.frames.get()
                if kind == "frame":
                    decode_frame(value, session=SESSION)

    frame = _frames(("x", [np.arange(3, dtype=np.int32)]))[0]
    seeds = [tcp.RECORD.pack(tcp.DATA, len(frame)) + frame + tcp.RECORD.pack(tcp.BYE, 0),
             tcp.RECORD.pack(tcp.ABORT, 4) + b"oops"]
    return Decoder("tcp_records", seeds, decode, mutate_bytes)


def _share_messages(binary: bool) -> Decoder:
    from mpc.sharing.seeded import read_seed_message

    def decode(data: bytes) -> None:
        arrays = decode_frame(data, session=SESSION).arrays
        read_seed_message(_StubParty(), 0, "share#0", arrays, frac_bits=not binary)

    seed = np.arange(16, dtype=np.uint8)
    tail = [] if binary else [np.array([16], np.uint8)]
    seeds = _frames(("share#0", [seed, np.array([3, 4], np.uint64), *tail]),
                    ("share#0", [seed, np.zeros(0, np.uint64), *tail]))
    return Decoder("binary_share_messages" if binary else "share_messages", seeds, decode,
                   _frame_mutator)


def _secagg() -> list[Decoder]:
    from protocols.secagg import Client, Server, make_config
    from protocols.secagg.rounds import ADVERTISE, SHARE

    config = make_config(5, 4, dropout=0.2)
    values = [np.arange(4, dtype=np.uint64) + u for u in range(5)]
    clients = [Client(u, config, values[u]) for u in range(5)]
    up = {u: ADVERTISE.client_step(c) for u, c in enumerate(clients)}
    down = ADVERTISE.server_step(Server(config), dict(up))

    def server(data: bytes) -> None:
        arrays = decode_frame(data, session=SESSION).arrays
        ADVERTISE.server_step(Server(config), {**{u: up[u] for u in range(4)}, 4: arrays})

    def client(data: bytes) -> None:
        arrays = decode_frame(data, session=SESSION).arrays
        me = Client(0, config, values[0])
        ADVERTISE.client_step(me)
        SHARE.client_step(me, arrays)   # the table checks the schema first, as every driver does

    return [Decoder("secagg_server", _frames(("advertise", list(up[4]))), server, _frame_mutator),
            Decoder("secagg_client", _frames(("keys", list(down[0]))), client, _frame_mutator)]


def _psi() -> Decoder:
    from protocols import psi

    key = psi.generate_key()
    mine = np.array([1, 1, 0, 0, *b"concilium"], np.uint8)   # a header of the fuzz's own
    points = psi.hash_to_group([b"a", b"b", b"c"])

    def decode(data: bytes) -> None:
        arrays = decode_frame(data, session=SESSION).arrays
        psi._reblind_peer(_StubParty(arrays), 0, mine, [b"x"], key, 1, 64, "psi/blinded", "sender")

    return Decoder("psi", _frames(("psi/blinded", [mine, points])), decode, _frame_mutator)


def _envelope_mutator(kind: Any) -> Callable[[np.random.Generator, bytes], bytes]:
    from mpc.he import serial

    def mutate(rng: np.random.Generator, data: bytes) -> bytes:
        if rng.integers(0, 4) == 0:
            return mutate_bytes(rng, data)              # mostly stops at the digest
        header, body = serial.load(data, kind)
        head = json.dumps(header, sort_keys=True).encode()
        if rng.integers(0, 2):
            body = mutate_bytes(rng, bytes(body))
        else:
            head = mutate_bytes(rng, head)
        try:
            header = json.loads(head)
        except (ValueError, UnicodeDecodeError):
            header = {"junk": head.hex()}
        if not isinstance(header, dict):
            header = {"value": header}
        return serial.dump(kind, header, bytes(body))   # re-sealed: the digest passes

    return mutate


def _paillier() -> list[Decoder]:
    from mpc.he import paillier, serial

    pair = paillier.keygen(512, insecure_for_testing=True)
    pk = pair.public
    cts = pk.encrypt(np.array([1, -2, 3]), 0).serialize()
    from mpc.he.packing import Packing
    packed = pk.encrypt_packed(np.array([-128, 127, 3, 9, 1]), Packing(8, 2)).serialize()
    return [Decoder("paillier_packed", [packed], pk.load_packed, _envelope_mutator(_kind_of(packed))),
            Decoder("paillier_public_key", [pk.serialize()],
                    lambda d: paillier.PaillierPublicKey.load(d, insecure_for_testing=True),
                    _envelope_mutator(serial.Kind.PAILLIER_PUBLIC_KEY)),
            Decoder("paillier_ciphertexts", [cts], pk.load_ciphertexts,
                    _envelope_mutator(_kind_of(cts)))]


def _kind_of(data: bytes) -> Any:
    from mpc.he import serial
    return serial.Kind(data[5])


def _ckks() -> Decoder:
    from mpc.he import ckks

    ctx = ckks.SecretContext.create("quadratic")
    public = ctx.public()
    vec = public.encrypt(np.array([1.0, 2.0, 3.0])).serialize()
    return Decoder("ckks_vector", [vec], public.load_vector, _envelope_mutator(_kind_of(vec)))


def _ckks_body_mutator(rng: np.random.Generator, body: bytes) -> bytes:
    """Mutate TenSEAL's protobuf body: a field cut, dropped, duplicated, resized past the
    data (an oversized length), or its bytes mutated; or the whole body truncated."""
    from mpc.he._tenseal import _emit, _parse, _varint

    op = int(rng.integers(0, 6))
    if op == 0:
        return body[:int(rng.integers(0, len(body) + 1))]
    try:
        fields = _parse(body)
        if rng.integers(0, 2):              # descend into one length-delimited field
            nested = [i for i, f in enumerate(fields) if f[1] == 2]
            if nested:
                i = int(rng.choice(nested))
                num, wire, value = fields[i]
                fields[i] = (num, wire, _ckks_body_mutator(rng, bytes(value)))  # type: ignore[arg-type]
                return _emit(fields)
    except ConciliumError:
        return mutate_bytes(rng, body)
    if not fields:
        return mutate_bytes(rng, body)
    i = int(rng.integers(0, len(fields)))
    num, wire, value = fields[i]
    if op == 1:
        del fields[i]
    elif op == 2:
        fields.insert(i, fields[i])
    elif op == 3 and wire == 2:             # a length larger than the bytes that follow
        head, tail = _emit(fields[:i]), _emit(fields[i + 1:])
        claim = len(value) + len(tail) + int(rng.choice([1, 8, 2**16, 2**31, 2**40, 2**62]))  # type: ignore[arg-type]
        return head + _varint(num << 3 | wire) + _varint(claim) + bytes(value) + tail  # type: ignore[arg-type]
    elif wire == 0:
        fields[i] = (num, wire, int(rng.choice(_INTERESTING)))
    elif wire == 2:
        fields[i] = (num, wire, mutate_bytes(rng, bytes(value)))  # type: ignore[arg-type]
    return _emit(fields)


def _ckks_context_mutator(rng: np.random.Generator, data: bytes) -> bytes:
    """A CKKS public context: byte-level on the whole envelope (stopped by the digest),
    a header field replaced, or the TenSEAL body mutated, both re-sealed so they pass."""
    from mpc.he import serial

    kind = serial.Kind.CKKS_PUBLIC_CONTEXT
    op = int(rng.integers(0, 8))
    if op == 0:
        return mutate_bytes(rng, data)
    header, body = serial.load(data, kind)
    header, raw = dict(header), bytes(body)
    if op <= 2:                              # one header field: another value, or removed
        key = str(rng.choice(sorted(header) + ["junk"]))
        choices: list[Any] = [None, True, -1, 0, 1, 2**31, 2**64, 1.5, "x", [], {}, [54, 54], [60, 40, 60],
                              4096, 8192, 16384, 32768, 40, [1], [0], [2048], ["sum"], ["matvec", "sum"]]
        value = choices[int(rng.integers(0, len(choices)))]
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    elif op == 3:                            # the header of another preset, this body
        from mpc.he.params import PRESETS
        p = PRESETS[str(rng.choice(sorted(PRESETS)))]
        header.update(n=p.poly_modulus_degree, bits=list(p.coeff_mod_bit_sizes), scale_bits=p.scale_bits,
                      name=p.name)
    else:
        raw = _ckks_body_mutator(rng, raw)
    return serial.dump(kind, header, raw)


def _ckks_context() -> Decoder:
    """The context a CKKS aggregator's server receives from a client (smallest preset)."""
    from mpc.he import ckks

    seeds = [ckks.SecretContext.create("aggregate").public().serialize(),
             ckks.SecretContext.create("aggregate", steps=(1,)).public().serialize()]
    return Decoder("ckks_context", seeds, ckks.PublicContext.load, _ckks_context_mutator)


def _preprocessing_files(folder: Path) -> Decoder:
    from mpc.preprocessing import store
    from mpc.preprocessing.store import StoredSource

    path = folder / "p.npz"
    two, one = np.arange(2, dtype=np.uint64), np.ones(1, np.uint64)
    src = StoredSource({("mul", (2,), (2,)): [(two, two, two)] * 2, ("trunc", (2,), 16): [(two,) * 3],
                        ("dabit", (2,)): [(one, two)]})
    store.save(src, path, party_id=0)
    seed = path.read_bytes()

    def mutate(rng: np.random.Generator, data: bytes) -> bytes:
        if rng.integers(0, 3) == 0:
            return mutate_bytes(rng, data)
        import io
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        keys = sorted(arrays)
        k = keys[int(rng.integers(0, len(keys)))]
        if k == "manifest":
            arrays[k] = np.frombuffer(mutate_bytes(rng, arrays[k].tobytes()), np.uint8)
        else:
            (arrays[k],) = mutate_arrays(rng, [arrays[k]])[:1] or [np.zeros(0, np.uint8)]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def decode(data: bytes) -> None:
        path.write_bytes(data)
        store.load(path, party_id=0, consume=False)

    return Decoder("preprocessing_files", [seed], decode, mutate)


def _dealer_requests() -> Decoder:
    from mpc.preprocessing.remote_dealer import _parse_request, _request_arrays

    def decode(data: bytes) -> None:
        _parse_request(decode_frame(data, session=SESSION).arrays)

    seeds = _frames(("dealer/request#0", _request_arrays("matmul", ((2, 3), (3, 4)))),
                    ("dealer/request#1", _request_arrays("trunc", ((5,), 16))),
                    ("dealer/request#2", _request_arrays("dabit", ((7,),))))
    return Decoder("dealer_requests", seeds, decode, _frame_mutator)


def _run_results() -> Decoder:
    from mpc.transport.values import decode_value, encode_value

    value = {"x": np.arange(3, dtype=np.int32), "t": (1.5, float("nan"), "s"), 2: [None, True]}

    def decode(data: bytes) -> None:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return                               # not JSON: the launcher refuses it earlier
        decode_value(doc)

    return Decoder("run_results", [json.dumps(encode_value(value)).encode()], decode, mutate_bytes)


def _bristol() -> Decoder:
    from mpc.gc import bristol

    text = (Path(bristol.__file__).parent / "circuits" / "zero_equal.txt").read_text()
    return Decoder("bristol", [text.encode()],
                   lambda d: bristol.parse(d.decode("utf-8", "replace"), "fuzz"), mutate_bytes)


def _config(folder: Path) -> Decoder:
    from mpc import config as cfgmod
    from mpc.transport.tls import new_identity

    for i in (0, 1, "dealer"):
        new_identity(i, folder, overwrite=True)
    text = cfgmod.render([("127.0.0.1:7000", "party0.crt"), ("[::1]:7001", "party1.crt")],
                         dealer_certificate="dealer.crt", name="fuzz")
    path = folder / "session.toml"

    def decode(data: bytes) -> None:
        path.write_bytes(data)
        cfgmod.load(path)

    return Decoder("config", [text.encode()], decode, mutate_bytes)


DECODER_NAMES = ("wire", "tcp_records", "share_messages", "binary_share_messages", "secagg_server",
                 "secagg_client", "psi", "paillier_packed", "paillier_public_key", "paillier_ciphertexts",
                 "ckks_vector", "ckks_context",
                 "preprocessing_files", "bristol", "config", "dealer_requests", "run_results")


def decoders(folder: Path) -> list[Decoder]:
    """Every decoder of peer (or file) bytes, with its seeds; files go to ``folder``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_wire(), _tcp_records(), _share_messages(False), _share_messages(True),
                *_secagg(), _psi(), *_paillier(), _ckks(), _ckks_context(), _preprocessing_files(folder),
                _bristol(), _config(folder), _dealer_requests(), _run_results()]


def run_case(dec: Decoder, data: Any) -> str | None:
    """Decode one input: None if accepted, else the exception's type name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dec.decode(data)
    except ConciliumError as exc:
        return type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a finding
        kind = type(exc)
        return "!" + (kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}")
    return None


def fuzz(dec: Decoder, cases: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    examples: list[str] = []
    undocumented = 0
    t0 = time.perf_counter()
    for i in range(cases):
        base = dec.seeds[i % len(dec.seeds)]
        data = base if i < len(dec.seeds) else dec.mutate(rng, base)
        got = run_case(dec, data)
        if got is None:
            continue
        if got.startswith("!"):
            undocumented += 1
            got = got[1:]
            if len(examples) < 3:
                examples.append(bytes(data).hex()[:16384])   # whole, up to 8 KiB: reproducible
        counts[got] = counts.get(got, 0) + 1
    return record("fuzz", {"decoder": dec.name}, time.perf_counter() - t0,
                  cases=cases, undocumented_exceptions=undocumented,
                  exceptions=dict(sorted(counts.items())), examples=examples)


def bench_fuzz(quick: bool) -> list[dict[str, Any]]:
    """Mutation fuzzing of every decoder of peer or file bytes: cases run and undocumented exceptions.

    CONCILIUM_FUZZ_CASES sets the cases per decoder (default 10^5, --quick 300);
    CONCILIUM_FUZZ_DECODERS=a,b picks decoders.
    """
    cases = QUICK_CASES if quick else int(os.environ.get("CONCILIUM_FUZZ_CASES", DEFAULT_CASES))
    only = [n for n in os.environ.get("CONCILIUM_FUZZ_DECODERS", "").split(",") if n]
    with tempfile.TemporaryDirectory() as folder:
        return [fuzz(dec, cases) for dec in decoders(Path(folder)) if not only or dec.name in only]


BENCHMARKS = {"fuzz": bench_fuzz}

__all__ = ["BENCHMARKS", "DECODER_NAMES", "Decoder", "decoders", "fuzz", "mutate_arrays", "mutate_bytes", "run_case"]
