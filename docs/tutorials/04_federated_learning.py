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
# # 4. Federated learning: FedAvg over SecAgg, CKKS and Paillier, then DP
#
# Five hospitals train one breast-cancer classifier. Each round, the server
# sends the model, each hospital trains on its own patients, and the server
# averages the updates (FedAvg, McMahan et al. 2017) through a *secure* sum, so
# it never sees one hospital's update. We compare three secure sums with the
# plaintext average, then add differential privacy and measure what it costs
# in accuracy.
#
# *Needs:* `pip install 'concilium[plot,sklearn]'` (matplotlib, scikit-learn for
# the data set). Runs in about ten seconds.

# %%
import matplotlib.pyplot as plt

from sklearn.datasets import load_breast_cancer

from ml.data import partition_dirichlet, split_clients, standardize, train_test_split
from ml.federated import DPConfig, train
from ml.models import LogisticRegression

X, y = load_breast_cancer(return_X_y=True)
X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.2, seed=0)
X_train, X_test = standardize(X_train, X_test)
# non-IID: some hospitals see mostly benign cases, others mostly malignant ones
hospitals = split_clients(X_train, y_train,
                          partition_dirichlet(y_train, 5, alpha=0.5, seed=3, min_size=20))
print("patients per hospital:", [len(yh) for _, yh in hospitals])
print("malignant share per hospital:", [round(float(1 - yh.mean()), 2) for _, yh in hospitals])

# %% [markdown]
# ## One training, four ways to sum
#
# `train` takes the aggregator by name; nothing else changes:
#
# * `"plaintext"`: the server sees every update (the baseline);
# * `"secagg"`: pairwise and self masks (tutorial 3);
# * `"ckks"`: each hospital encrypts its update under a shared CKKS key
#   (approximate homomorphic encryption), the server adds ciphertexts;
# * `"paillier"`: the same with Paillier's additively homomorphic scheme.

# %%
settings = dict(rounds=8, local_epochs=2, batch_size=16, lr=0.1, seed=1, progress=False)
histories = {}
for aggregator in ["plaintext", "secagg", "ckks", "paillier"]:
    model = LogisticRegression(X_train.shape[1], l2=1e-3)
    histories[aggregator] = train(model, hospitals, (X_test, y_test), aggregator=aggregator,
                                  **settings)
for name, h in histories.items():
    seconds = sum(r.seconds for r in h.rounds)
    print(f"{name:<9} final accuracy {h.final_accuracy:.4f}   "
          f"{h.rounds[-1].bytes_per_client / 1e3:6.1f} kB per hospital per round   {seconds:.2f} s")

# %% [markdown]
# The accuracies agree: secure aggregation changes *who sees what*, not the
# model (the quantisation and CKKS errors are far below what training notices).
# The costs differ: CKKS ciphertexts are large; Paillier is the slowest to
# compute.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
for k, (name, h) in enumerate(histories.items()):      # shrinking markers: the curves coincide
    ax1.plot([r.round for r in h.rounds], [r.accuracy for r in h.rounds], marker="o",
             markersize=10 - 2 * k, label=name)
ax1.set_xlabel("round")
ax1.set_ylabel("test accuracy")
ax1.legend()
ax1.set_title("four curves, one on top of the other")
names = list(histories)
ax2.bar(names, [histories[n].rounds[-1].bytes_per_client / 1e3 for n in names])
ax2.set_ylabel("kB per hospital per round")
fig.suptitle("FedAvg: the same model whatever the secure sum; different costs")
plt.show()

# %% [markdown]
# ## Differential privacy and its accuracy cost
#
# A secure sum hides each update, but the *model* can still reveal a patient.
# Differential privacy bounds that: each client clips its update to norm $C$
# and Gaussian noise is added to the sum. Two modes:
#
# * `"central"`: the server adds the noise (it must be trusted to do so);
# * `"distributed"`: every client adds a share of discrete Gaussian noise
#   before the secure sum, so nobody ever sees a less noisy value.
#
# Noise is calibrated to the number of clients, so DP needs many of them: we
# split the same patients over 50 clients and sweep the target $\varepsilon$
# (smaller is more private). The noise is fresh on every run and each point is
# a single run, so the curve is bumpy, most of all at small epsilon; average a
# few runs per point on your laptop for a smooth one. Every round spends part of
# the privacy budget, so these runs take 5 rounds instead of 8.

# %%
many = split_clients(X_train, y_train, partition_dirichlet(y_train, 50, alpha=5, seed=3, min_size=5))
dp_settings = {**settings, "rounds": 5}
no_dp = train(LogisticRegression(X_train.shape[1], l2=1e-3), many, (X_test, y_test),
              aggregator="plaintext", **dp_settings).final_accuracy
epsilons = [0.5, 1, 2, 4, 8]
central = []
for eps in epsilons:
    h = train(LogisticRegression(X_train.shape[1], l2=1e-3), many, (X_test, y_test),
              aggregator="plaintext", dp=DPConfig("central", clip=1.0, epsilon=eps), **dp_settings)
    central.append(h.final_accuracy)
distributed_eps = [2]                         # SecAgg+, noise at every client; try [1, 2, 8]
distributed = []
for eps in distributed_eps:
    h = train(LogisticRegression(X_train.shape[1], l2=1e-3), many, (X_test, y_test),
              aggregator="secagg+", dp=DPConfig("distributed", clip=1.0, epsilon=eps), **dp_settings)
    distributed.append(h.final_accuracy)
    print(f"distributed DP, target epsilon {eps}: accounted {h.rounds[-1].epsilon:.2f}, "
          f"accuracy {h.final_accuracy:.4f}")
print(f"no DP, 50 clients: accuracy {no_dp:.4f}")
for eps, acc in zip(epsilons, central):
    print(f"central DP, epsilon {eps}: accuracy {acc:.4f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.axhline(no_dp, color="grey", linestyle="--", label="no DP")
ax.plot(epsilons, central, marker="o", label="central DP")
ax.plot(distributed_eps, distributed, marker="s", linestyle="", label="distributed DP (SecAgg+)")
ax.set_xscale("log")
ax.set_xlabel("epsilon (after all rounds)")
ax.set_ylabel("test accuracy")
ax.set_title("The price of privacy: accuracy against epsilon")
ax.legend()
plt.show()

# %% [markdown]
# ## What you learned
#
# * `ml.federated.train(..., aggregator=...)` runs FedAvg over a plaintext,
#   SecAgg, CKKS or Paillier sum; the model is the same, the costs differ.
# * Secure aggregation hides each update from the server; differential privacy
#   limits what the final model reveals about any one client.
# * DP costs accuracy, more for smaller $\varepsilon$ and fewer clients;
#   distributed DP removes the need to trust the server with the noise.
#
# Next: tutorial 5 uses a trained model without seeing the query.
