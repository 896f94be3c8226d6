"""Parties in separate Linux network namespaces, joined by veth pairs on a bridge, with a shaped link.

Each party runs in its own namespace (``ip netns``), its veth's egress shaped
by ``tc``: ``netem delay`` when the kernel has it (the wall time of R rounds is
at least R x delay), else a token bucket (``tbf``; the wall time is at least the
bytes the party put on its link, minus the bucket, over the rate). Either way
the measured time must grow with the rounds as the cost model predicts, and
the cost record (rounds, bytes) must equal the in-memory one.

Needs root and iproute2 (``ip``, ``tc``); skipped with the reason otherwise
(an error under ``CONCILIUM_REQUIRE_NETNS=1``, as in CI).
"""

import os
import shutil
import subprocess

import pytest

import mpc
from mpc.distributed import run_local
from tests.mpc.transport import test_tcp_programs as progs

DELAY = 0.025  # netem: one-way delay per party's link, seconds
RATE = 1_000_000  # tbf: bytes per second per party's link
BURST = 16_000  # tbf: bucket size, bytes
PAYLOAD = 16_000  # bytes per message in the shaped runs
TAG = f"cc{os.getpid() % 100000}"


def _sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def _unavailable():
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip") or not shutil.which("tc"):
        return "iproute2 (ip, tc) is not installed"
    probe = f"{TAG}probe"
    r = _sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    _sh("ip", "netns", "del", probe, check=False)
    return None


REASON = _unavailable()
# CI installs iproute2, runs as root and sets CONCILIUM_REQUIRE_NETNS=1 (.ci/run): there
# missing namespaces are an error in every test here, never a silent skip.
REQUIRED = os.environ.get("CONCILIUM_REQUIRE_NETNS", "") not in ("", "0")
pytestmark = pytest.mark.skipif(REASON is not None and not REQUIRED, reason=str(REASON))


@pytest.fixture(autouse=True, scope="module")
def netns_required():
    if REASON is not None:
        pytest.fail(f"{REASON} (CONCILIUM_REQUIRE_NETNS is set)", pytrace=False)


@pytest.fixture(scope="module")
def namespaces():
    """Three party namespaces and a hub with a bridge; yields (names, hosts, shaping)."""
    n = 3
    hub = f"{TAG}hub"
    names = [f"{TAG}p{i}" for i in range(n)]
    created = []
    try:
        for ns in [hub, *names]:
            _sh("ip", "netns", "add", ns)
            created.append(ns)
        _sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", hub, "link", "set", "br0", "up")
        shaping = "netem"
        for i, ns in enumerate(names):
            a, b = f"{TAG}v{i}a", f"{TAG}v{i}b"
            _sh("ip", "link", "add", a, "netns", ns, "type", "veth", "peer", "name", b, "netns", hub)
            _sh("ip", "-n", hub, "link", "set", b, "master", "br0")
            _sh("ip", "-n", hub, "link", "set", b, "up")
            _sh("ip", "-n", ns, "addr", "add", f"10.213.0.{i + 1}/24", "dev", a)
            _sh("ip", "-n", ns, "link", "set", a, "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            if shaping == "netem":
                r = _sh("tc", "-n", ns, "qdisc", "add", "dev", a, "root", "netem",
                        "delay", f"{int(DELAY * 1000)}ms", check=False)
                if r.returncode != 0:  # this kernel has no sch_netem: shape bandwidth instead
                    shaping = "tbf"
                    for j in range(i):
                        _sh("tc", "-n", names[j], "qdisc", "del", "dev", f"{TAG}v{j}a", "root")
                        _tbf(names[j], f"{TAG}v{j}a")
            if shaping == "tbf":
                _tbf(ns, a)
        yield names, [f"10.213.0.{i + 1}" for i in range(n)], shaping
    finally:
        for ns in created:
            _sh("ip", "netns", "del", ns, check=False)


def _tbf(ns, dev):
    _sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{RATE * 8}bit",
        "burst", str(BURST), "latency", "2s")


def _run(names, hosts, count, payload):
    return run_local("tests/mpc/transport/test_tcp_programs.py:rounds", 3, kwargs={"count": count, "payload": payload},
                     preprocessing=None, hosts=hosts, timeout=30,
                     launch_prefix=lambda i: ["ip", "netns", "exec", names[i]])


def test_wall_time_grows_with_rounds_times_link_cost(namespaces):
    names, hosts, shaping = namespaces
    payload = 8 if shaping == "netem" else PAYLOAD
    few, many = 2, 8
    res = {k: _run(names, hosts, k, payload) for k in (few, many)}
    mem = mpc.run(progs.rounds, 3, kwargs={"count": many, "payload": payload}, preprocessing=None)
    assert res[many].cost.rounds == mem.cost.rounds == many + 1
    assert res[many].cost.bytes_sent == mem.cost.bytes_sent
    seconds = {k: max(r.outputs) for k, r in res.items()}
    if shaping == "netem":
        # every round waits for messages that crossed a link delayed by DELAY
        predicted = {k: k * DELAY for k in res}
    else:
        # every byte of the measured rounds left through a RATE-limited link
        predicted = {}
        for k, r in res.items():
            sent = max(sum(m.wire_bytes for m in r.cost.messages
                                if m.sender == p and m.tag.startswith("round"))
                            for p in range(3))
            predicted[k] = max(0.0, sent - BURST) / RATE
    print(f"{shaping}: measured {seconds}, cost-model lower bound {predicted}")
    for k in res:
        assert seconds[k] >= 0.95 * predicted[k]  # a physical lower bound, not a benchmark
    assert seconds[many] > seconds[few]
    assert seconds[many] - seconds[few] >= 0.5 * (predicted[many] - predicted[few])
    assert seconds[many] < 10 * predicted[many] + 5  # loose: no hang, no runaway retries
