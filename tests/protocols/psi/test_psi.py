"""DH-PSI on Curve25519: known answers, exact intersections, edge cases, errors, privacy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mpc
from mpc.errors import MalformedPeerData, ParameterError, ProtocolError
from protocols import psi as P

PRIME = 2**255 - 19
ORDER = 2**252 + 27742317777372353535851937790883648493  # prime order of the base point
A = 486662


def run_psi(x, y, **kw):
    res = mpc.run(lambda party, items: P.psi(party, items, **kw), parties=2, inputs=[x, y],
                  preprocessing=None, timeout=120)
    return res


def _sets(rng, n_x, n_y, overlap):
    """Random distinct int64 sets with ``overlap * min(n_x, n_y)`` common items."""
    common = int(round(overlap * min(n_x, n_y)))
    pool = rng.choice(2**62, n_x + n_y - common, replace=False).astype(np.int64)
    x = pool[:n_x]
    y = np.concatenate([x[:common], pool[n_x:]])
    return rng.permutation(x), rng.permutation(y), np.sort(x[:common])


# -- Montgomery x-only arithmetic, as an independent reference ---------------------------
def _ladder(k, u):
    """x(k·P) for P with x-coordinate u, projective (X, Z); Z = 0 is the identity."""
    x2, z2, x3, z3 = 1, 0, u, 1
    for t in reversed(range(k.bit_length())):
        bit = (k >> t) & 1
        if bit:
            x2, z2, x3, z3 = x3, z3, x2, z2
        a, b = (x2 + z2) % PRIME, (x2 - z2) % PRIME
        c, d = (x3 + z3) % PRIME, (x3 - z3) % PRIME
        da, cb = d * a % PRIME, c * b % PRIME
        x3, z3 = (da + cb) ** 2 % PRIME, u * (da - cb) ** 2 % PRIME
        aa, bb = a * a % PRIME, b * b % PRIME
        e = aa - bb
        x2, z2 = aa * bb % PRIME, e * (aa + 121665 * e) % PRIME
        if bit:
            x2, z2, x3, z3 = x3, z3, x2, z2
    return x2, z2


def _in_prime_subgroup(u):
    on_curve = pow((u * u * u + A * u * u + u) % PRIME, (PRIME - 1) // 2, PRIME) == 1
    return on_curve and _ladder(ORDER, u)[1] == 0


# -- known answers ------------------------------------------------------------------------
# RFC 9380 Appendix J.7.2, suite curve25519_XMD:SHA-512_ELL2_NU_: u, Q = map_to_curve(u),
# P = clear_cofactor(Q) = 8·Q (x-coordinates).
RFC9380 = [
    (b"", "608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd",
     "51125222da5e763d97f3c10fcc92ea6860b9ccbbd2eb1285728f566721c1e65b",
     "1bb913f0c9daefa0b3375378ffa534bda5526c97391952a7789eb976edfe4d08"),
    (b"abc", "46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5",
     "7d56d1e08cb0ccb92baf069c18c49bb5a0dcd927eff8dcf75ca921ef7f3e6eeb",
     "7c22950b7d900fa866334262fcaea47a441a578df43b894b4625c9b450f9a026"),
]
RFC9380_DST = b"QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_NU_"


@pytest.mark.parametrize("msg,u,q,p", RFC9380)
def test_hash_to_curve_rfc9380(msg, u, q, p):
    (got_u,) = P.hash_to_field([msg], RFC9380_DST)
    assert got_u == int(u, 16)
    (x,) = P.map_to_curve([got_u])
    assert x == int(q, 16)
    x8, z8 = _ladder(8, x)
    assert x8 * pow(z8, -1, PRIME) % PRIME == int(p, 16)


def test_fused_hash_to_curve_matches_rfc9380_and_the_two_steps():
    # The protocol's one-pass hash (no per-item inversion) must be the RFC map exactly.
    got = P._hash_to_points([m for m, *_ in RFC9380], RFC9380_DST)
    assert [got[k:k + 32][::-1].hex() for k in range(0, len(got), 32)] == [q for _, _, q, _ in RFC9380]
    rng = np.random.default_rng(7)
    msgs = [rng.bytes(int(k)) for k in rng.integers(0, 80, 300)]
    want = b"".join(x.to_bytes(32, "little") for x in P.map_to_curve(P.hash_to_field(msgs)))
    assert P._hash_to_points(msgs, P.DEFAULT_DST) == want
    assert P._hash_to_points([], P.DEFAULT_DST) == b""


def test_blind_rfc7748_vector():
    # RFC 7748 section 5.2, first X25519 test vector.
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    want = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    out = P.blind(np.frombuffer(u, np.uint8).reshape(1, 32), k)
    assert out.tobytes().hex() == want


def test_blinding_commutes_and_threads_agree():
    pts = P.hash_to_group(np.arange(40))
    a, b = P.generate_key(), P.generate_key()
    ab = P.blind(P.blind(pts, a), b, workers=2)
    ba = P.blind(P.blind(pts, b, workers=3), a)
    assert np.array_equal(ab, ba)
    assert len({r.tobytes() for r in ab}) == 40
    enc = P.canonical_items(np.arange(40))[2]
    assert np.array_equal(P.hash_and_blind(enc, a, workers=2), P.blind(pts, a))


def test_hash_lands_on_curve_not_twist():
    xs = [int.from_bytes(r.tobytes(), "little") for r in P.hash_to_group([f"id{k}" for k in range(200)])]
    assert all(pow((u**3 + A * u * u + u) % PRIME, (PRIME - 1) // 2, PRIME) == 1 for u in xs)


def test_items_are_typed_and_deduplicated():
    kind, values, enc = P.canonical_items([3, 1, 3, 2, 1])
    assert values.tolist() == [1, 2, 3] and len(enc) == 3
    assert P.canonical_items(["b", "a", "b"])[1] == ["a", "b"]
    assert P.canonical_items([b"x", bytearray(b"x")])[1] == [b"x"]
    # 5, "5" and b"5" hash to different points
    points = [P.hash_to_group(v).tobytes() for v in ([5], ["5"], [b"5"])]
    assert len(set(points)) == 3


# -- the protocol -------------------------------------------------------------------------
@pytest.mark.parametrize("n_x,n_y", [(10, 10), (10, 300), (1000, 37)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 1.0])
def test_intersection_exact(n_x, n_y, overlap):
    rng = np.random.default_rng(n_x * 1000 + n_y + int(overlap * 100))
    x, y, want = _sets(rng, n_x, n_y, overlap)
    res = run_psi(x, y)
    assert np.array_equal(res.outputs[0], want)
    assert res.outputs[1] is None
    size = run_psi(x, y, output="size").outputs
    assert size == [len(want), None]


def test_large_set_exact_and_cost():
    rng = np.random.default_rng(7)
    x, y, want = _sets(rng, 100_000, 1_000, 0.6)
    res = run_psi(x, y)
    assert np.array_equal(res.outputs[0], want)
    assert res.cost.rounds == 2
    header = 12
    assert res.cost.bytes_sent[0] == header + 32 * 100_000
    assert res.cost.bytes_sent[1] == header + 32 * 1_000 + 16 * 100_000


def test_both_parties_learn_and_receiver_choice():
    rng = np.random.default_rng(3)
    x, y, want = _sets(rng, 200, 150, 0.5)
    res = run_psi(x, y, both=True)
    assert np.array_equal(res.outputs[0], want) and np.array_equal(res.outputs[1], want)
    assert res.cost.rounds == 3
    res = run_psi(x, y, receiver=1, output="size", both=True)
    assert res.outputs == [len(want), len(want)]
    res = run_psi(x, y, receiver=1)
    assert res.outputs[0] is None and np.array_equal(res.outputs[1], want)


def test_strings_bytes_duplicates_and_empty_sets():
    res = run_psi(["ann", "bob", "bob", "cy", "dee"], ["dee", "eve", "ann", "ann"], both=True)
    assert res.outputs == [["ann", "dee"], ["ann", "dee"]]
    assert run_psi([b"\x00", b"\x01"], [b"\x01", b"\x02"]).outputs[0] == [b"\x01"]
    assert run_psi([], ["a", "b"]).outputs[0] == []
    assert run_psi(["a"], []).outputs[0] == []
    empty = run_psi(np.array([], np.int64), [1, 2], both=True).outputs
    assert all(len(out) == 0 for out in empty)
    assert run_psi([], [], output="size").outputs[0] == 0
    dup = run_psi(np.array([5, 5, 5, 9], np.uint32), [5, 5, 7]).outputs[0]
    assert dup.tolist() == [5]


@settings(max_examples=12, deadline=None)
@given(x=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30),
       y=st.lists(st.integers(-5, 5), max_size=30), extra=st.lists(st.integers(-5, 5), max_size=10))
def test_intersection_property(x, y, extra):
    x = x + extra
    res = run_psi(x, y, both=True, output="intersection")
    want = sorted(set(x) & set(y))
    assert res.outputs[0].tolist() == want and res.outputs[1].tolist() == want


def test_pair_inside_a_larger_session():
    def prog(party, items):
        if party.id == 1:
            return None
        return P.psi(party, items, peer=2 if party.id == 0 else 0, both=True)

    res = mpc.run(prog, parties=3, inputs=[[1, 2, 3], None, [3, 4]], preprocessing=None)
    assert res.outputs[0].tolist() == [3] and res.outputs[2].tolist() == [3]
    assert res.cost.bytes_sent.get(1, 0) == 0


# -- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("items", ["abc", b"abc", np.zeros((2, 2), np.int64), np.array([1.5]),
                                   [1, "a"], [True, False], [2**64], 17])
def test_bad_items_rejected(items):
    with pytest.raises(ParameterError):
        P.canonical_items(items)


def test_mismatched_settings_rejected():
    with pytest.raises(ParameterError, match="holds"):
        run_psi([1, 2], ["a"])
    with pytest.raises(ParameterError, match="settings differ"):
        mpc.run(lambda party: P.psi(party, [1], output="size" if party.id else "intersection"),
                parties=2, preprocessing=None)
    with pytest.raises(ParameterError, match="domain separation"):
        mpc.run(lambda party: P.psi(party, [1], dst=b"A" if party.id else b"B"),
                parties=2, preprocessing=None)
    with pytest.raises(ParameterError, match="peer"):
        mpc.run(lambda party: P.psi(party, [1]), parties=3, preprocessing=None)
    with pytest.raises(ParameterError, match="output"):
        run_psi([1], [1], output="all")
    with pytest.raises(ParameterError, match="workers"):
        run_psi([1], [1], workers=0)
    with pytest.raises(ParameterError):
        P.blind(np.zeros((2, 31), np.uint8), P.generate_key())


def test_small_order_point_from_peer_is_refused():
    def prog(party):
        if party.id == 0:
            return P.psi(party, [1, 2, 3])
        with party.scope("psi0-1#0"):
            header, _ = party.recv(0, "blinded-r")
            party.send(0, "blinded-s", header, np.zeros((2, 32), np.uint8))  # the identity, u = 0
            party.recv(0, "never")

    with pytest.raises(ProtocolError, match="small order"):
        mpc.run(prog, parties=2, preprocessing=None, timeout=10)


@pytest.mark.parametrize("u", [0, 1, 325606250916557431795983626356110631294008115727848805560023387167927233504,
                               39382357235489614581723060781553021112529911719440698176882885853963445705823])
def test_small_order_point_among_many_is_refused_by_every_thread(u):
    pts = P.hash_to_group(np.arange(64))
    key = P.generate_key()
    for row in (0, 37, 63):
        bad = pts.copy()
        bad[row] = np.frombuffer(u.to_bytes(32, "little"), np.uint8)
        for workers in (1, 2, 3):
            with pytest.raises(ProtocolError, match="small order"):
                P.blind(bad, key, workers=workers)
    assert P.blind(pts, key, workers=3).shape == (64, 32)


def test_malformed_reblinded_set_is_refused():
    def prog(party):
        if party.id == 0:
            return P.psi(party, [1, 2, 3])
        with party.scope("psi0-1#0"):
            header, theirs = party.recv(0, "blinded-r")
            party.send(0, "blinded-s", header, P.hash_to_group([9]))
            party.send(0, "double-r", np.zeros((2, 16), np.uint8))  # 2 tags for 3 items
            party.recv(0, "never")

    with pytest.raises(MalformedPeerData, match="re-blinded") as err:
        mpc.run(prog, parties=2, preprocessing=None, timeout=10)
    assert (err.value.peer, err.value.field) == (1, "re-blinded set")


@pytest.mark.parametrize("output, result, why", [
    ("size", np.array([4], np.int64), "values outside"),             # more than min(3, 1)
    ("size", np.array([1, 1], np.int64), r"sent int64\[2\].*expected int64\[1\]"),
    ("intersection", np.array([0, 0], np.int64), "free axis"),       # more than min(3, 1)
    ("intersection", np.array([3], np.int64), "values outside"),     # sender has 3 items
    ("intersection", np.array([0], np.int32), r"sent int32\[1\]"),
])
def test_malformed_result_from_the_receiver_is_refused(output, result, why):
    def prog(party):
        if party.id == 1:
            return P.psi(party, [1, 2, 3], receiver=0, output=output, both=True)
        with party.scope("psi0-1#0"):
            header, _ = party.recv(1, "blinded-s")
            party.send(1, "blinded-r", header, P.hash_to_group([9]))
            party.recv(1, "double-r")
            party.send(1, "result", result)
            party.recv(1, "never")

    with pytest.raises(MalformedPeerData, match=why) as err:
        mpc.run(prog, parties=2, preprocessing=None, timeout=10)
    assert err.value.peer == 0 and err.value.field.startswith("intersection")


def test_repeated_intersection_positions_are_refused():
    def prog(party):
        if party.id == 1:
            return P.psi(party, [1, 2, 3], receiver=0, both=True)
        with party.scope("psi0-1#0"):
            header, _ = party.recv(1, "blinded-s")
            party.send(1, "blinded-r", header, P.hash_to_group([8, 9]))
            party.recv(1, "double-r")
            party.send(1, "result", np.array([1, 1], np.int64))
            party.recv(1, "never")

    with pytest.raises(MalformedPeerData, match="repeated intersection positions") as err:
        mpc.run(prog, parties=2, preprocessing=None, timeout=10)
    assert err.value.peer == 0


# -- privacy ------------------------------------------------------------------------------
def _peer_points(items_r, items_s):
    """What the receiver sees of the sender's set: the blinded points b·H(y)."""
    res = mpc.run(lambda party, s: P.psi(party, s), parties=2, inputs=[items_r, items_s],
                  preprocessing=None, record_view=True)
    (blinded,) = [arrs[1] for frm, tag, arrs in res.views[0] if tag.endswith("blinded-s")]
    (double,) = [arrs[0] for frm, tag, arrs in res.views[0] if tag.endswith("double-r")]
    return blinded, double


