"""Yao's two-party protocol: garbler, evaluator, evaluator's inputs by OT (layer: mpc core).

:func:`run_yao` is party code for two parties computing a Boolean circuit on a
batch of ``B`` instances: the garbler supplies some input groups of the
circuit, the evaluator the others, and the output goes to the evaluator, the
garbler or both. Integers become wire bits with :func:`int_to_bits` (least
significant bit first, the Bristol order) and back with :func:`bits_to_int`.

Protocol (Yao 1986; semi-honest)
--------
1. Evaluator -> garbler: its batch size ``B`` (public), then the IKNP matrix
   of ``B n_E`` correlated OTs whose choice bits are its input bits.
2. Garbler: draws ``Delta`` (lsb 1) and zero-labels for its own input wires;
   the correlated OTs with offset ``Delta`` give the zero-labels of the
   evaluator's wires (the evaluator receives exactly its active labels).
   It garbles the batch in chunks (half-gates, :mod:`mpc.gc.garble`) and sends
   per chunk: its own active input labels, the garbled tables and, if the
   evaluator gets the output, the output decoding bits.
3. Evaluator: evaluates each chunk; decodes (output to the evaluator or both)
   and, if the garbler gets the output, sends it back: the decoded bits
   (``output="both"``) or the output labels' permute bits (``"garbler"``: the
   evaluator learns nothing).

Security
--------
Semi-honest garbler and evaluator (no malicious security: a malicious garbler
could garble another circuit). The evaluator sees uniformly random labels,
tables and decoding bits, whatever the garbler's input (a statistical test
checks it); the garbler sees only the OT messages, uniform whatever the
evaluator's input (:mod:`mpc.ot.iknp`). Each party learns the output it
receives and what follows from it, nothing else. The circuit and ``B`` are public.

Cost
----
IKNP setup once per pair (128 base OTs, 2 messages, ``32 + 4096`` bytes) if
no ``ot`` object is passed. Then, for ``B`` instances with ``n_G`` garbler
and ``n_E`` evaluator input bits, ``A`` AND gates and ``n_out`` outputs:
evaluator -> garbler ``16 B n_E + 40`` bytes (the batch size and the
circuit's SHA-256 fingerprint, which the garbler compares; the OTs run in
blocks of at most ``OT_BLOCK`` = 2^22, each rounded up to a multiple of 8)
(+ ``B n_out`` result bytes);
garbler -> evaluator ``16 B n_E`` (OT) ``+ 16 B n_G`` (labels) ``+ 32 B A``
(tables) ``+ B n_out`` (decoding) bytes. Rounds: 2 (3 when the garbler gets
the output) and 2 more per further block when the evaluator has inputs
(batches of over 2^22 / (n_G + n_E) instances); the OT setup adds 2 (its
first message travels with the batch size).

References
----------
A. C. Yao, "How to Generate and Exchange Secrets", FOCS 1986; Y. Lindell,
B. Pinkas, "A Proof of Security of Yao's Protocol for Two-Party
Computation", J. Cryptology 2009.
"""

from __future__ import annotations

import enum
from typing import Sequence

import numpy as np

from ..errors import EncodingError, ParameterError, ProtocolError
from ..ot.base import recv_arrays
from ..ot.crhash import FixedKeyHash
from ..ot.iknp import IKNPReceiver, IKNPSender
from ..party import Party
from . import garble as gb
from .circuit import Circuit

CHUNK_WIRE_INSTANCES = 1 << 21
"""Wire labels held at once (32 MiB): the batch is garbled in chunks of this many
wire-instances. Measured (``python -m bench gc``, AES-128 and 32-bit comparisons):
2^21 garbles and evaluates 10-30% more ANDs per CPU second than 2^22 (the labels
of a layer stay nearer the CPU caches) and than 2^20 (more numpy calls per AND)."""
OT_BLOCK = 1 << 22
"""Input labels per block of chunks, so evaluator-input OTs per OT call (IKNP refuses more
than 2^26 at once) and label memory are bounded."""

OUTPUTS = ("both", "evaluator", "garbler")


class Role(enum.IntEnum):
    """A party's role in Yao's protocol."""

    GARBLER = 0
    EVALUATOR = 1


