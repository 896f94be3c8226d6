"""Garbled circuits, oblivious transfer and Yao's millionaires: throughput, latency and bytes.

Names:

* ``gc``: half-gates garbling and evaluation on one core (pure functions, no
  network): the AES-128 Bristol circuit (a batch of blocks, and one block) and
  a batch of 32-bit comparisons. Params ``circuit``, ``phase`` (``garble`` or
  ``evaluate``), ``batch``; extra ``and_per_second``. Baseline: the same batch
  evaluated in plaintext (bit-sliced numpy, :meth:`Circuit.evaluate_plain`).
  ``bytes_per_party`` is the garbled tables' size. ``and_per_second`` is by the
  wall clock; ``and_per_cpu_second`` by this thread's CPU time, which is the
  figure to trust on a shared, loaded machine. The batch runs in the protocol's
  chunks (:data:`mpc.gc.yao.CHUNK_WIRE_INSTANCES`, extra ``chunk``); evaluation
  starts from the active input labels (making them from the bits, the work of
  OT and of the garbler, is outside its clock).
* ``ot``: ``kind="base"`` (128 Chou-Orlandi OTs on Ed25519) and
  ``kind="iknp"`` (extension, random and correlated OT), two parties in one
  process. Extra ``ot_per_second`` (wall clock) and ``ot_per_cpu_second`` (by
  the busier party's CPU time, the figure for one core per party on a loaded
  machine). Time is the wall clock of the transfer
  (the setup of the extension is excluded, it is the ``base`` record). Baseline:
  drawing the sender's output bytes with the PRG (a transfer with no obliviousness).
* ``millionaires``: the whole protocol (OT setup included) for ``bits``-bit
  wealth and ``batch`` comparisons per run; baseline: numpy's ``a > b``;
  ``cpu_seconds`` is the busier party's CPU time.
"""

from __future__ import annotations

import threading
import time

import numpy as np

import mpc
from bench.common import median_time, record
from mpc.gc import bristol, builder
from mpc.gc import garble as gb
from mpc.gc.yao import CHUNK_WIRE_INSTANCES
from mpc.ot import IKNPReceiver, IKNPSender, base
from mpc.rand import PRG
from protocols.millionaires import millionaires


def _garble_and_evaluate(circuit, batch: int, seed: int = 0) -> tuple[float, float, float, float, bool]:
    """Wall and CPU seconds to garble and to evaluate ``batch`` instances (chunked like the protocol)."""
    prg = PRG.fresh()
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_WIRE_INSTANCES // circuit.n_wires)
    t_g = t_e = c_g = c_e = 0.0
    ok = True
    delta = gb.new_delta(prg.bytes(16))
    for s in range(0, batch, chunk):
        n = min(chunk, batch - s)
        zero = prg.uint64((circuit.n_inputs, n, 2))
        bits = rng.integers(0, 2, (n, circuit.n_inputs)).astype(np.uint8)
        t0, c0 = time.perf_counter(), time.thread_time()
        tables, out0 = gb.garble(circuit, delta, zero, first_instance=s)
        t1, c1 = time.perf_counter(), time.thread_time()
        labels = gb.active_labels(zero, bits.T, delta)   # what OT and the garbler deliver
        t2, c2 = time.perf_counter(), time.thread_time()
        active = gb.evaluate(circuit, tables, labels, first_instance=s)
        t3, c3 = time.perf_counter(), time.thread_time()
        t_g, t_e, c_g, c_e = t_g + t1 - t0, t_e + t3 - t2, c_g + c1 - c0, c_e + c3 - c2
        if s == 0:
            ok = np.array_equal(gb.decode(active, gb.decode_bits(out0)), circuit.evaluate_plain(bits))
    return t_g, t_e, c_g, c_e, ok


