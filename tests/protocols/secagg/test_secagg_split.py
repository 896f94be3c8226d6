"""A server that splits the survivor list (issue 19, item 8), and the rule that stops it.

The malicious server runs rounds 0 to 2 honestly, then tells some of client u's
shareholders "u is alive" (they reveal shares of its self-mask seed b_u) and the
others "u dropped" (they reveal shares of its mask key s_u^SK). With t shares of
each it removes both masks from u's masked input. Client u itself answers as
alive, so the split needs t - 1 + t <= k honest neighbours: 2t <= k + 1.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import ParameterError, ProtocolAbort
from protocols.secagg import Client, SecAggConfig, Server, make_config, simulate
from protocols.secagg.rounds import ADVERTISE, MASKED, SHARE, UNMASK
from protocols.secagg import config as config_module
from protocols.secagg.crypto import MaskExpander, agree, mask_seed
from protocols.secagg.graph import choose
from protocols.secagg.sharing import KEY_ELEMS, SEED_ELEMS, decode_keys, decode_seeds, reconstruct

DIM = 5


def _values(n, config, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 1 << config.bits, DIM, dtype=np.uint64) for _ in range(n)]


def _split_attack(config, values, target):
    """The malicious server; returns the input of ``target`` it rebuilt from the split."""
    n, t = config.n, config.threshold
    clients = [Client(u, config, values[u]) for u in range(n)]
    server = Server(config)
    down = ADVERTISE.server_step(server, {u: ADVERTISE.client_step(c) for u, c in enumerate(clients)})
    down = SHARE.server_step(server, {u: SHARE.client_step(clients[u], down[u]) for u in range(n)})
    masked = {u: MASKED.client_step(clients[u], down[u]) for u in range(n)}
    MASKED.server_step(server, masked)
    holders = server.frm[target]            # the neighbours holding shares of the target
    if len(holders) < 2 * t - 1:
        raise AssertionError("the split needs 2t - 1 neighbours")
    told_alive, told_dropped = holders[:t - 1].tolist(), holders[t - 1:].tolist()
    seed_shares, key_shares = {}, {}
    for w in [target, *told_alive, *told_dropped]:
        live, dropped = server.requests[w]
        if w in told_dropped:  # "the target dropped": ask for its key share instead
            live = live[live != target]
            dropped = np.union1d(dropped, [target]).astype(np.int64)
        live_ids, seed, dropped_ids, key = UNMASK.client_step(clients[w], (live, dropped))
        if target in live_ids.tolist():
            seed_shares[w] = seed[live_ids.tolist().index(target)]
        if target in dropped_ids.tolist():
            key_shares[w] = key[dropped_ids.tolist().index(target)]

    def rebuild(shares, width):
        ids = sorted(shares)[:t]
        points = np.array([[w + 1 for w in ids]], dtype=np.int64)
        return reconstruct(points, np.array([[shares[w] for w in ids]]).reshape(1, t, width))

    b_u = decode_seeds(rebuild(seed_shares, SEED_ELEMS))[0]
    s_sk = decode_keys(rebuild(key_shares, KEY_ELEMS))[0]
    x = masked[target][0].copy()
    expander = MaskExpander(config.dim, config.dtype)
    expander.add(x, b_u, -1)
    for v in clients[target].u2.tolist():   # public keys the server routed itself
        shared = agree(s_sk, server.keys[v, 1].tobytes())
        expander.add(x, mask_seed(shared, config.session, target, v), -1 if target < v else 1)
    if config.bits < 8 * x.itemsize:
        x &= x.dtype.type(config.modulus_mask)
    return x


def _unsafe(monkeypatch, config, **fields):
    """``config`` with ``fields`` replaced, built with the majority rule switched off."""
    monkeypatch.setattr(config_module, "check_majority", lambda threshold, degree: None,
                        raising=False)
    return dataclasses.replace(config, **fields)


@pytest.mark.parametrize("n,variant,degree,threshold", [
    (4, "secagg", 3, 2), (16, "secagg+", 8, 4), (100, "secagg+", 32, 11)])
def test_split_attack_recovers_an_input_when_2t_is_at_most_k_plus_1(monkeypatch, n, variant,
                                                                    degree, threshold):
    # Why the rule exists: without it the split server reads client 1's input exactly.
    # n = 4: k = 3, t = 2 has 2t = k + 1, which a 2t <= k rule would still let through;
    # n = 100, k = 32, t = 11 is what make_config chose for SecAgg+ at a 0.3 dropout bound.
    config = _unsafe(monkeypatch, make_config(n, DIM, variant=variant, dropout=0.1),
                     degree=degree, threshold=threshold)
    assert 2 * config.threshold <= config.degree + 1
    values = _values(n, config, seed=n)
    assert np.array_equal(_split_attack(config, values, target=1), values[1].astype(config.dtype))


def test_configurations_that_allow_the_split_are_refused():
    # the same session with a minority threshold is refused everywhere it can be built
    with pytest.raises(ParameterError, match="majority"):
        make_config(4, DIM, dropout=0.1, threshold=2)
    with pytest.raises(ParameterError, match="majority"):
        make_config(16, DIM, variant="secagg+", dropout=0.1, threshold=2)
    safe = make_config(16, DIM, variant="secagg+", dropout=0.1)
    assert 2 * safe.threshold > safe.degree + 1
    with pytest.raises(ParameterError, match="majority"):
        dataclasses.replace(safe, threshold=safe.degree // 2)
    with pytest.raises(ParameterError, match="majority"):
        SecAggConfig(n=4, dim=DIM, bits=32, threshold=2, degree=3, variant="secagg",
                     session=bytes(16), dropout=0.0, corruption=0.0, privacy_failure=0.0,
                     correctness_failure=0.0)
    # where no majority threshold can tolerate the dropouts, the session is refused
    with pytest.raises(ParameterError):
        make_config(10, DIM, dropout=0.5)


def test_the_issue_configuration_now_gets_a_majority_threshold():
    # SecAgg+ n = 100, dropout 0.3 used to give k = 32, t = 11; the split read an input.
    config = make_config(100, DIM, variant="secagg+", dropout=0.3)
    assert 2 * config.threshold > config.degree + 1
    values = _values(100, config, seed=1)
    drops = {u: 2 for u in range(0, 100, 4)}   # 25 drop after sharing keys
    res = simulate(config, values, drops)
    want = sum(values[u].astype(object) for u in res.survivors) % (1 << config.bits)
    assert res.survivors == [u for u in range(100) if u % 4] and np.array_equal(res.total, want)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 400), st.integers(0, 60), st.integers(0, 30), st.booleans())
def test_chosen_thresholds_are_always_a_strict_majority_of_the_holders(n, drop, corrupt, complete):
    try:
        c = choose(n, drop / 100, corrupt / 100, complete=complete)
    except ParameterError:
        return
    assert 2 * c.threshold > c.k + 1


def _to_unmask(n=6):
    config = make_config(n, DIM, dropout=0.2)
    clients = [Client(u, config, np.zeros(DIM, np.uint32)) for u in range(n)]
    server = Server(config)
    down = ADVERTISE.server_step(server, {u: ADVERTISE.client_step(c) for u, c in enumerate(clients)})
    down = SHARE.server_step(server, {u: SHARE.client_step(clients[u], down[u]) for u in range(n)})
    MASKED.server_step(server, {u: MASKED.client_step(clients[u], down[u]) for u in range(n)})
    return config, clients


def test_client_refuses_a_request_listing_fewer_than_t_alive():
    # Bonawitz et al.: a client answers only if |U3| >= t. "Everyone but you dropped"
    # would otherwise hand the server this client's key shares of all the others.
    config, clients = _to_unmask()
    t = config.threshold
    others = np.array([v for v in range(config.n) if v != 0], dtype=np.int64)
    with pytest.raises(ProtocolAbort, match="fewer than t"):
        UNMASK.client_step(clients[0], (np.array([0], dtype=np.int64), others))
    live = np.arange(t - 1, dtype=np.int64)          # t - 1 alive, client 1 among them
    with pytest.raises(ProtocolAbort, match="fewer than t"):
        UNMASK.client_step(clients[1], (live, np.setdiff1d(np.arange(config.n), live)))
    # exactly t listed alive is answered
    live = np.arange(t, dtype=np.int64)
    out = UNMASK.client_step(clients[2], (live, np.setdiff1d(np.arange(config.n), live)))
    assert out[0].tolist() == live.tolist()
