"""Vertical logistic regression: PSI alignment, secret-shared training against plaintext, privacy."""

import threading
import warnings

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from ml import vertical as V
from ml.vertical import paillier_steps, paillier_train
from mpc.errors import ParameterError


def _toy(n=80, d=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sum(d))) * rng.uniform(0.5, 3, sum(d)) + rng.normal(size=sum(d))
    w = rng.normal(size=sum(d))
    y = (X @ w - (X @ w).mean() + 0.5 * rng.normal(size=n) > 0).astype(int)
    cuts = np.cumsum((0,) + d)
    return [X[:, cuts[k]:cuts[k + 1]] for k in range(len(d))], y


# -- alignment ------------------------------------------------------------------------------
def test_align_two_parties_int_ids():
    rng = np.random.default_rng(1)
    ids_a = rng.choice(10**6, 300, replace=False)
    ids_b = np.concatenate([rng.permutation(ids_a)[:120], rng.choice(10**6, 50) + 10**6])
    res = mpc.run(lambda party, ids: V.align(party, ids), parties=2, inputs=[ids_a, ids_b],
                  preprocessing=None)
    want = np.sort(np.intersect1d(ids_a, ids_b))
    for (common, rows), ids in zip(res.outputs, (ids_a, ids_b)):
        assert np.array_equal(common, want)
        assert np.array_equal(ids[rows], want)


def test_align_three_parties_string_ids_and_label_party():
    a = [f"c{k}" for k in range(0, 60)]
    b = [f"c{k}" for k in range(20, 90)][::-1]
    c = [f"c{k}" for k in range(0, 100, 3)]
    res = mpc.run(lambda party, ids: V.align(party, ids, label_party=1), parties=3, inputs=[a, b, c],
                  preprocessing=None)
    want = sorted(set(a) & set(b) & set(c))
    for (common, rows), ids in zip(res.outputs, (a, b, c)):
        assert list(common) == want
        assert [ids[r] for r in rows] == want


@settings(max_examples=10, deadline=None)
@given(sets=st.lists(st.sets(st.integers(0, 40), max_size=25), min_size=2, max_size=3),
       label=st.integers(0, 2))
def test_align_property(sets, label):
    label %= len(sets)
    ids = [np.array(sorted(s), dtype=np.int64)[::-1] for s in sets]
    res = mpc.run(lambda party, i: V.align(party, i, label_party=label), parties=len(sets),
                  inputs=ids, preprocessing=None)
    want = sorted(set.intersection(*sets))
    for (common, rows), mine in zip(res.outputs, ids):
        assert common.tolist() == want and mine[rows].tolist() == want


def test_align_rejects_duplicate_ids():
    with pytest.raises(ParameterError, match="distinct"):
        mpc.run(lambda party, ids: V.align(party, ids), parties=2,
                inputs=[np.array([1, 2, 2]), np.array([2])], preprocessing=None)


# -- training -------------------------------------------------------------------------------
def _fit(blocks, y, parties=2, label_party=0, **kw):
    def prog(party, X):
        return V.fit_ss(party, X, y if party.id == label_party else None,
                        label_party=label_party, **kw)

    return mpc.run(prog, parties=parties, inputs=blocks, timeout=120)


@pytest.mark.parametrize("parties,label_party", [(2, 0), (3, 2)])
def test_secret_shared_training_matches_plaintext(parties, label_party):
    blocks, y = _toy(d=(2, 3) if parties == 2 else (2, 1, 2))
    res = _fit(blocks, y, parties, label_party, iterations=25, lr=0.5)
    w, b = V.fit_plain(blocks, y, iterations=25, lr=0.5)
    got = np.concatenate([m.weights for m in res.outputs])
    assert np.max(np.abs(got - w)) < 2e-3
    assert abs(res.outputs[label_party].intercept - b) < 2e-3
    assert all(m.intercept == 0.0 for p, m in enumerate(res.outputs) if p != label_party)
    # each party keeps only its own block (and its own standardisation)
    assert [len(m.weights) for m in res.outputs] == [blk.shape[1] for blk in blocks]
    assert np.allclose(res.outputs[0].mean, blocks[0].mean(axis=0))