def _chi2_low_bytes(rows):
    counts = np.bincount(rows[:, :31].ravel(), minlength=256)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def test_blinded_values_are_uniform_subgroup_points():
    # chi-square with 255 degrees of freedom: mean 255, sd 22.6; 400 is beyond 6 sd.
    structured = np.arange(2000)                       # consecutive ids
    blinded, double = _peer_points([0], structured)
    assert _chi2_low_bytes(blinded) < 400
    assert _chi2_low_bytes(double) < 400
    xs = [int.from_bytes(r.tobytes(), "little") for r in blinded[:12]]
    assert all(u < PRIME for u in xs)
    assert all(_in_prime_subgroup(u) for u in xs)
    # Negative control: the unblinded hashes H(y) are on the curve but mostly outside the
    # prime-order subgroup (cofactor 8), which a peer could see; blinding removes that.
    raw = [int.from_bytes(r.tobytes(), "little") for r in P.hash_to_group(structured[:12])]
    assert sum(_in_prime_subgroup(u) for u in raw) < 6
    # Every blinded x is a square (a point of 2E), as for uniform subgroup points.
    assert all(pow(int.from_bytes(r.tobytes(), "little"), (PRIME - 1) // 2, PRIME) == 1
               for r in blinded[:200])


def test_view_does_not_depend_on_the_items():
    # Two-sample chi-square on the low byte: the sender's blinded points for consecutive
    # integers vs for random strings, and vs fresh uniform subgroup points r·G.
    import nacl.bindings

    a, _ = _peer_points([0], np.arange(3000))
    b, _ = _peer_points(["x"], [f"customer-{k:06d}" for k in range(3000)])
    ref = np.frombuffer(b"".join(nacl.bindings.crypto_scalarmult_base(P.generate_key())
                                 for _ in range(3000)), np.uint8).reshape(-1, 32)
    for other in (b, ref):
        h0 = np.bincount(a[:, :31].ravel(), minlength=256).astype(float)
        h1 = np.bincount(other[:, :31].ravel(), minlength=256).astype(float)
        chi = (((h0 - h1) ** 2) / (h0 + h1)).sum()
        assert chi < 400


def test_match_positions_do_not_reveal_the_senders_order():
    # The sender's sorted set, with the intersection its first 100 items: the positions
    # of the matches in what the receiver sees must be spread over the whole list.
    y = np.arange(1000)
    res = mpc.run(lambda party, s: P.psi(party, s, both=True), parties=2,
                  inputs=[np.arange(100), y], preprocessing=None, record_view=True)
    (positions,) = [arrs[0] for frm, tag, arrs in res.views[1] if tag.endswith("result")]
    assert len(positions) == 100
    assert positions.max() > 500 and 300 < positions.mean() < 700


def test_peer_messages_with_the_wrong_number_of_arrays_are_refused():
    def bad_sender(party, items):
        with party.scope(party.fresh("psi0-1")):
            party.send(0, "blinded-s", np.zeros(12, np.uint8))      # the header only, no points
            party.recv(0, "blinded-r")

    with pytest.raises(MalformedPeerData, match="party 1 sent 1 arrays under '[^']*blinded-s', expected 2"):
        mpc.run(lambda party, items: P.psi(party, items) if party.id == 0 else bad_sender(party, items),
                parties=2, inputs=[np.arange(5), np.arange(5)], preprocessing=None, timeout=20)


def test_max_peer_items_bounds_the_work_a_peer_can_cause():
    x, y = np.arange(10), np.arange(500)
    with pytest.raises(ProtocolError, match="sent 500 items, more than max_peer_items = 100"):
        run_psi(x, y, max_peer_items=100)
    assert np.array_equal(run_psi(x, y, max_peer_items=500).outputs[0], x)
    with pytest.raises(ParameterError, match="max_peer_items"):
        run_psi(x, y, max_peer_items=-1)


def test_strings_match_code_point_for_code_point_and_bad_text_is_refused():
    nfc, nfd = "caf\u00e9", "cafe\u0301"                          # the same word, two spellings
    assert run_psi([nfc, "tea"], [nfd, "tea"]).outputs[0] == ["tea"]
    with pytest.raises(ParameterError, match="not valid Unicode"):
        P.canonical_items(["ok", "\ud800"])
