"""Parties in separate processes over loopback TCP + TLS 1.3, against the in-memory transport.

``python -m bench network [--quick] [--json FILE]`` writes:

* ``transfer`` (params ``transport``: ``"tcp"`` or ``"memory"``, ``megabytes``):
  party 0 sends one uint64 array to party 1, which answers with an empty
  message; seconds per transfer (median), ``megabytes_per_second``, and for
  TCP the ciphertext bytes on the wire and the megabytes per CPU-second of
  the sending and the receiving process (all their threads; what the link
  would carry if each had a core of its own). The baseline of the TCP record is the
  in-memory transfer of the same array measured in the same run (the memory
  record's baseline is a numpy copy).
* ``latency`` (params ``transport``, ``elements`` = 1): the median round trip
  of a one-element uint64 message between 2 parties (``microseconds``; for
  TCP also the 90th percentile), the memory transport's as the TCP record's baseline.
* ``mul`` and ``matmul`` (params ``transport: "tcp"``, ``n``, ``parties``,
  ``phase``): the products of ``bench.arith`` with 3 parties in 3 OS
  processes, the launcher serving as the dealer. ``online``: triples and
  truncation pairs prefetched before the clock; ``total``: the dealer's
  round trip inside the clock. Time is from the first party starting to the
  last finishing (one clock: same machine), the baseline numpy float64.
  Before each repetition a one-byte exchange (phase ``sync``) lines the
  processes up; it is not in the measured phase.

``--quick`` (the smoke test) uses small sizes and runs the TCP parties as
threads of one process (still TCP + TLS over loopback); every record says
``processes`` true or false.
"""

from __future__ import annotations

import time

import numpy as np

import mpc
from bench.common import median_time, record
from mpc.distributed import run_local

PARTIES = 3


def transfer_program(party, megabytes, repeat):
    """Party 0 sends ``megabytes`` MB to party 1 ``repeat`` times.

    Returns this party's wall seconds per transfer and its process CPU seconds
    (all threads: encryption, I/O) per transfer.
    """
    if party.id > 1:
        return None
    data = np.arange(int(megabytes * 2**20) // 8, dtype=np.uint64) if party.id == 0 else None
    times, cpu = [], []
    party.exchange("warmup", np.zeros(1, np.uint8))
    for _ in range(repeat):
        tag = party.fresh("array")
        t0, c0 = time.perf_counter(), time.process_time()
        if party.id == 0:
            party.send(1, tag, data)
            party.recv(1, tag)
        else:
            (got,) = party.recv(0, tag)
            if got.shape != (int(megabytes * 2**20) // 8,) or int(got[-1]) != got.shape[0] - 1:
                raise ValueError("the array arrived damaged")
            party.send(0, tag)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"seconds": times, "cpu_seconds": cpu}


def latency_program(party, repeat):
    """Party 0 sends one uint64 to party 1, which sends it back, ``repeat`` times; party 0
    returns the seconds of each round trip."""
    if party.id > 1:
        return None
    one = np.ones(1, np.uint64)
    party.exchange("warmup", one, peers=[1 - party.id])
    times = []
    for _ in range(repeat):
        tag = party.fresh("ping")
        t0 = time.perf_counter()
        if party.id == 0:
            party.send(1, tag, one)
            party.recv(1, tag)
        else:
            (got,) = party.recv(0, tag)
            party.send(0, tag, got)
        times.append(time.perf_counter() - t0)
    return times


def bench_latency(quick: bool) -> list[dict]:
    """Round trip of a 1-element message between 2 parties: memory and TCP + TLS."""
    repeat = 20 if quick else 500
    base, _, _ = median_time(lambda: np.ones(1, np.uint64).copy(), repeat=20)
    mem = mpc.run(latency_program, 2, kwargs={"repeat": repeat}, preprocessing=None)
    mem_s = float(np.median(mem.outputs[0]))
    tcp = run_local("bench.network:latency_program", 2, processes=not quick, kwargs={"repeat": repeat},
                    preprocessing=None, timeout=120)
    tcp_s = float(np.median(tcp.outputs[0]))
    return [record("latency", {"transport": "memory", "elements": 1}, mem_s, base, bytes_per_party=4.0,
                   rounds=2, microseconds=mem_s * 1e6),
            record("latency", {"transport": "tcp", "elements": 1}, tcp_s, mem_s, bytes_per_party=4.0,
                   rounds=2, microseconds=tcp_s * 1e6, p90_microseconds=float(np.percentile(tcp.outputs[0], 90)) * 1e6,
                   encryption="TLS 1.3", processes=not quick)]


def _operands(op, n):
    rng = np.random.default_rng(0 if op == "mul" else n)
    if op == "mul":
        return rng.uniform(-100, 100, n), rng.uniform(-100, 100, n)
    return rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, (n, n))