def test_exact_sigmoid_activation_matches_plaintext():
    blocks, y = _toy(n=40)
    res = _fit(blocks, y, iterations=4, lr=0.5, activation="sigmoid")
    w, b = V.fit_plain(blocks, y, iterations=4, lr=0.5, activation="sigmoid")
    assert np.max(np.abs(np.concatenate([m.weights for m in res.outputs]) - w)) < 2e-3
    with pytest.raises(ParameterError, match="activation"):
        _fit(blocks, y, iterations=1, activation="relu")


def test_prediction_opens_only_at_the_label_party():
    blocks, y = _toy()
    model_res = _fit(blocks, y, iterations=10)
    models = model_res.outputs

    def prog(party, X):
        return V.predict_proba(party, X, models[party.id])

    res = mpc.run(prog, parties=2, inputs=[b[:7] for b in blocks], preprocessing=None)
    assert res.outputs[1] is None
    z = sum(m.partial_logits(b[:7]) for m, b in zip(models, blocks))
    assert np.allclose(res.outputs[0], 1 / (1 + np.exp(-z)), atol=1e-4)


@pytest.mark.parametrize("method", ["ss", "paillier"])
def test_breast_cancer_accuracy_close_to_sklearn(method):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    blocks = [Xtr[:, :15], Xtr[:, 15:]]
    # Paillier: the default clipped sigmoid on shares (512-bit test keys, dealer for the comparisons)
    models = (_fit(blocks, ytr, iterations=120) if method == "ss" else _fit_paillier(blocks, ytr)).outputs
    z = models[0].partial_logits(Xte[:, :15]) + models[1].partial_logits(Xte[:, 15:])
    acc = float(((z > 0) == yte).mean())
    sc = StandardScaler().fit(Xtr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(max_iter=2000).fit(sc.transform(Xtr), ytr).score(sc.transform(Xte), yte)
    assert abs(acc - ref) <= 0.01 + 1e-9


# -- errors and privacy ----------------------------------------------------------------------
def test_bad_training_inputs_rejected():
    blocks, y = _toy()
    with pytest.raises(ParameterError, match="not the label party"):
        mpc.run(lambda party, X: V.fit_ss(party, X, y), parties=2, inputs=blocks)
    with pytest.raises(ParameterError, match="passed no labels"):
        mpc.run(lambda party, X: V.fit_ss(party, X, None), parties=2, inputs=blocks)
    with pytest.raises(ParameterError, match="0 or 1"):
        _fit(blocks, y * 2)
    with pytest.raises(ParameterError, match="row counts"):
        _fit([blocks[0], blocks[1][:-1]], y)
    with pytest.raises(ParameterError, match="2-D"):
        _fit([blocks[0][:, 0], blocks[1]], y)
    with pytest.raises(ParameterError, match="iterations"):
        _fit(blocks, y, iterations=-1)


def test_feature_party_view_does_not_depend_on_labels():
    # Everything party 1 (no labels) receives from party 0 while training is masked by
    # uniform shares: same tags and shapes, and bytes that look uniform, whatever the labels.
    blocks, _ = _toy(n=64)

    def view(y):
        def prog(party, X):
            return V.fit_ss(party, X, y if party.id == 0 else None, iterations=3)

        res = mpc.run(prog, parties=2, inputs=blocks, record_view=True)
        msgs = [(tag, arrs) for frm, tag, arrs in res.views[1] if frm == 0]
        low = np.concatenate([a.view(np.uint8).reshape(-1, a.dtype.itemsize)[:, 0]
                              for _, arrs in msgs for a in arrs if a.dtype == np.uint64 and a.size])
        return [(t, [a.shape for a in arrs]) for t, arrs in msgs], low

    shapes0, low0 = view(np.zeros(64, int))
    shapes1, low1 = view(np.ones(64, int))
    assert shapes0 == shapes1
    h0 = np.bincount(low0, minlength=256).astype(float)
    h1 = np.bincount(low1, minlength=256).astype(float)
    assert (((h0 - h1) ** 2) / np.maximum(h0 + h1, 1)).sum() < 400
    expected = h0.sum() / 256
    assert (((h0 - expected) ** 2) / expected).sum() < 400


def test_label_party_view_does_not_depend_on_the_other_features():
    blocks, y = _toy(n=64)

    def low_bytes(x1):
        def prog(party, X):
            return V.fit_ss(party, X, y if party.id == 0 else None, iterations=2)

        res = mpc.run(prog, parties=2, inputs=[blocks[0], x1], record_view=True)
        return np.concatenate([a.view(np.uint8).reshape(-1, 8)[:, 0] for frm, _, arrs in res.views[0]
                               if frm == 1 for a in arrs if a.dtype == np.uint64 and a.size])

    l0 = low_bytes(np.zeros_like(blocks[1]) + 1.0)
    l1 = low_bytes(blocks[1] * 1000)
    assert len(l0) == len(l1)
    h0 = np.bincount(l0, minlength=256).astype(float)
    h1 = np.bincount(l1, minlength=256).astype(float)
    assert (((h0 - h1) ** 2) / np.maximum(h0 + h1, 1)).sum() < 400


def test_empty_alignment_is_refused_by_training():
    def prog(party, ids):
        common, rows = V.align(party, ids)
        X = np.ones((len(ids), 2))[rows]
        return V.fit_ss(party, X, np.zeros(len(rows)) if party.id == 0 else None, iterations=1)

    with pytest.raises(ParameterError, match="no rows"):
        mpc.run(prog, parties=2, inputs=[np.arange(5), np.arange(10, 15)])


# -- Paillier (FATE-style) ----------------------------------------------------------------------
def _fit_paillier(blocks, y, parties=2, label_party=0, record_view=False, key_bits=512,
                  preprocessing="dealer", frac_bits=16, per_party=None, **kw):
    def prog(party, X):
        options = {**kw, **(per_party or {}).get(party.id, {})}
        return V.fit_paillier(party, X, y if party.id == label_party else None, label_party=label_party,
                              key_bits=key_bits, insecure_for_testing=True, **options)

    return mpc.run(prog, parties=parties, inputs=blocks, preprocessing=preprocessing, timeout=120,
                   record_view=record_view, frac_bits=frac_bits)


@pytest.mark.parametrize("activation", ["piecewise", "taylor"])
@pytest.mark.parametrize("parties,label_party", [(2, 0), (3, 1)])
def test_paillier_training_matches_plaintext(parties, label_party, activation):
    # 768-bit test keys hold 2 masked 300-bit slots per ciphertext: a 3-column party
    # sends 2 packed ciphertexts, one of them half full.
    blocks, y = _toy(n=45, d=(2, 3) if parties == 2 else (2, 1, 3))
    res = _fit_paillier(blocks, y, parties, label_party, epochs=2, batch_size=16, key_bits=768,
                        activation=activation,
                        preprocessing=None if activation == "taylor" else "dealer")
    w, b = V.fit_plain_minibatch(blocks, y, epochs=2, batch_size=16, activation=activation)
    got = np.concatenate([m.weights for m in res.outputs])
    assert np.max(np.abs(got - w)) < 1e-4
    assert abs(res.outputs[label_party].intercept - b) < 1e-4
    assert all(m.method == "paillier" for m in res.outputs)
    # setup, seeds, 3 per batch (6 batches), plus the comparison's 8 (2 parties) or 9 rounds
    per_batch = 3 + (0 if activation == "taylor" else 8 if parties == 2 else 9)
    assert res.cost.rounds == 1 + (parties > 2) + per_batch * 2 * 3
    # the piecewise residual is not the Taylor one: the two trainings differ
    other = V.fit_plain_minibatch(blocks, y, epochs=2, batch_size=16,
                                  activation="taylor" if activation == "piecewise" else "piecewise")
    assert np.max(np.abs(other[0] - w)) > 1e-3


@pytest.fixture
def exact_gradient_spy(monkeypatch):
    """Records every party's batch, residual share and returned gradient; ``check()``
    recomputes each gradient exactly from all the shares and counts mismatches."""
    log, lock = [], threading.Lock()
    original = paillier_train._gradient

    def spy(party, keys, pubs, widths, seeds, x_int, share, step):
        out = original(party, keys, pubs, widths, seeds, x_int, share, step)
        with lock:
            log.append((party.id, step, x_int.copy(), share.copy(), out.copy()))
        return out

    def check():
        steps = {}
        for pid, step, x, share, out in log:
            steps.setdefault(step, {})[pid] = (x, share, out)
        mismatches = 0
        for parts in steps.values():
            ring = sum(s.astype(object) for _, s, _ in parts.values()) % (1 << 64)
            d = np.array([v - (1 << 64) if v >= 1 << 63 else v for v in ring], dtype=object)
            for x, _, out in parts.values():
                mismatches += sum(float(e) != o for e, o in zip(x.astype(object).T.dot(d), out))
        return len(steps), mismatches

    monkeypatch.setattr(paillier_train, "_gradient", spy)
    return check


@pytest.mark.parametrize("activation", ["piecewise", "taylor"])
def test_paillier_gradients_exact_for_3_parties_other_frac_bits(exact_gradient_spy, activation):
    blocks, y = _toy(n=37, d=(2, 1, 3))
    res = _fit_paillier(blocks, y, parties=3, label_party=2, epochs=2, batch_size=10,
                        activation=activation, frac_bits=20)
    steps, mismatches = exact_gradient_spy()
    assert steps == 2 * 4 and mismatches == 0
    w, b = V.fit_plain_minibatch(blocks, y, epochs=2, batch_size=10, activation=activation)
    assert np.max(np.abs(np.concatenate([m.weights for m in res.outputs]) - w)) < 1e-4
    assert abs(res.outputs[2].intercept - b) < 1e-4


def test_paillier_taylor_stops_before_a_gradient_wraps(exact_gradient_spy):
    # Parties with very different column scales: the lab's columns are ~2^14 and not
    # standardised, the clinic's learning rate makes its partial logits explode. The
    # lab's gradient would wrap modulo 2^64 first unless every party caps its logits
    # with the largest column scale of all.
    rng = np.random.default_rng(3)
    X0, X1 = rng.normal(size=(48, 2)), rng.normal(size=(48, 2)) * 2**14
    y = (X0[:, 0] > 0).astype(int)
    with pytest.raises(ParameterError, match="diverged"):
        _fit_paillier([X0, X1], y, activation="taylor", preprocessing=None, epochs=30, batch_size=16,
                      per_party={0: {"lr": 20.0}, 1: {"lr": 1e-15, "standardize": False}})
    steps, mismatches = exact_gradient_spy()
    assert steps > 0 and mismatches == 0


def test_paillier_refuses_batches_beyond_the_fixed_point_budget():
    blocks, y = _toy(n=40)
    big = [blocks[0] * 2.0**28, blocks[1]]
    with pytest.raises(ParameterError, match="fixed-point budget"):
        _fit_paillier(big, y, standardize=False, activation="taylor", preprocessing=None)


def test_paillier_decryptors_hide_their_separate_terms(monkeypatch):
    # Three parties: what party p gets back from each decryptor q is X_p^T d_q plus p's own
    # slot mask plus q's part of a zero-sum mask. With p's slot masks forced to zero, each
    # message must still be uniform (the zero-sum masks alone hide q's term) and fresh
    # per batch; without them the top bytes would be 0x00 or 0xff.
    monkeypatch.setattr(paillier_steps, "_random_bits", lambda prg, count, bits: [0] * count)
    blocks, y = _toy(n=96, d=(2, 2, 2))
    res = _fit_paillier(blocks, y, parties=3, record_view=True, epochs=1, batch_size=4,
                        activation="taylor", preprocessing=None)
    tops = []
    for p in range(3):
        got = [a[0] for frm, tag, a in res.views[p] if tag.endswith("unmasked")]
        assert len(got) == 2 * 24                       # two decryptors, 24 batches
        tops += [a.view(np.uint8).reshape(-1, 8)[:, 7] for a in got]
    hist = np.bincount(np.concatenate(tops), minlength=256)
    assert hist.sum() == 24 * 2 * (3 + 2 + 2)
    assert hist.max() < 12 and (hist > 0).sum() > 150   # uniform: ~187 distinct of 256 expected


def test_paillier_malformed_messages_are_refused(monkeypatch):
    from mpc.errors import ProtocolError
    from mpc.he import paillier

    def two_arrays(party):
        if party.id == 0:
            party.send(1, "x", np.zeros(2, np.uint64), np.zeros(2, np.uint64))
        else:
            paillier_steps._recv_one(party, 0, "x")

    with pytest.raises(ProtocolError, match="2 arrays"):
        mpc.run(two_arrays, parties=2, preprocessing=None)
    public = paillier.keygen(512, insecure_for_testing=True).public
    with pytest.raises(ProtocolError, match="residuals"):
        paillier_steps._load_cts(public, np.frombuffer(b"garbage" * 20, np.uint8), (3,), "residuals")
    keys = paillier.keygen(512, insecure_for_testing=True)
    from mpc.he.packing import Packing, encrypt_packed
    foreign = encrypt_packed(keys.public, [1, 2], Packing(value_bits=32))
    with pytest.raises(ProtocolError, match="masked values"):       # not the agreed layout
        paillier_steps._open_masked(keys, np.frombuffer(foreign.serialize(), np.uint8), 2, "gradient")
    monkeypatch.setattr(paillier_steps, "_open_masked", lambda keys, raw, count, what: np.zeros(count))  # float64
    blocks, y = _toy(n=20)
    with pytest.raises(ProtocolError, match="uint64"):
        _fit_paillier(blocks, y, activation="taylor", preprocessing=None)


def test_paillier_dealer_free_with_ot_preprocessing():
    # Two parties, OT preprocessing for the comparisons: nobody else sends anything.
    blocks, y = _toy(n=24)
    res = _fit_paillier(blocks, y, preprocessing="ot", epochs=1, batch_size=16)
    assert set(res.cost.bytes_sent) == {0, 1}
    w, b = V.fit_plain_minibatch(blocks, y, epochs=1, batch_size=16)
    assert np.max(np.abs(np.concatenate([m.weights for m in res.outputs]) - w)) < 1e-4
    assert abs(res.outputs[0].intercept - b) < 1e-4


def test_paillier_refuses_small_keys_and_bad_parameters():
    blocks, y = _toy(n=20)
    with pytest.raises(ParameterError, match="insecure"):
        mpc.run(lambda party, X: V.fit_paillier(party, X, y if party.id == 0 else None, key_bits=1024,
                                                          activation="taylor"),
                parties=2, inputs=blocks, preprocessing=None)
    with pytest.raises(ParameterError, match="batch_size"):
        _fit_paillier(blocks, y, batch_size=0)
    with pytest.raises(ParameterError, match="activation"):
        _fit_paillier(blocks, y, activation="sigmoid")
    with pytest.raises(ParameterError, match="diverged"):
        _fit_paillier(blocks, y * 0 + 1, activation="taylor", lr=50.0, epochs=20, preprocessing=None)


def test_paillier_piecewise_without_preprocessing_says_what_to_do():
    blocks, y = _toy(n=20)
    with pytest.raises(ParameterError, match="preprocessing='ot'.*activation='taylor'"):
        _fit_paillier(blocks, y, preprocessing=None, epochs=1)


@pytest.mark.parametrize("activation", ["piecewise", "taylor"])
def test_paillier_returned_gradients_are_masked(activation):
    # What the feature party gets back in the clear (step 4) is uniform modulo 2^64
    # whatever the labels: compare its bytes for all-0 and all-1 labels.
    blocks, _ = _toy(n=64)

    def returned(y):
        res = _fit_paillier(blocks, y, record_view=True, epochs=1, batch_size=8, activation=activation)
        arrs = [a[0] for frm, tag, a in res.views[1] if tag.endswith("unmasked")]
        assert len(arrs) == 8 and all(a.dtype == np.uint64 and a.shape == (3,) for a in arrs)
        return np.concatenate([a.view(np.uint8).ravel() for a in arrs])

    b0, b1 = returned(np.zeros(64, int)), returned(np.ones(64, int))
    h0 = np.bincount(b0, minlength=256).astype(float)
    h1 = np.bincount(b1, minlength=256).astype(float)
    assert (((h0 - h1) ** 2) / np.maximum(h0 + h1, 1)).sum() < 400
    assert (((h0 - h0.mean()) ** 2) / h0.mean()).sum() < 400


def test_align_accepts_every_id_kind_psi_accepts():
    a = [bytearray(b"id-1"), b"id-2", memoryview(b"id-3")]
    b = [b"id-3", b"id-1", b"id-9"]
    res = mpc.run(lambda party, ids: V.align(party, ids), parties=2, inputs=[a, b], preprocessing=None)
    (common0, rows0), (common1, rows1) = res.outputs
    assert common0 == common1 == [b"id-1", b"id-3"]
    assert rows0.tolist() == [0, 2] and rows1.tolist() == [1, 0]


def test_paillier_progress_counts_every_mini_batch_step():
    # n=45, batch 16: 3 steps per epoch; each party reports its own steps
    blocks, y = _toy(n=45)
    steps = {0: 0, 1: 0}

    def prog(party, X):
        def tick(k):
            steps[party.id] += k
        return V.fit_paillier(party, X, y if party.id == 0 else None, epochs=2, batch_size=16,
                              key_bits=512, insecure_for_testing=True, activation="taylor",
                              progress=tick)

    mpc.run(prog, parties=2, inputs=blocks, preprocessing=None, timeout=120)
    assert steps == {0: 6, 1: 6}
