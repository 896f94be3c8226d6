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
# # 2. Yao's millionaires: garbled circuits and oblivious transfer
#
# Alice and Bob want to know who is richer, and nothing else. We build the
# comparison as a Boolean circuit, run it as a garbled circuit with oblivious
# transfer, read every message that crossed the wire, and put Yao's original
# 1982 protocol beside it.
#
# *Needs:* `pip install 'concilium[plot]'` (matplotlib). Runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

import mpc
from mpc.gc import int_to_bits
from mpc.transcript import byte_entropy
from protocols.millionaires import comparison_circuit, millionaires, yao1982

alice_wealth, bob_wealth = 7_300_000, 5_900_000

# %% [markdown]
# ## The circuit
#
# "Is $a > b$?" for 64-bit numbers is a circuit of XOR, AND and NOT gates.
# With free-XOR garbling only the AND gates cost anything (two 16-byte
# ciphertexts each, with half-gates). Evaluated in the clear, it is just a
# comparison:

# %%
circuit = comparison_circuit(64)
print(circuit)
bits = np.concatenate([int_to_bits(alice_wealth, 64), int_to_bits(bob_wealth, 64)], axis=1)
print("plaintext evaluation, a > b:", bool(circuit.evaluate_plain(bits)[0, 0]))

# %% [markdown]
# ## The protocol, message by message
#
# 1. Alice (the *garbler*) picks two random 128-bit labels per wire, one for 0
#    and one for 1, and encrypts each AND gate's table under them.
# 2. Bob (the *evaluator*) needs the labels of *his* input bits without Alice
#    learning the bits: **oblivious transfer**. 128 public-key OTs once
#    (Chou-Orlandi), then the IKNP extension turns them into as many OTs as
#    needed with symmetric crypto only.
# 3. Alice sends her own input labels and the garbled tables; to Bob they are
#    random strings.
# 4. Bob evaluates gate by gate, decodes one output bit, and tells Alice.

# %%
def program(party, wealth):
    with party.phase("compare"):
        return millionaires(party, wealth, bits=64)


result = mpc.run(program, parties=2, inputs=[alice_wealth, bob_wealth], preprocessing=None,
                 record_view=True)
names = ["Alice", "Bob"]
for m in result.cost.messages:
    print(f"round {m.round}  {names[m.sender]:>5} -> {names[m.receiver]:<5} "
          f"{m.payload_bytes:>7,} B  {m.tag}")
print(f"Alice is richer: {result.outputs[0]} (both parties agree: {result.outputs[0] == result.outputs[1]})")
print(result.cost.summary())

# %% [markdown]
# ## What Bob saw of Alice's wealth
#
# The message tagged `garbled` holds Alice's input labels and the garbled
# tables (and one decoding bit). Their bytes have the entropy of random bytes (8 bits per byte is the
# maximum): they would look the same for any wealth with the same outcome.

# %%
garbled = [arrays for sender, tag, arrays in result.views[1] if "garbled" in tag][0]
for a in garbled:
    entropy = byte_entropy(a.tobytes())               # None: too short to estimate
    measured = "too short to measure" if entropy is None else f"byte entropy {entropy:.2f} bits/byte"
    print(f"array {a.dtype}{list(a.shape)}: {a.nbytes:,} B, {measured}")

# %% [markdown]
# ## Where the bytes go
#
# The comparison grows linearly with the width: one AND gate per bit, plus the
# OTs for Bob's bits. The fixed part is the base OTs.

# %%
widths = [8, 16, 32, 64]
totals = []
for w in widths:
    r = mpc.run(lambda party, x, w=w: millionaires(party, x, bits=w), parties=2,
                inputs=[200, 100], preprocessing=None)
    totals.append(sum(m.payload_bytes for m in r.cost.messages))
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(widths, [t / 1e3 for t in totals], marker="o")
ax.set_xlabel("bits compared")
ax.set_ylabel("kB exchanged")
ax.set_title("Garbled comparison: bytes grow linearly with the width")
plt.show()
print("bytes per width:", dict(zip(widths, totals)))

# %% [markdown]
# ## Yao 1982, beside it
#
# Yao's original protocol needs no circuit: Alice's RSA key, one number from
# Bob, and a list of $N$ numbers from Alice, one for each possible wealth (here
# whole millions below 100). It is a teaching protocol: its cost grows with
# the number of possible values $N$ instead of their bit length.

# %%
classic = mpc.run(lambda party, w: yao1982(party, w // 1_000_000, max_wealth=100), parties=2,
                  inputs=[alice_wealth, bob_wealth], preprocessing=None)
for m in classic.cost.messages:
    print(f"round {m.round}  {names[m.sender]:>5} -> {names[m.receiver]:<5} "
          f"{m.payload_bytes:>7,} B  {m.tag}")
print(f"1982: Alice is at least as rich: {classic.outputs[0]}")
gc_bytes = sum(m.payload_bytes for m in result.cost.messages)
yao_bytes = sum(m.payload_bytes for m in classic.cost.messages)
print(f"garbled circuit: {result.cost.rounds} rounds, {gc_bytes:,} B for any 64-bit wealth")
print(f"Yao 1982:        {classic.cost.rounds} rounds, {yao_bytes:,} B for 100 possible values")

# %% [markdown]
# ## What you learned
#
# * A comparison is a small Boolean circuit; garbling encrypts its AND gates
#   under random wire labels, and XOR gates are free.
# * Oblivious transfer gives Bob the labels of his own bits while Alice learns
#   nothing about them; a few public-key OTs are extended to many cheap ones.
# * Every message either party receives looks random; the only thing learned is
#   the output bit.
# * Yao's 1982 protocol solves the same problem with RSA, but its cost grows with
#   the number of possible values, not with their number of bits.
#
# Next: tutorial 3, secure aggregation of many clients' vectors.