def bench_gc(quick: bool) -> list[dict]:
    """Half-gates garbling and evaluation (AES-128, 32-bit comparisons), one core: ANDs per second."""
    aes = bristol.load("aes_128")
    cmp32 = builder.greater_than(32)
    cases = [("aes_128", aes, 2 if quick else 100), ("aes_128", aes, 1),
             ("gt32", cmp32, 1000 if quick else 100_000)]
    repeat = 1 if quick else 3
    out = []
    for name, circuit, batch in cases:
        _ = circuit.plan  # the schedule, computed once, outside the clock
        runs = [_garble_and_evaluate(circuit, batch, seed=k) for k in range(repeat)]
        bits = np.random.default_rng(0).integers(0, 2, (batch, circuit.n_inputs)).astype(np.uint8)
        base_s, _, _ = median_time(lambda: circuit.evaluate_plain(bits), repeat=repeat)
        ands = circuit.n_and * batch
        for phase, idx in (("garble", 0), ("evaluate", 1)):
            secs = float(np.median([r[idx] for r in runs]))
            cpu = float(np.median([r[idx + 2] for r in runs]))
            out.append(record("gc", {"circuit": name, "phase": phase, "batch": batch}, secs, base_s,
                              bytes_per_party=32.0 * ands, rounds=None,
                              and_gates=ands, and_per_second=ands / secs, cpu_seconds=cpu,
                              and_per_cpu_second=ands / cpu if cpu else None,
                              chunk=max(1, CHUNK_WIRE_INSTANCES // circuit.n_wires),
                              correct=all(r[4] for r in runs)))
    return out


def _timed_pair(sender, receiver) -> tuple[float, list, mpc.RunResult]:
    """Run a two-party OT program; time = first start to last end of the measured part."""
    barrier = threading.Barrier(2)
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * 2
    cpu = [0.0, 0.0]

    def prog(party):
        state = sender.setup(party) if party.id == 0 else receiver.setup(party)
        barrier.wait()
        t0, c0 = time.perf_counter(), time.thread_time()
        result = (sender if party.id == 0 else receiver).measure(party, state)
        spans[party.id] = (t0, time.perf_counter())
        cpu[party.id] = time.thread_time() - c0
        return result

    res = mpc.run(prog, 2, preprocessing=None, timeout=600)
    secs = max(s[1] for s in spans) - min(s[0] for s in spans)
    res.cpu = cpu  # each party's CPU seconds in the measured part
    return secs, res.outputs, res


class _BaseSender:
    def __init__(self, n):
        self.n = n

    def setup(self, party):
        return None

    def measure(self, party, state):
        return base.random_send(party, 1, self.n)


class _BaseReceiver:
    def __init__(self, choices):
        self.c = choices

    def setup(self, party):
        return None

    def measure(self, party, state):
        return base.random_receive(party, 0, self.c)


class _ExtSender:
    def __init__(self, n, kind):
        self.n, self.kind = n, kind

    def setup(self, party):
        return IKNPSender.setup(party, 1)

    def measure(self, party, ot):
        if self.kind == "correlated":
            return ot.correlated(self.n, np.arange(16, dtype=np.uint8) | np.uint8(1))
        return ot.random(self.n)


class _ExtReceiver:
    def __init__(self, choices, kind):
        self.c, self.kind = choices, kind

    def setup(self, party):
        return IKNPReceiver.setup(party, 0)

    def measure(self, party, ot):
        return ot.correlated(self.c) if self.kind == "correlated" else ot.random(self.c)


def bench_ot(quick: bool) -> list[dict]:
    """128 base OTs and IKNP extension (random, correlated), two parties: OTs per second."""
    rng = np.random.default_rng(0)
    repeat = 1 if quick else 3
    out = []
    n = 128
    runs = [_timed_pair(_BaseSender(n), _BaseReceiver(rng.integers(0, 2, n).astype(np.uint8)))
            for _ in range(repeat)]
    secs = float(np.median([r[0] for r in runs]))
    cost = runs[-1][2].cost
    prg = PRG.fresh()
    base_s, _, _ = median_time(lambda: prg.bytes(32 * n), repeat=3)
    cpu = float(np.median([max(r[2].cpu) for r in runs]))
    out.append(record("ot", {"kind": "base", "n": n, "variant": "random"}, secs, base_s,
                      bytes_per_party=sum(cost.bytes_sent.values()) / 2, rounds=cost.rounds,
                      ot_per_second=n / secs, cpu_seconds=cpu, ot_per_cpu_second=n / cpu if cpu else None))
    m = 20_000 if quick else 1_000_000
    for kind in ("random", "correlated"):
        choices = rng.integers(0, 2, m).astype(np.uint8)
        runs = [_timed_pair(_ExtSender(m, kind), _ExtReceiver(choices, kind)) for _ in range(repeat)]
        secs = float(np.median([r[0] for r in runs]))
        cpu = float(np.median([max(r[2].cpu) for r in runs]))
        outs = runs[-1][1]
        if kind == "random":
            x0, x1 = outs[0]
            ok = np.array_equal(outs[1], np.where(choices[:, None] == 1, x1, x0))
        else:
            ok = np.array_equal(outs[1] ^ outs[0], choices[:, None] * (np.arange(16, dtype=np.uint8) | 1))
        measured = [msg for msg in runs[-1][2].cost.messages if "iknp-setup" not in msg.tag]
        nbytes = sum(msg.payload_bytes for msg in measured)
        base_s, _, _ = median_time(lambda: prg.bytes((32 if kind == "random" else 16) * m), repeat=3)
        out.append(record("ot", {"kind": "iknp", "n": m, "variant": kind}, secs, base_s,
                          bytes_per_party=nbytes / 2, rounds=runs[-1][2].cost.rounds - 2,  # minus the setup
                          ot_per_second=m / secs, cpu_seconds=cpu,
                          ot_per_cpu_second=m / cpu if cpu else None, correct=bool(ok)))
    return out


def bench_millionaires(quick: bool) -> list[dict]:
    """Yao's millionaires end to end (OT setup included), 1 to 10^5 comparisons a run, vs a > b."""
    cases = [(64, 1), (32, 100)] if quick else [(64, 1), (64, 1000), (32, 100_000)]
    repeat = 1 if quick else 3
    rng = np.random.default_rng(0)
    out = []
    for bits, batch in cases:
        a = rng.integers(0, 2**bits - 1, batch, dtype=np.uint64)
        b = rng.integers(0, 2**bits - 1, batch, dtype=np.uint64)
        b[: batch // 10] = a[: batch // 10]
        results = []
        for _ in range(repeat):
            cpu = [0.0, 0.0]

            def prog(party, w, cpu=cpu):
                c0 = time.thread_time()
                out = millionaires(party, w, bits=bits)
                cpu[party.id] = time.thread_time() - c0
                return out

            t0 = time.perf_counter()
            res = mpc.run(prog, 2, inputs=[a, b], preprocessing=None, timeout=600)
            results.append((time.perf_counter() - t0, res, max(cpu)))
        secs = float(np.median([r[0] for r in results]))
        cpu_s = float(np.median([r[2] for r in results]))
        res = results[-1][1]
        base_s, _, want = median_time(lambda: a > b, repeat=5)
        out.append(record("millionaires", {"bits": bits, "batch": batch}, secs, base_s,
                          bytes_per_party=sum(res.cost.bytes_sent.values()) / 2, rounds=res.cost.rounds,
                          comparisons_per_second=batch / secs, cpu_seconds=cpu_s,
                          correct=bool(np.array_equal(res.outputs[0], want)
                                       and np.array_equal(res.outputs[1], want))))
    return out


BENCHMARKS = {"gc": bench_gc, "ot": bench_ot, "millionaires": bench_millionaires}
