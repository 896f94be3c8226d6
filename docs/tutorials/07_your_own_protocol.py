# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Writing your own protocol
#
# We write a protocol from scratch: the classic *ring sum*, in which a masked
# running total travels once around the parties. Along the way: party code,
# message tags, what happens when tags disagree, the cost table, the transcript
# page, and a benchmark record in the format of Concilium's `bench/`.
#
# *Needs:* `pip install 'concilium[plot]'`. Runs in a few seconds.

# %%
import html
import json
import os
import statistics
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import mpc
from mpc.transcript import render

# %% [markdown]
# ## Party code
#
# Every party runs the same function (SPMD) and branches on `party.id`. Messages
# go out with `party.send(to, name, *arrays)` and come in with
# `party.recv(frm, name)`; the name is a **tag**, nested inside the scopes
# opened with `party.scope(...)`, so this protocol's messages are
# `ring-sum/hop` and `ring-sum/total`. Values the protocol means to make public
# are marked with `party.publish` or `send(..., public=True)`, so that the
# transcript may show them.
#
# The docstring follows the house style: **Protocol**, **Security**, **Cost**.

# %%
def ring_sum(party: mpc.Party, x: np.ndarray) -> np.ndarray:
    """Sum of every party's uint64 vector, by one masked pass around the ring.

    Protocol
    --------
    1. Party 0 draws a uniform mask r in Z_2^64 and sends x_0 + r to party 1.
    2. Party i (1 <= i < n) receives the running total t, sends t + x_i to
       party (i + 1) mod n.
    3. Party 0 receives the total plus r, subtracts r, and sends the total to
       every other party in the clear.

    Security
    --------
    Semi-honest; each single party sees only uniformly masked totals. Two
    parties that collude (the neighbours of party i) learn x_i: a teaching
    protocol, use ``mpc.share_all`` for real work.

    Cost
    ----
    n + 1 message rounds (n hops, then the broadcast); n hops of 8 d bytes and
    n - 1 messages of 8 d bytes for the result.
    """
    n, me = party.n, party.id
    x = np.asarray(x, dtype=np.uint64)
    with party.scope("ring-sum"):
        if me == 0:
            r = np.frombuffer(os.urandom(8 * x.size), dtype=np.uint64).reshape(x.shape)
            party.send(1, "hop", x + r)
            (t,) = party.recv(n - 1, "hop")
            total = party.publish("total", t - r)
            party.send_many(list(range(1, n)), "total", total, public=True)
            return total
        (t,) = party.recv(me - 1, "hop")
        party.send((me + 1) % n, "hop", t + x)
        (total,) = party.recv(0, "total")
        return total


inputs = [np.array([3, 1, 4], dtype=np.uint64), np.array([1, 5, 9], dtype=np.uint64),
          np.array([2, 6, 5], dtype=np.uint64)]
result = mpc.run(ring_sum, parties=3, inputs=inputs, preprocessing=None, transcript=True)
print("ring sum:     ", result.outputs[0])
print("plaintext sum:", sum(inputs))
print("every party got the same total:", all(np.array_equal(o, result.outputs[0]) for o in result.outputs))

# %% [markdown]
# `preprocessing=None`: the protocol needs no Beaver triples, so no dealer.
#
# ## The cost table
#
# Every run measures what crossed the wire. Compare it with the **Cost** line of
# the docstring: for n = 3, four rounds, 3 hops and 2 result messages of
# 3 x 8 = 24 bytes each.

# %%
print(result.cost.summary())
print(f"\n{'round':>5}  {'from':>4} -> {'to':<4} {'bytes':>5}  tag")
for m in result.cost.messages:
    print(f"{m.round:>5}  {m.sender:>4} -> {m.receiver:<4} {m.payload_bytes:>5}  {m.tag}")
for n in (3, 5, 8):
    r = mpc.run(ring_sum, parties=n, inputs=[np.arange(4, dtype=np.uint64)] * n, preprocessing=None)
    print(f"n = {n}: {r.cost.rounds} rounds (formula n + 1 = {n + 1}), {len(r.cost.messages)} messages "
          f"(formula 2n - 1 = {2 * n - 1})")

