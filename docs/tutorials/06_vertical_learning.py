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
# # 6. Vertical learning: PSI, then training on split features
#
# A clinic and a laboratory see many of the same patients, but each holds
# different columns: the clinic has 15 measurements and the diagnosis, the lab
# 15 other measurements. Neither may reveal which patients it has, nor their
# values. First they find their common patients by **private set intersection**
# (PSI); then they train one logistic regression on the joined columns, on
# secret shares.
#
# *Needs:* `pip install 'concilium[plot,sklearn]'`. Runs in a few seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer

import mpc
from ml import vertical
from mpc.transcript import byte_entropy
from protocols.psi import psi

# %% [markdown]
# ## PSI on a small example
#
# Each party hashes its IDs to curve points and blinds them with a secret
# scalar; each blinds the other's points once more; since blinding commutes,
# doubly blinded points match exactly when the IDs match (Meadows 1986,
# Huberman et al. 1999, here over Curve25519). The receiver (party 0) learns the
# intersection; the sender gets no output (it sees how many items the receiver
# has, no more). `output="size"` gives the receiver only the size.

# %%
def find_common(party, items):
    return psi(party, items)


small = mpc.run(find_common, parties=2, inputs=[["ann", "bob", "cy", "dee"], ["cy", "eve", "ann"]],
                preprocessing=None)
print("the clinic learns:", small.outputs[0])
print("the lab learns:   ", small.outputs[1], "(only the receiver gets the intersection)")
size_only = mpc.run(lambda party, items: psi(party, items, output="size"), parties=2,
                    inputs=[["ann", "bob", "cy", "dee"], ["cy", "eve", "ann"]], preprocessing=None)
print("with output='size':", size_only.outputs[0])

# %% [markdown]
# ## The two tables
#
# Scikit-learn's breast cancer data stands in for the patients: 569 IDs, of
# which the clinic has 480 and the lab 509, in common 420 (neither knows which).

# %%
X, y = load_breast_cancer(return_X_y=True)
ids = np.array([f"patient-{i:04d}" for i in range(len(y))])
order = np.random.default_rng(0).permutation(len(y))    # simulated enrolment
clinic_rows, lab_rows = np.sort(order[:480]), np.sort(order[60:])
clinic = (list(ids[clinic_rows]), X[clinic_rows, :15], y[clinic_rows])   # IDs, columns, labels
lab = (list(ids[lab_rows]), X[lab_rows, 15:], None)                     # IDs, other columns

psi_run = mpc.run(find_common, parties=2, inputs=[clinic[0], lab[0]], preprocessing=None,
                  record_view=True)
print(f"common patients: {len(psi_run.outputs[0])}")
print(psi_run.cost.summary())
for sender, tag, arrays in psi_run.views[0]:
    big = max(arrays, key=lambda a: a.nbytes)
    print(f"the clinic received {tag}: {big.shape[0]} points of {big.shape[1]} bytes, "
          f"byte entropy {byte_entropy(big.tobytes()):.2f} bits/byte")

# %% [markdown]
# The lab's points arrive in a random order and look random: the clinic learns
# which of *its own* IDs are common, nothing about the lab's other patients.
#
# ## Training on split features
#
# `vertical.align` runs the PSI so that both parties get the common IDs in the
# same order and their own row for each. `vertical.fit_ss` then runs
# full-batch gradient descent on additive secret shares: each party shares its
# (standardised) columns, the clinic shares the labels, the sigmoid is a
# piecewise-linear approximation computed with secure comparisons. At the end
# each party holds the weights of *its own* columns only.

# %%
ITERATIONS = 60            # try 300 on your laptop


def program(party, table):
    ids, X_own, y_own = table                        # y_own is None at the lab
    common, rows = vertical.align(party, ids)
    X_own = X_own[rows]
    y_own = None if y_own is None else y_own[rows]
    n_train = int(0.8 * len(common))
    model = vertical.fit_ss(party, X_own[:n_train], None if y_own is None else y_own[:n_train],
                            iterations=ITERATIONS)
    probs = vertical.predict_proba(party, X_own[n_train:], model)   # the clinic only
    return common, n_train, probs


res = mpc.run(program, parties=2, inputs=[clinic, lab])
common, n_train, probs = res.outputs[0]
rows = np.searchsorted(ids, common)                  # only to score the result here
y_test = y[rows[n_train:]]
accuracy = np.mean((probs > 0.5) == y_test)
print(f"trained on {n_train} common patients, tested on {len(y_test)}")
print(f"secure vertical model: test accuracy {accuracy:.3f}")
print(f"cost: {res.cost.rounds} rounds, {sum(res.cost.bytes_sent.values()) / 1e6:.1f} MB")

# %% [markdown]
# ## Against the same training in the clear
#
# `vertical.fit_plain` is the same algorithm on all columns in one place (what a
# single hospital with both tables would do): the same piecewise sigmoid in
# training, the exact sigmoid for the probabilities. They should match up to
# fixed-point error.

# %%
blocks = [X[rows[:n_train], :15], X[rows[:n_train], 15:]]
w, b = vertical.fit_plain(blocks, y[rows[:n_train]], iterations=ITERATIONS)
train_all = np.concatenate(blocks, axis=1)
test_all = X[rows[n_train:]]
z = (test_all - train_all.mean(axis=0)) / train_all.std(axis=0) @ w + b
plain_probs = 1 / (1 + np.exp(-z))                  # predict_proba applies the exact sigmoid
gap = np.abs(probs - plain_probs).max()
print(f"max |secure - plaintext| probability: {gap:.1e}")

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(plain_probs, probs, s=12)
ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
ax.set_xlabel("plaintext probability")
ax.set_ylabel("secure probability")
ax.set_title("Vertical training: secure vs plaintext")
plt.show()

# %% [markdown]
# ## What you learned
#
# * PSI finds the common IDs; the receiver learns the intersection, the sender
#   nothing but the receiver's set size, and every point exchanged looks random.
# * `ml.vertical.align` lines up the rows, `fit_ss` trains one model on columns
#   split between parties, and each party keeps only its own block of weights.
# * The secure model matches training in the clear up to fixed-point error
#   (`fit_paillier` does the same with Paillier, with no third party at all).
#
# Next: tutorial 7, writing a protocol of your own.
