"""Fuzzing every decoder of peer or file bytes: only documented errors (ConciliumError) may escape.

The decoders and their mutators live in :mod:`bench.fuzz` (``python -m bench fuzz`` runs 10^5
cases per decoder); here each gets a small Hypothesis budget: random bytes, and mutations of
valid inputs (byte-level, and structure-aware: a frame's arrays, an HE envelope re-sealed).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import DECODER_NAMES, decoders, run_case
from mpc.errors import EncodingError
from mpc.preprocessing import store


@pytest.fixture(scope="module")
def by_name(tmp_path_factory):
    return {d.name: d for d in decoders(tmp_path_factory.mktemp("fuzz"))}


def test_every_decoder_is_fuzzed(by_name):
    assert set(by_name) == set(DECODER_NAMES)


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_decoder_raises_only_documented_errors(by_name, name):
    dec = by_name[name]
    for seed in dec.seeds:                       # the seeds are valid (an ABORT record aborts)
        assert run_case(dec, seed) in (None, "PeerAborted"), name

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(how=st.integers(0, 3), raw=st.binary(max_size=200), rng_seed=st.integers(0, 2**32 - 1))
    def check(how, raw, rng_seed):
        rng = np.random.default_rng(rng_seed)
        base = dec.seeds[rng_seed % len(dec.seeds)]
        data = raw if how == 0 else dec.mutate(rng, base)
        got = run_case(dec, data)
        assert got is None or not got.startswith("!"), f"{name}: undocumented {got[1:]}"

    check()


def _npz(path, manifest, **arrays):
    np.savez(path, manifest=np.frombuffer(manifest, np.uint8), **arrays)


def test_a_damaged_preprocessing_file_is_an_encoding_error(tmp_path):
    # found by the fuzzer: BadZipFile, UnicodeDecodeError, AttributeError, KeyError... escaped load()
    path = tmp_path / "p.npz"
    store.save(store.StoredSource({("mul", (2,), (2,)): [(np.zeros(2, np.uint64),) * 3]}), path)
    good = path.read_bytes()
    fmt = b'"format": "concilium-preprocessing/1"'
    damaged = [
        lambda: path.write_bytes(good.replace(b"concilium-preprocessing", b"concilium-preprocessinG")),
        lambda: _npz(path, b"\xff\xfe{"),                                    # not UTF-8
        lambda: _npz(path, b"[1, 2]"),                                       # not an object
        lambda: _npz(path, b"{" + fmt + b', "groups": [{"id": 0}]}'),          # a group without key
        lambda: _npz(path, b"{" + fmt + b', "groups": [{"key": ["mul", [2], [2]], "id": 0, '
                           b'"width": 3, "count": 1}]}'),                    # its arrays missing
    ]
    def encrypted_flag():   # bit 0 of every member's flags, local and central: "encrypted"
        data = bytearray(good)
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = data.find(sig)
            while i >= 0:
                data[i + at] |= 1
                i = data.find(sig, i + 4)
        path.write_bytes(bytes(data))

    damaged.append(encrypted_flag)
    for make in damaged:
        make()
        with pytest.raises(EncodingError, match="p.npz"):
            store.load(path, consume=False)


def test_malformed_dealer_requests_and_run_results_are_documented_errors():
    # found by the fuzzer: an empty fractional-bit array (IndexError); a result with a
    # dtype string numpy parses as a record (SyntaxError), bad base64, a missing key
    from mpc.errors import ParameterError
    from mpc.preprocessing.remote_dealer import _parse_request
    from mpc.transport.values import decode_value

    trunc = np.frombuffer(b"trunc", np.uint8)
    with pytest.raises(ParameterError, match="trunc"):
        _parse_request((trunc, np.array([5], np.int64), np.zeros(0, np.int64)))
    for bad in ({"$array": ",i4", "shape": [1], "data": "AAAAAA=="},
                {"$array": "<i4", "shape": [1], "data": "AA,A"},
                {"$array": "<i4", "shape": [-1], "data": ""},
                {"$array": "<i4", "data": ""},
                {"$dict": [[1]]},
                {"$float": "one"}):
        with pytest.raises(EncodingError):
            decode_value(bad)


def _ckks_context_parts():
    from mpc.he import ckks, serial
    from mpc.he._tenseal import _parse
    blob = ckks.SecretContext.create("aggregate").public().serialize()
    header, body = serial.load(blob, serial.Kind.CKKS_PUBLIC_CONTEXT)
    return header, _parse(bytes(body))


def _public_context(header, top):
    from mpc.he import serial
    from mpc.he._tenseal import _emit
    return serial.dump(serial.Kind.CKKS_PUBLIC_CONTEXT, header, _emit(top))


@pytest.mark.parametrize("field,message", [(1, "lacks public_key"), (3, "lacks scale"),
                                           (4, "lacks relin_keys")])
def test_a_ckks_context_missing_a_key_is_refused_before_tenseal(field, message):
    # found by the fuzzer: without its public key TenSEAL loads the context and then
    # segfaults when it is serialized (PublicContext computes its key id that way)
    from mpc.he import ckks
    from mpc.he._tenseal import _emit, _parse
    header, top = _ckks_context_parts()
    top = [(n, w, _emit([f for f in _parse(v) if f[0] != field]) if n == 2 else v) for n, w, v in top]
    with pytest.raises(EncodingError, match=message):
        ckks.PublicContext.load(_public_context(header, top))


def test_a_damaged_ckks_context_body_is_an_encoding_error():
    # found by the fuzzer: SEAL's "SEALHeader.size exceeds available input", "I/O error",
    # "incompatible version" came out as ParameterError (an error about parameters)
    from mpc.he import ckks
    from mpc.he._tenseal import _emit, _parse
    header, top = _ckks_context_parts()
    cut = [(n, w, _emit([(k, t, x[:len(x) // 2] if k == 4 else x) for k, t, x in _parse(v)])
            if n == 2 else v) for n, w, v in top]
    with pytest.raises(EncodingError, match="TenSEAL/SEAL could not load the body"):
        ckks.PublicContext.load(_public_context(header, cut))
    private = top + [(3, 2, b"\x0a\x01\x00")]                # a private_context: refused unread
    with pytest.raises(EncodingError, match="private_context"):
        ckks.PublicContext.load(_public_context(header, private))