# %% [markdown]
# ## When tags disagree
#
# Suppose party 2's code waits for a message named `step` while party 1 sends
# `hop`. Concilium does not hang and does not hand over the wrong message: the
# receiver raises an error naming the tag it expected and the one it got.

# %%
def buggy(party: mpc.Party, x: np.ndarray) -> np.ndarray:
    with party.scope("ring-sum"):
        if party.id == 1:
            party.send(2, "hop", x)
        elif party.id == 2:
            party.recv(1, "step")
    return x


try:
    mpc.run(buggy, parties=3, inputs=inputs, preprocessing=None, timeout=5)
except mpc.ConciliumError as exc:
    print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ## The transcript
#
# The run's transcript shows the masked hops as random-looking payloads (sizes
# and entropy only) and the total, which the protocol published, in the clear.
# Here it is inline and as a file.

# %%
labels = ["Ann", "Bob", "Cy"]
page = render(result.transcript, title="Ring sum", labels=labels)
try:
    from IPython.display import HTML, display
    display(HTML(f'<div><iframe srcdoc="{html.escape(page)}" width="100%" height="480" '
                 'style="border: 1px solid #ccc"></iframe></div>'))
except ImportError:
    pass
out_dir = tempfile.mkdtemp(prefix="ring-sum-")
result.transcript.write_html(os.path.join(out_dir, "ring_sum.html"), labels=labels, title="Ring sum")
result.transcript.write_json(os.path.join(out_dir, "ring_sum.json"))
print("transcript written:", sorted(os.listdir(out_dir)))

# %% [markdown]
# ## A benchmark record
#
# Concilium's benchmarks (`python -m bench NAME --json FILE`) write one JSON
# record per measurement, in one schema (`bench/common.py`, `record`): name,
# parameters, median seconds, the plaintext baseline measured in the same run,
# their ratio, bytes per party and rounds. Bytes and rounds come from the cost
# record, so they are the same on every machine; seconds are not. Here is the
# same record for our protocol, with the median over a few repetitions.

# %%
def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


records = []
for n in (3, 5, 8):                                  # try (3, 10, 30) on your laptop
    xs = [np.arange(1000, dtype=np.uint64)] * n
    run = mpc.run(ring_sum, parties=n, inputs=xs, preprocessing=None)
    seconds = median_seconds(lambda: mpc.run(ring_sum, parties=n, inputs=xs, preprocessing=None))
    baseline = median_seconds(lambda: sum(xs))
    records.append({
        "name": "ring-sum", "params": {"parties": n, "dim": 1000},
        "seconds": seconds, "baseline_seconds": baseline, "ratio": seconds / baseline,
        "bytes_per_party": statistics.mean(run.cost.bytes_sent.values()), "rounds": run.cost.rounds,
    })
print(json.dumps(records[0], indent=1))
for rec in records:
    print(f"parties {rec['params']['parties']}: {rec['rounds']} rounds, "
          f"{rec['bytes_per_party']:,.0f} B per party, {rec['seconds'] * 1e3:.1f} ms")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([r["params"]["parties"] for r in records], [r["seconds"] * 1e3 for r in records], marker="o")
ax.set_xlabel("parties")
ax.set_ylabel("median ms")
ax.set_title("Ring sum: one hop per party")
plt.show()

# %% [markdown]
# ## What you learned
#
# * A protocol is one function every party runs; `send` / `recv` carry named
#   messages inside scopes, and a tag mismatch is an error naming both tags,
#   never a hang or a silent mix-up.
# * Write the **Protocol**, **Security** and **Cost** of a protocol in its
#   docstring, then check the cost formula against `result.cost`.
# * `party.publish` and `send(..., public=True)` mark what may appear in the
#   transcript; everything else is shown as sizes and entropy only.
# * A benchmark record puts median time beside its plaintext baseline and the
#   machine-independent bytes and rounds.
#
# That is the end of the series. The guides and the API reference take it from
# here.
