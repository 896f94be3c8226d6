"""Yao's millionaires problem: who is richer, and nothing else (layer: protocols).

Two parties hold integers (their wealth) and learn only how they compare.

* :func:`millionaires`: the modern solution, a garbled comparison circuit
  (half-gates, :mod:`mpc.gc`) with the evaluator's input bits by OT
  extension (:mod:`mpc.ot`). 64-bit unsigned by default, signed optional,
  any batch of comparisons in one run.
* :func:`yao1982`: the original public-key protocol of Yao's 1982 paper, for
  teaching: it costs one RSA decryption per possible wealth value, so it only
  suits small ranges.

Protocol (:func:`millionaires`)
--------
Party ``garbler`` (0 by default) garbles a comparison circuit with ``n``
AND gates for ``n``-bit inputs (``2n`` with ``three_way``):

1. The evaluator announces the batch size and obtains, by correlated OT
   (IKNP, after 128 base OTs), the labels of its own input bits.
2. The garbler sends the labels of its own bits, the garbled tables (32
   bytes per AND gate) and the output decoding bits.
3. The evaluator evaluates and decodes the outcome; it sends the outcome to
   the garbler (``output="both"``, the default).

Security
--------
Semi-honest, two parties, no third party (:mod:`mpc.gc.yao`). Each party
learns the outcome: whether party 0 is richer (``w0 > w1``), or, with
``three_way=True``, the sign of ``w0 - w1`` (which also reveals a tie); the
batch size and bit width are public. Nothing else: the evaluator's view has
the same distribution for any two garbler inputs with the same outcome
(``tests/protocols/test_millionaires.py`` checks it statistically). Values outside the
declared bit width are refused, never truncated.

Cost
----
For ``B`` comparisons of ``n`` bits (``greater_than``: ``n`` AND gates):
garbler -> evaluator ``B (32 n + 16 n + 16 n + 1) + 4096`` bytes (tables, its
labels, OT corrections, decoding bits, base-OT points); evaluator -> garbler
``16 n B + B + 40`` bytes (IKNP matrix, result, base-OT point, batch size);
5 rounds. Garbling ``4 n B`` AES blocks, evaluating ``2 n B``; ``three_way``
doubles the tables and the hashing.

References
----------
A. C. Yao, "Protocols for Secure Computations", FOCS 1982; S. Zahur, M.
Rosulek, D. Evans, "Two Halves Make a Whole", EUROCRYPT 2015.
"""

from __future__ import annotations

from typing import Sequence

import gmpy2
import numpy as np
from cryptography.hazmat.primitives.asymmetric import rsa

from mpc.errors import EncodingError, ParameterError, ProtocolError
from mpc.gc import builder
from mpc.gc.circuit import Circuit
from mpc.gc.yao import Role, int_to_bits, run_yao
from mpc.ot.base import recv_arrays
from mpc.ot.iknp import IKNPReceiver, IKNPSender
from mpc.party import Party

MAX_BITS = 1024


def comparison_circuit(bits: int, signed: bool = False, three_way: bool = False,
                       garbler_is_first: bool = True) -> Circuit:
    """The circuit comparing the garbler's input (group 0) with the evaluator's (group 1).

    Its outputs are ``w0 > w1`` (or ``(w0 > w1, w0 < w1)`` with ``three_way``)
    where ``w0`` is party 0's wealth, whichever party garbles.
    """
    if three_way:
        return builder.compare(bits, signed)
    return builder.greater_than(bits, signed) if garbler_is_first else builder.less_than(bits, signed)


def _pair(party: Party, pair: Sequence[int]) -> int:
    if len(pair) != 2 or pair[0] == pair[1] or party.id not in pair:
        raise ParameterError(f"party {party.id} is not one of the two millionaires {tuple(pair)}")
    return pair[1] if party.id == pair[0] else pair[0]


