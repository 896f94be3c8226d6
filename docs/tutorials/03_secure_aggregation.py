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
# # 3. Secure aggregation: masks that cancel, a client that drops
#
# A server wants the sum of many phones' vectors (model updates, counts) and
# must not see any single one. We build pairwise masks by hand, watch them
# cancel, watch a dropout break them, and then run SecAgg (Bonawitz et al.
# 2017), which survives dropouts, and SecAgg+ (Bell et al. 2020), which scales.
#
# *Needs:* `pip install 'concilium[plot]'` (matplotlib). Runs in a few seconds;
# the cost plot uses up to 100 simulated phones (try 1000 on your laptop).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from protocols.secagg import aggregate

rng = np.random.default_rng(7)          # simulated phone data only, never for masks
n, dim = 4, 6
updates = [rng.integers(0, 100, dim).astype(np.uint32) for _ in range(n)]
print("plaintext sum:", sum(u.astype(np.int64) for u in updates))

# %% [markdown]
# ## Pairwise masks, by hand
#
# Every pair of phones $u < v$ agrees on a random mask $m_{uv}$ (in SecAgg from
# a Diffie-Hellman key, expanded by a PRG). Phone $u$ adds $m_{uv}$, phone $v$
# subtracts it, modulo $2^{32}$. Each masked vector is uniformly random; in the
# sum, every mask appears once with $+$ and once with $-$.

# %%
def random_mask(dim: int) -> np.ndarray:
    return np.frombuffer(os.urandom(4 * dim), dtype=np.uint32).copy()


masks = {(u, v): random_mask(dim) for u in range(n) for v in range(u + 1, n)}


def masked_input(u: int) -> np.ndarray:
    y = updates[u].copy()
    for (a, b), m in masks.items():
        if a == u:
            y += m                      # uint32 arithmetic wraps modulo 2^32
        elif b == u:
            y -= m
    return y


received = {u: masked_input(u) for u in range(n)}
for u, y in received.items():
    print(f"server receives from phone {u}: {y}")
print("sum of what it received:", sum(received.values()))

# %% [markdown]
# ## A phone drops
#
# If phone 2 goes offline after the masks were agreed, its masks no longer
# cancel and the sum is garbage:

# %%
survivors = [0, 1, 3]
print("sum of survivors, masks left in:", sum(received[u] for u in survivors))
print("what it should be:            ", sum(updates[u].astype(np.uint32) for u in survivors))

# %% [markdown]
# SecAgg repairs this: each phone Shamir-shares its mask key among the others,
# so the survivors can hand the server phone 2's key and the server removes
# phone 2's masks itself. That would let a server that *pretends* a phone
# dropped unmask it, so each phone also adds a **self-mask** whose seed is
# shared too; for each phone, the survivors reveal either the self-mask seed
# (it is alive) or the mask key (it dropped), never both. That is *double
# masking*, four rounds: advertise keys, share, masked input, unmask.
#
# ## SecAgg in one call
#
# `aggregate` quantises float vectors into a ring large enough for the sum and
# runs the four rounds. Phone 2 drops before sending its masked input:

# %%
floats = [rng.normal(0, 1, dim) for _ in range(5)]
result = aggregate(floats, variant="secagg", dropouts=[2], record_view=True)
plain = sum(floats[u] for u in result.survivors)
print(f"survivors: {result.survivors}, dropped: {result.dropped}")
print("secure sum:   ", np.round(result.total, 4))
print("plaintext sum:", np.round(plain, 4))
err = np.abs(result.total - plain).max()
print(f"max error {err:.2e} (quantisation bound {result.error_bound:.2e}): "
      f"within bound {err <= result.error_bound}")

# %% [markdown]
# What the server received, round by round: public keys, encrypted shares,
# masked vectors (ring elements that look uniform) and the unmasking shares.

# %%
for client, round_name, message in result.view:
    sizes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in message)
    print(f"phone {client}  {round_name:<10} {sizes}")

# %% [markdown]
# ## SecAgg vs SecAgg+: what it costs
#
# In SecAgg every phone shares with every other phone, so its work and bytes
# grow linearly with the number of phones $n$, and the server's quadratically.
# SecAgg+ pairs each phone only with $k = O(\log n)$ random neighbours, at a
# stated (tiny) failure probability. We measure both with 10% dropouts.

# %%
sizes = [10, 25, 50, 100]                    # try [100, 300, 1000] on your laptop
costs = {"secagg": [], "secagg+": []}
for clients in sizes:
    vectors = [rng.normal(0, 0.1, 100) for _ in range(clients)]
    for variant in costs:
        res = aggregate(vectors, variant=variant, dropouts=0.1)
        costs[variant].append((res.cost.bytes_per_client, res.config.degree, res.cost.server_seconds))
for variant, rows in costs.items():
    print(variant, "neighbours per phone:", [k for _, k, _ in rows],
          "kB per phone:", [round(b / 1e3, 1) for b, _, _ in rows])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
for variant, rows in costs.items():
    ax1.plot(sizes, [b / 1e3 for b, _, _ in rows], marker="o", label=variant)
    ax2.plot(sizes, [s for _, _, s in rows], marker="o", label=variant)
ax1.set_xlabel("phones")
ax1.set_ylabel("kB sent + received per phone")
ax1.legend()
ax2.set_xlabel("phones")
ax2.set_ylabel("server seconds")
ax2.legend()
fig.suptitle("SecAgg vs SecAgg+ (100 values per phone, 10% dropouts)")
plt.show()

# %% [markdown]
# ## What you learned
#
# * Pairwise masks hide each vector and cancel in the sum, so the server learns
#   only the total.
# * A dropout leaves its masks in the sum; SecAgg recovers them from Shamir
#   shares, and double masking stops a server that lies about who dropped.
# * `protocols.secagg.aggregate` runs the whole protocol; the error against the
#   plaintext sum stays within the stated quantisation bound.
# * SecAgg's cost per phone grows with $n$; SecAgg+ replaces "everyone" with a
#   logarithmic number of neighbours.
#
# Next: tutorial 4 trains a model with these sums.