def int_to_bits(values: Sequence[int] | np.ndarray | int, width: int, signed: bool = False) -> np.ndarray:
    """Integers -> ``uint8[B, width]`` bits, least significant first (two's complement if signed).

    Values that do not fit in ``width`` bits are refused with :class:`ParameterError`.
    """
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
        raise ParameterError(f"width must be a positive integer, got {width!r}")
    if isinstance(values, np.ndarray):
        arr = values.reshape(-1)
    else:  # Python ints: never let numpy turn a list of large ints into floats
        arr = np.array(values if isinstance(values, (list, tuple)) else [values], dtype=object).reshape(-1)
    if arr.dtype == object:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            raise ParameterError("inputs must be integers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ParameterError(f"inputs must be integers, got {arr.dtype}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if arr.size:  # numpy's min/max for numeric arrays: the builtins loop in Python
        vmin, vmax = (int(min(arr)), int(max(arr))) if arr.dtype == object else (int(arr.min()), int(arr.max()))
        if vmin < lo or vmax > hi:
            # the value itself is a secret input: not echoed (errors reach transcripts and logs)
            raise ParameterError(f"an input {'below' if vmin < lo else 'above'} the range does not fit "
                                 f"in {width} {'signed' if signed else 'unsigned'} bits "
                                 f"(allowed: {lo} .. {hi})")
    if width <= 64:
        if arr.dtype == object:
            u = np.array([int(v) & 0xFFFFFFFFFFFFFFFF for v in arr], dtype=np.uint64)
        elif arr.dtype.kind == "i":
            u = arr.astype(np.int64).view(np.uint64)
        else:
            u = arr.astype(np.uint64)
        raw = u.astype("<u8").view(np.uint8).reshape(u.size, 8)
        return np.unpackbits(raw, axis=1, count=width, bitorder="little")
    nbytes = (width + 7) // 8
    packed = b"".join((int(v) % (1 << width)).to_bytes(nbytes, "little") for v in arr)
    bits = np.unpackbits(np.frombuffer(packed, np.uint8).reshape(arr.size, nbytes), axis=1, bitorder="little")
    return bits[:, :width].copy()


def bits_to_int(bits: np.ndarray, signed: bool = False) -> list[int]:
    """``uint8[B, width]`` bits (least significant first) -> Python integers."""
    b = np.asarray(bits, np.uint8)
    if b.ndim != 2:
        raise ParameterError("bits must be uint8[batch, width]")
    width = b.shape[1]
    raw = np.packbits(b, axis=1, bitorder="little")
    if 0 < width <= 64:  # vectorised: one little-endian word per row
        padded = np.zeros((b.shape[0], 8), np.uint8)
        padded[:, :raw.shape[1]] = raw
        words = padded.view("<u8").reshape(-1).astype(np.uint64)
        if not signed:
            return words.tolist()
        sign = (words >> np.uint64(width - 1)) & np.uint64(1)
        words = words - (sign << np.uint64(width)) if width < 64 else words
        return words.view(np.int64).tolist()
    out = []
    for row in raw:
        v = int.from_bytes(row.tobytes(), "little")
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def _wires(circuit: Circuit, groups: Sequence[int]) -> np.ndarray:
    if not groups:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(circuit.n_inputs)[circuit.input_slice(g)] for g in groups])


def _check_bits(bits: np.ndarray, n: int, circuit: Circuit, role: Role) -> np.ndarray:
    b = np.asarray(bits)
    if b.ndim == 1 and n:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != n or b.shape[0] == 0:
        raise ParameterError(f"{role.name.lower()} of {circuit.name} supplies {n} input bits per "
                             f"instance: expected uint8[batch, {n}], got shape {b.shape} "
                             "(wider inputs than the circuit's input width are refused)")
    if not (np.issubdtype(b.dtype, np.integer) or b.dtype == bool) or (b.size and b.max() > 1) \
            or (b.size and b.min() < 0):
        raise ParameterError("input bits must be 0 or 1")
    return b.astype(np.uint8)