def millionaires(party: Party, wealth: int | Sequence[int] | np.ndarray, *, bits: int = 64,
                 signed: bool = False, three_way: bool = False, garbler: int | None = None,
                 output: str = "both", pair: Sequence[int] = (0, 1),
                 ot: IKNPSender | IKNPReceiver | None = None):
    """Compare this party's ``wealth`` with the other millionaire's.

    Parameters
    ----------
    wealth:
        An integer, or a 1-D batch of integers (every pair compared in one run).
    bits:
        Width of the comparison; values outside it are refused.
    signed:
        Two's-complement comparison (negative wealth, i.e. debt, allowed).
    three_way:
        Also distinguish a tie: the result is ``+1`` (first party richer),
        ``0`` (equal) or ``-1``, at twice the AND gates.
    garbler:
        Which of ``pair`` garbles (default: ``pair[0]``).
    output:
        ``"both"`` (default), or only ``"garbler"`` / ``"evaluator"``.
    pair:
        The ids of the two millionaires (``pair[0]`` is "first").
    ot:
        An IKNP extension already set up with the peer (reused across calls).

    Returns
    -------
    For a scalar wealth, ``bool`` (first party strictly richer) or ``int``
    (``three_way``); for a batch, a ``bool`` / ``int8`` array. ``None`` for a
    party that receives no output.
    """
    peer = _pair(party, pair)
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise ParameterError(f"bits must be in [1, {MAX_BITS}], got {bits!r}")
    garbler = pair[0] if garbler is None else garbler
    if garbler not in pair:
        raise ParameterError(f"the garbler must be one of {tuple(pair)}, got {garbler!r}")
    scalar = np.ndim(wealth) == 0
    x = int_to_bits(wealth, int(bits), signed)
    role = Role.GARBLER if party.id == garbler else Role.EVALUATOR
    circuit = comparison_circuit(int(bits), signed, three_way, garbler_is_first=garbler == pair[0])
    with party.scope("millionaires"):
        if three_way and garbler != pair[0]:  # the circuit compares group 0 (garbler) with group 1
            out = run_yao(party, peer, circuit, role, x, output=output, ot=ot)
            out = None if out is None else out[:, ::-1]
        else:
            out = run_yao(party, peer, circuit, role, x, output=output, ot=ot)
    if out is None:
        return None
    if three_way:
        res = out[:, 0].astype(np.int8) - out[:, 1].astype(np.int8)
        return int(res[0]) if scalar else res
    res = out[:, 0].astype(bool)
    return bool(res[0]) if scalar else res


# --- Yao 1982, the teaching variant ---------------------------------------------------------
MIN_RSA_BITS = 2048
MAX_RANGE = 4096


def _to_arr(v: int, nbytes: int) -> np.ndarray:
    return np.frombuffer(int(v).to_bytes(nbytes, "big"), np.uint8)


def _from_arr(a: np.ndarray, what: str, nbytes: int) -> int:
    if a.dtype != np.uint8 or a.shape != (nbytes,):
        raise EncodingError(f"{what}: expected {nbytes} bytes, got {a.dtype}{list(a.shape)}")
    return int.from_bytes(a.tobytes(), "big")