def secure_op_program(party, op, n, repeat, prefetch):
    """Party code for the TCP mul/matmul records: spans (wall clock) and the revealed result."""
    x, y = _operands(op, n)
    b = 100.0 if op == "mul" else 1.0      # the simulated operands' public bounds
    sx = mpc.share(party, x if party.id == 0 else None, 0, bound=b)
    sy = mpc.share(party, y if party.id == 1 else None, 1, bound=b)
    if prefetch:
        with party.phase("offline"):
            party.preprocessing.prefetch(op, x.shape, y.shape, count=repeat)
            out_shape = (x * y).shape if op == "mul" else (x.shape[0], y.shape[1])
            party.preprocessing.prefetch("trunc", out_shape, party.fixed.frac_bits, count=repeat)
    spans = []
    result = None
    for _ in range(repeat):
        with party.phase("sync"):
            party.exchange(party.fresh("sync"), np.zeros(1, np.uint8))
        with party.phase("measured"):
            t0 = time.time()
            result = sx * sy if op == "mul" else sx @ sy
            spans.append([t0, time.time()])
    opened = result.reveal(to=0)
    return {"spans": spans, "result": opened if party.id == 0 else None}


def bench_transfer(quick: bool) -> list[dict]:
    sizes = [4] if quick else [16, 128]
    repeat = 2 if quick else 5
    out = []
    for mb in sizes:
        nbytes = int(mb * 2**20)
        arr = np.arange(nbytes // 8, dtype=np.uint64)
        copy_s, _, _ = median_time(lambda: arr.copy(), repeat=5)
        mem = mpc.run(transfer_program, 2, kwargs={"megabytes": mb, "repeat": repeat}, preprocessing=None)
        mem_s = float(np.median(mem.outputs[0]["seconds"]))
        out.append(record("transfer", {"transport": "memory", "megabytes": mb}, mem_s, copy_s,
                          bytes_per_party=nbytes / 2, rounds=2, megabytes_per_second=mb / mem_s))
        tcp = run_local("bench.network:transfer_program", 2, processes=not quick,
                        kwargs={"megabytes": mb, "repeat": repeat}, preprocessing=None, timeout=120)
        tcp_s = float(np.median(tcp.outputs[0]["seconds"]))
        send_cpu = float(np.median(tcp.outputs[0]["cpu_seconds"]))
        recv_cpu = float(np.median(tcp.outputs[1]["cpu_seconds"]))
        big = [m for m in tcp.cost.messages if m.payload_bytes == nbytes]
        out.append(record("transfer", {"transport": "tcp", "megabytes": mb}, tcp_s, mem_s,
                          bytes_per_party=nbytes / 2, rounds=2, megabytes_per_second=mb / tcp_s,
                          wire_bytes=big[0].wire_bytes, encryption="TLS 1.3", processes=not quick,
                          sender_cpu_megabytes_per_second=mb / max(send_cpu, 1e-9),
                          receiver_cpu_megabytes_per_second=mb / max(recv_cpu, 1e-9)))
    return out


def _secure_records(op: str, n: int, repeat: int, processes: bool) -> list[dict]:
    x, y = _operands(op, n)
    fn = np.multiply if op == "mul" else np.matmul
    base, _, want = median_time(lambda: fn(x, y), repeat=max(repeat, 5))
    out = []
    for phase, prefetch in (("online", True), ("total", False)):
        res = run_local("bench.network:secure_op_program", PARTIES, timeout=300, processes=processes,
                        kwargs={"op": op, "n": n, "repeat": repeat, "prefetch": prefetch})
        spans = [o["spans"] for o in res.outputs]
        per_op = [max(s[k][1] for s in spans) - min(s[k][0] for s in spans) for k in range(repeat)]
        measured = res.cost.phases()["measured"]
        bpp = sum(v for p, v in measured.bytes_sent.items() if p >= 0) / PARTIES / repeat
        wire = sum(m.wire_bytes for m in res.cost.messages
                   if m.phase == "measured" and m.sender >= 0) / PARTIES / repeat
        err = np.abs(res.outputs[0]["result"] - want)
        out.append(record(op, {"n": n, "parties": PARTIES, "phase": phase, "transport": "tcp"},
                          float(np.median(per_op)), base, bytes_per_party=bpp,
                          rounds=measured.rounds // repeat, wire_bytes_per_party=wire,
                          max_abs_error=float(err.max()), off_by_more_than_0_01=int((err > 0.01).sum()),
                          processes=processes))
    return out


def bench_network(quick: bool) -> list[dict]:
    """Parties as OS processes over TCP + TLS: transfer rate; mul and matmul vs in-memory."""
    out = bench_transfer(quick) + bench_latency(quick)
    out += _secure_records("mul", 10_000 if quick else 1_000_000, 2 if quick else 5, not quick)
    for n in [32] if quick else [128, 256, 512]:
        out += _secure_records("matmul", n, 2 if quick else 3, not quick)
    return out


BENCHMARKS = {"network": bench_network}