def run_yao(party: Party, peer: int, circuit: Circuit, role: Role, bits: np.ndarray, *,
            garbler_groups: Sequence[int] = (0,), output: str = "both",
            ot: IKNPSender | IKNPReceiver | None = None, batch: int | None = None) -> np.ndarray | None:
    """Run Yao's protocol on a batch; returns output bits ``uint8[B, n_out]`` or None (no output).

    Parameters
    ----------
    circuit:
        The public circuit; input groups in ``garbler_groups`` belong to the
        garbler, all others to the evaluator.
    role:
        :attr:`Role.GARBLER` or :attr:`Role.EVALUATOR`.
    bits:
        This party's input bits ``uint8[B, n]``: its groups concatenated, least
        significant bit first in each (see :func:`int_to_bits`). A party with
        no input groups passes ``None`` and ``batch``.
    output:
        ``"both"``, ``"evaluator"`` or ``"garbler"``.
    ot:
        An IKNP extension already set up with ``peer`` (:class:`IKNPSender`
        for the garbler, :class:`IKNPReceiver` for the evaluator); one is set
        up if omitted.
    """
    role = Role(role)
    if output not in OUTPUTS:
        raise ParameterError(f"output must be one of {OUTPUTS}, got {output!r}")
    groups = sorted(set(int(g) for g in garbler_groups))
    for g in groups:
        circuit.input_slice(g)  # raises for a group the circuit does not have
    eval_groups = [g for g in range(len(circuit.inputs)) if g not in groups]
    g_wires, e_wires = _wires(circuit, groups), _wires(circuit, eval_groups)
    mine = g_wires if role is Role.GARBLER else e_wires
    if mine.size:
        x = _check_bits(bits, mine.size, circuit, role)
    else:
        if batch is None or batch < 1:
            raise ParameterError(f"the {role.name.lower()} has no input in {circuit.name}: pass batch=B")
        x = np.zeros((int(batch), 0), np.uint8)
    with party.scope(party.fresh("yao")):
        if role is Role.GARBLER:
            return _garbler(party, peer, circuit, x, g_wires, e_wires, output, ot)
        return _evaluator(party, peer, circuit, x, g_wires, e_wires, output, ot)