def yao1982(party: Party, wealth: int, *, max_wealth: int = 100, key_bits: int = MIN_RSA_BITS,
            insecure_small_key_for_tests: bool = False, pair: Sequence[int] = (0, 1)) -> bool:
    """Yao's original 1982 millionaires protocol (teaching variant): returns ``w_Alice >= w_Bob``.

    ``pair[0]`` is Alice (RSA key owner), ``pair[1]`` Bob; wealth in
    ``[0, max_wealth)``. Both learn whether Alice is at least as rich.

    Protocol (Yao 1982, section 2; values shifted to ``i = w_A + 1``, ``j = w_B + 1``)
    --------
    1. Alice sends her RSA public key ``(n, e)``.
    2. Bob draws a random ``x < n`` and sends ``m = E(x) - j + 1 mod n``.
    3. Alice computes ``y_u = D(m + u - 1)`` for ``u = 1..N`` (so ``y_j = x``),
       draws a random 128-bit prime ``p`` with all ``z_u = y_u mod p`` at
       distance at least 2 of each other, and sends ``p`` and
       ``z_1, .., z_i, z_{i+1} + 1, .., z_N + 1`` (mod ``p``).
    4. Bob outputs ``i >= j`` iff the ``j``-th number equals ``x mod p``, and
       tells Alice.

    Security: semi-honest, RSA (textbook, on a random ``x``); Bob learns the
    comparison bit, Alice nothing but that bit. Cost: ``N`` RSA decryptions
    for Alice (why garbled circuits replaced it), 4 messages,
    ``16 N + 2 key_bits / 8 + 17`` bytes (measured: 689 bytes for N = 10 and a
    2048-bit key).
    """
    peer = _pair(party, pair)
    if not 2 <= max_wealth <= MAX_RANGE:
        raise ParameterError(f"max_wealth must be in [2, {MAX_RANGE}] (one RSA decryption per value)")
    if key_bits < 1024:
        raise ParameterError("RSA keys need at least 1024 bits (2048 unless testing)")
    if key_bits < MIN_RSA_BITS and not insecure_small_key_for_tests:
        raise ParameterError(f"RSA keys under {MIN_RSA_BITS} bits are refused "
                             "(insecure_small_key_for_tests=True for tests only)")
    if not isinstance(wealth, (int, np.integer)) or not 0 <= wealth < max_wealth:
        raise ParameterError(f"wealth must be an integer in [0, {max_wealth})")  # not echoed: secret
    nbytes = (key_bits + 7) // 8
    big_n = max_wealth
    with party.scope("yao1982"):
        if party.id == pair[0]:  # Alice
            key = rsa.generate_private_key(65537, key_bits)
            priv = key.private_numbers()
            n, d = priv.public_numbers.n, priv.d
            party.send(peer, "public-key", _to_arr(n, nbytes), public=True)
            (m_arr,) = recv_arrays(party, peer, "m", 1)
            m = _from_arr(m_arr, "m", nbytes)
            i = int(wealth) + 1
            ys = [int(gmpy2.powmod(m + u - 1, d, n)) for u in range(1, big_n + 1)]
            while True:
                p = int(gmpy2.next_prime(int.from_bytes(party.prg.bytes(16), "big") | (1 << 127)))
                zs = sorted(y % p for y in ys)
                gaps = [b - a for a, b in zip(zs, zs[1:])] + [zs[0] + p - zs[-1]]
                if min(gaps) >= 2:
                    break
            out = [(y % p) + (1 if u > i else 0) for u, y in enumerate(ys, start=1)]
            out = [z % p for z in out]
            party.send(peer, "z", _to_arr(p, 16), np.frombuffer(
                b"".join(z.to_bytes(16, "big") for z in out), np.uint8).reshape(big_n, 16))
            (res,) = recv_arrays(party, peer, "result", 1)
            if res.dtype != np.uint8 or res.shape != (1,) or res[0] > 1:
                raise EncodingError("the result must be one bit")
            return party.publish("result", bool(res[0]))
        # Bob
        (n_arr,) = recv_arrays(party, peer, "public-key", 1)
        n = _from_arr(n_arr, "public key", nbytes)
        if n.bit_length() < key_bits - 1:
            raise ProtocolError(f"Alice's RSA modulus has {n.bit_length()} bits, expected {key_bits}")
        j = int(wealth) + 1
        x = int.from_bytes(party.prg.bytes(nbytes + 16), "big") % n
        k = int(gmpy2.powmod(x, 65537, n))
        party.send(peer, "m", _to_arr((k - j + 1) % n, nbytes))
        p_arr, z_arr = recv_arrays(party, peer, "z", 2)
        p = _from_arr(p_arr, "p", 16)
        if z_arr.dtype != np.uint8 or z_arr.shape != (big_n, 16) or p < 2:
            raise EncodingError(f"bad z sequence of shape {z_arr.shape}")
        zj = int.from_bytes(z_arr[j - 1].tobytes(), "big")
        result = zj == x % p
        party.send(peer, "result", np.array([result], np.uint8), public=True)
        return party.publish("result", result)
