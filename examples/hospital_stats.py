"""Three hospitals compute the mean and variance of their patients' blood pressure,
without any hospital revealing its own measurements.

Run it:  python examples/hospital_stats.py
         python examples/hospital_stats.py --transcript hospital.html   (what crossed the wire)
         mpc run examples/hospital_stats.py --local 3     (one OS process per hospital)

What happens:
1. Each hospital secret-shares two numbers: the sum of its readings and the sum of
   their squares (additive shares over Z_2^64; the other hospitals receive only a
   16-byte seed that expands to a uniformly random share).
2. The patient counts are secret-shared and summed too; only their total is
   opened (it is part of the answer).
3. Everything else is computed on shares: mean = S / N, variance = Q / N - mean^2
   (one secure multiplication with a Beaver triple from a trusted dealer).
4. Only the mean and the variance (and the total patient count) are revealed.

Every shared value carries a public bound, declared from what everyone knows (a
reading is below 300 mmHg, a hospital reports at most 1,000 patients), never from the
data; a product that could overflow the fixed-point range is refused (RangeError).
"""

from __future__ import annotations

import argparse

import numpy as np

import mpc

HOSPITALS = ["St. Mary's", "General", "Children's"]
MAX_READING = 300.0       # mmHg: public bounds (physiology and hospital sizes), not taken from data
MAX_PATIENTS = 1_000


def hospital_data(hospital: int) -> np.ndarray:
    """Simulated systolic blood pressure readings (mmHg) of one hospital's patients."""
    rng = np.random.default_rng(1000 + hospital)  # simulated data, not a secret
    n_patients = [120, 80, 200][hospital % 3]
    return np.round(rng.normal(118 + 6 * hospital, 14, n_patients), 1)


def program(party: mpc.Party) -> dict[str, float]:
    """Party code: every hospital runs this with its own data."""
    readings = hospital_data(party.id)
    local = np.array([readings.sum(), (readings**2).sum()])
    with party.phase("share inputs"):
        # one SharedTensor per hospital, bounded by n * max^2 (its owner checks it)
        shared = mpc.share_all(party, local, bound=MAX_PATIENTS * MAX_READING**2)
        counts = mpc.share_all(party, np.array(len(readings)), integer=True)
    with party.phase("compute"):
        total = shared[0]
        for s in shared[1:]:
            total = total + s                           # local additions, no messages
        n_total = sum(counts[1:], counts[0]).reveal()   # the total count is public
        # public scalar: 1 round (truncation); a mean of readings stays below their bound
        mean = (total[0] * (1.0 / float(n_total))).assume_bound(MAX_READING)
        mean_sq = (total[1] * (1.0 / float(n_total))).assume_bound(MAX_READING**2)
        variance = mean_sq - mean * mean                # Beaver multiplication: 2 rounds
    with party.phase("reveal"):
        return {"patients": int(n_total), "mean": float(mean.reveal()),
                "variance": float(variance.reveal())}


def narrate(result: mpc.RunResult) -> None:
    print("\nWhat crossed the wire (payload bytes, by phase):")
    for phase, pc in result.cost.phases().items():
        sent = ", ".join(f"{'dealer' if p < 0 else HOSPITALS[p]} {b:,} B"
                         for p, b in sorted(pc.bytes_sent.items()) if b)
        print(f"  {phase:<14} {pc.rounds} round(s): {sent}")
    view = result.views[1]
    print(f"\nWhat {HOSPITALS[1]} saw: {len(view)} messages.")
    shown = 4
    for sender, tag, arrays in view[:shown]:
        who = "dealer" if sender < 0 else HOSPITALS[sender]
        first = arrays[0].reshape(-1)[:2]
        print(f"  from {who:<11} tag {tag:<22} {first.tolist()} ...")
    if len(view) > shown:
        print(f"  ... and {len(view) - shown} more of the same kind (--transcript FILE.html shows all)")
    print("  Seeds and opened masks are uniformly random: nothing in them depends on\n"
          "  another hospital's readings. Only the total count, the mean and the\n"
          "  variance are opened.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transcript", metavar="FILE.html",
                    help="write what crossed the wire as a web page (or .json)")
    args = ap.parse_args(argv)
    for h, name in enumerate(HOSPITALS):
        print(f"{name:<11} holds {len(hospital_data(h))} private readings")
    result = mpc.run(program, parties=3, record_view=True, transcript=args.transcript)
    out = result.outputs[0]
    everything = np.concatenate([hospital_data(h) for h in range(3)])
    narrate(result)
    print(f"\nResult, known to all three hospitals ({out['patients']} patients):")
    print(f"  secure    mean {out['mean']:.4f} mmHg   variance {out['variance']:.4f}")
    print(f"  plaintext mean {everything.mean():.4f} mmHg   variance {everything.var():.4f}"
          "   (for checking only: nobody could compute this line)")
    print(f"\nCost: {result.cost.summary()}")
    if args.transcript and result.transcript is not None:   # HTML, or JSON for .json
        result.transcript.write(args.transcript, labels=HOSPITALS, title="Three hospitals: mean and variance")
        print(f"Transcript written to {args.transcript}")


if __name__ == "__main__":
    main()