def _chunks(circuit: Circuit, batch: int) -> list[tuple[int, int]]:
    size = max(1, CHUNK_WIRE_INSTANCES // circuit.n_wires)
    return [(s, min(batch, s + size)) for s in range(0, batch, size)]


def _blocks(circuit: Circuit, batch: int) -> list[list[tuple[int, int]]]:
    """Garbling chunks grouped so that each group holds at most ``OT_BLOCK`` input labels
    (16 ``OT_BLOCK`` bytes, garbler's and evaluator's), hence at most that many OTs."""
    blocks: list[list[tuple[int, int]]] = [[]]
    for s, e in _chunks(circuit, batch):
        start = blocks[-1][0][0] if blocks[-1] else s
        if blocks[-1] and (e - start) * circuit.n_inputs > OT_BLOCK:
            blocks.append([])
        blocks[-1].append((s, e))
    return blocks if blocks[0] else []


def _garbler(party: Party, peer: int, circuit: Circuit, x: np.ndarray, g_wires: np.ndarray,
             e_wires: np.ndarray, output: str, ot: IKNPSender | IKNPReceiver | None) -> np.ndarray | None:
    b_arr, fp = recv_arrays(party, peer, "batch", 2)
    if b_arr.shape != (1,) or int(b_arr[0]) != x.shape[0]:
        raise ProtocolError(f"party {party.id}: the evaluator runs {b_arr.reshape(-1)[:1].tolist()} "
                            f"instances of {circuit.name}, the garbler {x.shape[0]}")
    if fp.dtype != np.uint8 or fp.tobytes() != circuit.fingerprint():
        raise ProtocolError(f"party {party.id}: the evaluator runs another circuit than "
                            f"{circuit.name} (its fingerprint differs): check both parties' arguments")
    batch = x.shape[0]
    delta = gb.new_delta(party.prg.bytes(16))
    sender: IKNPSender | None = None   # set iff the evaluator has input wires
    if e_wires.size:
        if ot is None:
            ot = IKNPSender.setup(party, peer)
        if not isinstance(ot, IKNPSender) or ot.peer != peer:
            raise ParameterError("the garbler needs an IKNPSender set up with its evaluator")
        sender = ot
    hasher = FixedKeyHash()
    decodings = []
    for block in _blocks(circuit, batch):   # one OT call per block of chunks
        lo, hi = block[0][0], block[-1][1]
        zeros = np.empty((circuit.n_inputs, hi - lo, 2), np.uint64)
        if sender is not None:
            x0 = sender.correlated((hi - lo) * e_wires.size, delta.view(np.uint8))
            zeros[e_wires] = x0.view(np.uint64).reshape(e_wires.size, hi - lo, 2)  # wire-major
        if g_wires.size:
            zeros[g_wires] = party.prg.uint64((g_wires.size, hi - lo, 2))
        for s, e in block:
            zero = zeros[:, s - lo:e - lo]
            tables, out_zero = gb.garble(circuit, delta, zero, first_instance=s, hasher=hasher)
            mine = gb.active_labels(zero[g_wires], x[s:e].T, delta)
            decoding = gb.decode_bits(out_zero)
            decodings.append(decoding)
            extra = (decoding,) if output != "garbler" else ()
            party.send(peer, party.fresh("garbled"), mine, tables, *extra)
    if output == "evaluator":
        return None
    (res,) = recv_arrays(party, peer, "result", 1)
    if res.dtype != np.uint8 or res.shape != (batch, circuit.n_outputs) or (res.size and res.max() > 1):
        raise EncodingError(f"party {peer} sent a result of shape {res.shape}, "
                            f"expected ({batch}, {circuit.n_outputs}) uint8 bits")
    if output == "garbler":
        res = res ^ np.concatenate(decodings, axis=1).T
    return party.publish("output", res) if output == "both" else res


def _evaluator(party: Party, peer: int, circuit: Circuit, x: np.ndarray, g_wires: np.ndarray,
               e_wires: np.ndarray, output: str, ot: IKNPSender | IKNPReceiver | None) -> np.ndarray | None:
    batch = x.shape[0]
    party.send(peer, "batch", np.array([batch], np.int64),
               np.frombuffer(circuit.fingerprint(), np.uint8), public=True)
    receiver: IKNPReceiver | None = None   # set iff this party has input wires
    if e_wires.size:
        if ot is None:
            ot = IKNPReceiver.setup(party, peer)
        if not isinstance(ot, IKNPReceiver) or ot.peer != peer:
            raise ParameterError("the evaluator needs an IKNPReceiver set up with its garbler")
        receiver = ot
    hasher = FixedKeyHash()
    results = []
    for block in _blocks(circuit, batch):   # one OT call per block of chunks
        lo, hi = block[0][0], block[-1][1]
        block_labels = np.empty((circuit.n_inputs, hi - lo, 2), np.uint64)
        if receiver is not None:  # wire-major: wire i of every instance of the block, then wire i + 1
            got = receiver.correlated(x[lo:hi].T.reshape(-1))
            block_labels[e_wires] = got.view(np.uint64).reshape(e_wires.size, hi - lo, 2)
        for s, e in block:
            labels = block_labels[:, s - lo:e - lo]
            msg = party.recv(peer, party.fresh("garbled"))
            want = 2 if output == "garbler" else 3
            if len(msg) != want:
                raise EncodingError(f"party {peer} sent {len(msg)} arrays of garbled data, expected {want}")
            mine, tables = msg[0], msg[1]
            if mine.dtype != np.uint64 or mine.shape != (g_wires.size, e - s, 2):
                raise EncodingError(f"party {peer} sent garbler labels of shape {mine.shape}, "
                                    f"expected ({g_wires.size}, {e - s}, 2) uint64")
            labels[g_wires] = mine
            active = gb.evaluate(circuit, tables, labels, first_instance=s, hasher=hasher)
            if output == "garbler":
                results.append((active[..., 0] & np.uint64(1)).astype(np.uint8).T)
            else:
                dec = msg[2]
                if dec.dtype != np.uint8 or dec.shape != (circuit.n_outputs, e - s) or \
                        (dec.size and dec.max() > 1):
                    raise EncodingError(f"party {peer} sent decoding bits of shape {dec.shape} / "
                                        f"{dec.dtype}, expected ({circuit.n_outputs}, {e - s}) uint8 bits")
                results.append(gb.decode(active, dec))
    res = np.concatenate(results, axis=0)
    if output == "evaluator":
        return res
    party.send(peer, "result", res, public=output == "both")
    return party.publish("output", res) if output == "both" else None
