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
# # 5. Private inference: one model, secret sharing and CKKS side by side
#
# A clinic owns a digit classifier; a user owns an image. The user wants the
# label without showing the image, the clinic without giving away its weights.
# Two answers:
#
# * **secret sharing** (two parties, interactive): model and image are both
#   secret-shared, every layer is computed on shares;
# * **CKKS** (homomorphic encryption, one round): the user encrypts the image,
#   the server computes on the ciphertext and returns encrypted scores.
#
# We run the *same* network both ways and put cost and error side by side.
#
# *Needs:* `pip install 'concilium[plot,sklearn]'`. Runs in about ten seconds;
# CKKS key generation is most of it.

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from ml.inference.ckks import ckks_predict
from ml.inference.secure import secure_predict
from ml.inference.train import train_polynomial_mlp

X, y = load_digits(return_X_y=True)
X = X / 16                                        # pixels in [0, 1]: a public bound
X_train, y_train = X[:1200], y[:1200]
X_test, y_test = X[1200:], y[1200:]
queries = X_test[:8]                              # the user's images; try 64 on your laptop

# %% [markdown]
# ## One model for both
#
# CKKS evaluates additions and multiplications only, so the hidden layer uses
# the activation $x^2$ instead of ReLU (as in CryptoNets). Secret sharing could
# evaluate ReLU exactly with secure comparisons, but we keep the same network
# to compare like with like.

# %%
model = train_polynomial_mlp(X_train, y_train, hidden=(16,), epochs=150, lr=0.02)
print("\n".join(model.architecture()), f"\n{model.n_params} weights")
plain_scores = model.forward(queries)
plain_labels = plain_scores.argmax(axis=1)
print(f"plaintext test accuracy: {np.mean(model.predict(X_test) == y_test):.3f}")
print("plaintext labels of the queries:", plain_labels, "(true:", y_test[:8], ")")

# %% [markdown]
# ## Under secret sharing
#
# Party 0 holds the model, party 1 the images; both are shared, each layer is a
# Beaver matrix product, the square is one more product, and only the scores
# are opened to the data owner (or only the label, with `output="label"`).
# `input_bound=1.0` declares the public range of the pixels, so Concilium can
# check that no fixed-point value overflows.

# %%
ss = secure_predict(model, queries, output="scores", input_bound=1.0)
ss_error = np.abs(ss.outputs - plain_scores).max()
print(f"secret sharing: labels {ss.outputs.argmax(axis=1)}, max score error {ss_error:.1e}")
print(f"  {ss.cost.rounds} rounds, {sum(ss.cost.bytes_sent.values()):,} B, {ss.seconds:.2f} s")

# %% [markdown]
# ## Under CKKS
#
# The user makes the keys and sends the server a public context (no secret key)
# and the encrypted images; the server evaluates the network on ciphertexts. The
# `vector` layout packs one image per ciphertext.

# %%
he = ckks_predict(model, queries, layout="vector", input_bound=1.0)
he_error = np.abs(he.scores - plain_scores).max()
print(f"CKKS: labels {np.asarray(he.outputs)}, max score error {he_error:.1e}")
print(f"  one round; query {he.query_bytes:,} B, reply {he.reply_bytes:,} B, "
      f"public context {he.context_bytes:,} B (once per user)")
print(f"  server {he.server_seconds:.2f} s, client {he.client_seconds:.2f} s, setup {he.setup_seconds:.2f} s")

# %% [markdown]
# ## Side by side

# %%
rows = {
    "secret sharing": (sum(ss.cost.bytes_sent.values()), ss.seconds, ss_error, ss.cost.rounds),
    "CKKS": (he.query_bytes + he.reply_bytes + he.context_bytes,
             he.setup_seconds + he.client_seconds + he.server_seconds, he_error, 1),
}
print(f"{'':<15} {'bytes':>12} {'seconds':>8} {'max error':>10} {'rounds':>7}")
for name, (b, s, e, r) in rows.items():
    print(f"{name:<15} {b:>12,} {s:>8.2f} {e:>10.1e} {r:>7}")
same = (np.array_equal(ss.outputs.argmax(axis=1), plain_labels)
        and np.array_equal(np.asarray(he.outputs), plain_labels))
print("both agree with the plaintext labels:", same)

fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, k, label in zip(axes, range(3), ["bytes", "seconds", "max score error"]):
    ax.bar(list(rows), [v[k] for v in rows.values()], color=["tab:blue", "tab:orange"])
    ax.set_yscale("log")
    ax.set_title(label)
fig.suptitle(f"The same network on {len(queries)} images")
plt.show()

# %% [markdown]
# Secret sharing needs many rounds (latency matters) but little computation;
# CKKS needs one round but large keys and ciphertexts, and seconds of
# computation. Fixed point has a fixed, tiny error; CKKS's error is
# approximate-arithmetic noise, also far below what changes a label.
#
# ## What you learned
#
# * `ml.inference.secure.secure_predict` runs a network on secret shares of both
#   the model and the input; `ml.inference.ckks.ckks_predict` runs it on CKKS
#   ciphertexts of the input.
# * HE needs polynomial activations (here $x^2$); secret sharing can also do
#   exact comparisons (ReLU, max pooling) at the price of more rounds.
# * The trade-off: rounds and bandwidth for secret sharing, key size and server
#   computation for CKKS; both stay within a small error of plaintext.
#
# Next: tutorial 6 trains a model on features split between parties.
