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
# # 1. Secret sharing, by hand and with `SharedTensor`
#
# Three colleagues want the average of their salaries without telling anyone
# their own. We first do it by hand with additive secret sharing over the ring
# $\mathbb{Z}_{2^{64}}$, then let Concilium do it, and look at exactly what each
# party received.
#
# *Needs:* `pip install 'concilium[plot]'` (matplotlib). Runs in about a second.

# %%
import html
import os

import matplotlib.pyplot as plt
import numpy as np

import mpc
from mpc.transcript import render

# %% [markdown]
# ## By hand: three shares that add up to the secret
#
# To share a secret $x$ among three parties, draw two uniformly random ring
# elements $r_1, r_2$ and hand out $x - r_1 - r_2$, $r_1$, $r_2$. Their sum,
# modulo $2^{64}$, is $x$; any two of them are two independent uniform numbers,
# whatever $x$ is. `numpy.uint64` arithmetic wraps around modulo $2^{64}$, which
# is exactly the ring we want. The randomness comes from the operating system
# (`os.urandom`), as it must for anything secret.

# %%
def random_ring_elements(n: int) -> np.ndarray:
    """n uniform elements of Z_2^64 from the OS CSPRNG."""
    return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy()


def share_by_hand(x: int, parties: int = 3) -> np.ndarray:
    r = random_ring_elements(parties - 1)
    first = np.uint64(x) - r.sum(dtype=np.uint64)    # wraps modulo 2^64
    return np.concatenate([[first], r]).astype(np.uint64)


salaries = [52, 61, 48]                               # thousands; each is private
shares = [share_by_hand(s) for s in salaries]         # shares[i][j]: party j's share of i's salary
for i, sh in enumerate(shares):
    print(f"salary {i} -> shares {sh}")
print("reconstructed:", [int(sh.sum(dtype=np.uint64)) for sh in shares])

# %% [markdown]
# Addition needs no communication: each party adds the shares it holds, and
# the results are shares of the sum. Only the sum is ever opened.

# %%
party_sums = [sum(shares[i][j] for i in range(3)) for j in range(3)]   # party j, locally
opened_total = int(np.array(party_sums, dtype=np.uint64).sum(dtype=np.uint64))
print(f"by hand: total = {opened_total}, mean = {opened_total / 3:.2f}")

# %% [markdown]
# ## A single share says nothing
#
# On a small ring, $\mathbb{Z}_{2^8}$, we can draw many sharings and look at the
# distribution of party 1's share. It is flat for a small secret and for a large
# one: a share alone is a uniformly random number.

# %%
def party1_shares(x: int, draws: int) -> np.ndarray:
    r1 = np.frombuffer(os.urandom(draws), dtype=np.uint8)
    r2 = np.frombuffer(os.urandom(draws), dtype=np.uint8)
    return (np.uint8(x) - r1 - r2).astype(np.uint8)  # party 0's share, modulo 2^8


draws = 20_000                                        # use more on your laptop
fig, ax = plt.subplots(figsize=(7, 3))
for x in (3, 200):
    ax.hist(party1_shares(x, draws), bins=32, range=(0, 256), histtype="step", label=f"secret x = {x}")
ax.set_xlabel("value of one share in Z_2^8")
ax.set_ylabel("count")
ax.set_title("One share alone: the same flat distribution for any secret")
ax.legend()
plt.show()

# %% [markdown]
# ## The same with Concilium
#
# In Concilium every party runs the same function (SPMD). `mpc.share_all`
# secret-shares every party's input; `+` is local; `*` multiplies two secrets
# with a Beaver triple (one round); `reveal()` opens a value to everyone. Reals
# are fixed point with 16 fractional bits. `record_view=True` keeps what each
# party received, `transcript=True` keeps the run's transcript.

# %%
def program(party, salary):
    s = mpc.share_all(party, np.array([salary]))       # three SharedTensors
    total = s[0] + s[1] + s[2]                         # local
    mean = party.publish("mean", (total * (1 / 3)).reveal())
    product = (s[0] * s[1]).reveal()                   # Beaver multiplication, then open
    return mean, product


result = mpc.run(program, parties=3, inputs=[52.0, 61.0, 48.5], record_view=True, transcript=True)
mean, product = result.outputs[0]
print(f"mean salary: {mean[0]:.3f} (plaintext {np.mean([52.0, 61.0, 48.5]):.3f})")
print(f"product of salaries 0 and 1: {product[0]:.1f}")
print(result.cost.summary())

# %% [markdown]
# The mean is off in the fifth decimal: $1/3$ is a fixed-point number with 16
# fractional bits. The product is exact. Concilium warned that the Beaver
# triple came from a *trusted dealer*, a third party that must not collude;
# `mpc.run(..., preprocessing="ot")` makes triples without one, at a higher cost.
#
# ## What each party sees
#
# Party 1's view: every message it received, with its sender and tag. The
# input shares are 16-byte PRG seeds (a share can be compressed to a seed); the
# `mul` and `open` messages are ring elements masked by fresh randomness.
# Nothing in this list depends on the other salaries except the opened results.

# %%
for sender, tag, arrays in result.views[1]:
    who = "dealer" if sender < 0 else f"party {sender}"
    first = arrays[0].ravel()[:2]
    print(f"from {who:<7} tag {tag:<12} {len(arrays)} array(s), first values {first}")

# %% [markdown]
# ## The transcript page, inline
#
# The same run as a page: parties are lanes, messages are arrows; payloads are
# never written, only sizes and how random they look, and the values the
# program published. (`result.transcript.write_html("run.html")` writes it as
# a file.)

# %%
page = render(result.transcript, title="Three salaries, one mean", labels=["Ann", "Bob", "Cy"])
try:
    from IPython.display import HTML, display
    display(HTML(f'<div><iframe srcdoc="{html.escape(page)}" width="100%" height="560" '
                 'style="border: 1px solid #ccc"></iframe></div>'))
except ImportError:                                    # plain Python: write a file instead
    print("IPython is missing: use result.transcript.write_html('run.html')")
print(f"transcript page: {len(page):,} characters, {len(result.transcript.messages)} messages")

# %% [markdown]
# ## What you learned
#
# * Additive secret sharing: $n$ random-looking numbers that add up to the
#   secret modulo $2^{64}$; any $n-1$ of them are uniform, whatever the secret.
# * Sums of secrets are local; a product of secrets needs a Beaver triple and one
#   round; only `reveal()` opens a value.
# * `mpc.run(..., record_view=True)` shows what each party received, and the
#   transcript shows every message, its size and what was published.
# * Reals are fixed point (16 fractional bits), so divisions carry a small,
#   bounded error.
#
# Next: tutorial 2, Yao's millionaires, where two parties compare numbers with
# a garbled circuit.
