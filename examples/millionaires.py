"""Yao's millionaires: Alice and Bob learn who is richer, and nothing else about each other's wealth.

Run it:  python examples/millionaires.py                      (default wealths)
         python examples/millionaires.py --alice 4200000 --bob 5100000
         python examples/millionaires.py --transcript millionaires.html   (what crossed the wire)
         python examples/millionaires.py --classic             (Yao's 1982 RSA protocol)
         mpc run examples/millionaires.py --local 2            (one OS process per millionaire)

What happens (garbled circuits, as every modern MPC framework does it):
1. Alice (the garbler) turns "a > b" for 64-bit numbers into a garbled circuit: 64 AND
   gates, each a pair of 16-byte ciphertexts under random 128-bit wire labels.
2. Bob (the evaluator) obtains the labels of his own 64 bits by oblivious transfer:
   128 public-key OTs once, then an OT extension. Alice never sees which labels he took.
3. Alice sends the labels of her own bits and the garbled tables; they are uniformly
   random strings to Bob, whatever her wealth.
4. Bob evaluates the circuit gate by gate, decodes the single output bit and tells Alice.
"""

from __future__ import annotations

import argparse

import numpy as np

import mpc
from protocols.millionaires import millionaires, yao1982

NAMES = ["Alice", "Bob"]
DEFAULT_WEALTH = [7_300_000, 5_900_000]

WHAT = {  # message tag (last part) -> what it carries
    "batch": "how many comparisons (public: 1)",
    "A": "base OT: one elliptic-curve point (Chou-Orlandi)",
    "B": "base OT: 128 curve points; uniform whatever Alice's secret choice bits",
    "iknp-u": "OT extension matrix: Bob's input bits hidden under 128 PRG streams",
    "iknp-cot": "OT corrections: Bob now holds one label per input bit, the one for his bit",
    "garbled": "Alice's 64 input labels, 64 garbled AND gates (2 x 16 B each), 1 decoding bit",
    "result": "the outcome bit, sent in the clear: the only thing either party learns",
    "public-key": "Alice's RSA public key",
    "m": "Bob's E(x) shifted by his wealth: a uniformly random number mod n to Alice",
    "z": "Alice's 100 numbers mod p; only the one at Bob's position means anything to him",
}


def check_parties(party: mpc.Party) -> None:
    """Two millionaires, no more: say so before the protocol fails on a third party."""
    if party.n != len(NAMES):
        raise mpc.ParameterError(f"the millionaires' program is for 2 parties (Alice garbles, Bob "
                                 f"evaluates), not {party.n}: mpc run examples/millionaires.py --local 2")


def program(party: mpc.Party, wealth: int | None = None) -> bool:
    """Party code: each millionaire runs this with its own wealth (Alice garbles)."""
    check_parties(party)
    wealth = DEFAULT_WEALTH[party.id] if wealth is None else wealth
    with party.phase("compare"):
        return millionaires(party, wealth, bits=64)


def classic_program(party: mpc.Party, wealth: int | None = None) -> bool:
    """Yao's 1982 protocol: wealth in millions, from 0 to 99."""
    check_parties(party)
    wealth = DEFAULT_WEALTH[party.id] if wealth is None else wealth
    with party.phase("compare"):
        return yao1982(party, wealth // 1_000_000, max_wealth=100)


def _what(tag: str) -> str:
    last = tag.split("/")[-1].split("#")[0]
    return WHAT.get(last, "")


def narrate(result: mpc.RunResult, classic: bool = False) -> None:
    print("\nWhat crossed the wire, in order:")
    for m in result.cost.messages:
        print(f"  round {m.round}  {NAMES[m.sender]:>5} -> {NAMES[m.receiver]:<5} {m.payload_bytes:>8,} B  "
              f"{m.tag:<46} {_what(m.tag)}")
    view = result.views[1]
    labels = [a for _frm, tag, a in view if "garbled" in tag]
    if labels:
        first = labels[0][0][:3, 0].view(np.uint8)
        print("\nWhat Bob saw of Alice's wealth: her input labels, e.g. "
              + ", ".join(bytes(r).hex() for r in first) + ", ...")
        print("  Fresh random strings: the same distribution for any wealth with the same outcome.")
    if classic:
        print("\nWhat Alice saw of Bob's wealth: m = E(x) - j + 1 mod n, uniformly random to her.")
        print("What Bob saw of Alice's wealth: numbers mod p that he cannot decrypt, but one.")
    else:
        print("What Alice saw of Bob's wealth: base-OT points and an OT matrix, uniformly random.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alice", type=int, default=DEFAULT_WEALTH[0], help="Alice's wealth (0 .. 2^64-1)")
    ap.add_argument("--bob", type=int, default=DEFAULT_WEALTH[1], help="Bob's wealth (0 .. 2^64-1)")
    ap.add_argument("--transcript", metavar="FILE.html", help="write what crossed the wire as a web page")
    ap.add_argument("--classic", action="store_true", help="Yao's 1982 RSA protocol (wealth < 100 million)")
    args = ap.parse_args(argv)
    wealth = [args.alice, args.bob]
    for name, w in zip(NAMES, wealth):
        print(f"{name:<5} privately holds {w:,}")
    prog = classic_program if args.classic else program
    if args.classic and not all(0 <= w < 100_000_000 for w in wealth):
        raise SystemExit("--classic compares wealth in whole millions below 100 million")
    result = mpc.run(prog, 2, inputs=wealth, preprocessing=None, record_view=True,
                     transcript=args.transcript)
    narrate(result, classic=args.classic)
    richer = result.outputs[0]
    if args.classic:
        verdict = "Alice is at least as rich as Bob (in whole millions)" if richer else "Bob is richer"
    else:
        verdict = "Alice is richer" if richer else "Alice is not richer (Bob is richer, or they tie)"
    print(f"\nBoth learn exactly one bit: {verdict}.")
    print(f"Cost: {result.cost.summary()}")
    if args.transcript and result.transcript is not None:   # HTML, or JSON for .json
        result.transcript.write(args.transcript, labels=NAMES, title="Yao's millionaires: who is richer?")
        print(f"Transcript written to {args.transcript}")


if __name__ == "__main__":
    main()
