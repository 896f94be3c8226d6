"""Secure aggregation, narrated: a server sums five phones' model updates without seeing any.

Run::

    python examples/secure_aggregation.py [--transcript secagg.html] [--clients 5] [--dim 8]

1. Five phones each hold a small model update (floats).
2. They run SecAgg (Bonawitz et al. 2017) with the server over the Party
   runtime (party 0 = server, party i = phone i - 1); phone 2 goes offline
   after sharing its keys, before sending its masked update.
3. We show what the server received from each phone (uniform-looking ring
   elements), the sum it recovers (only the survivors' updates, within the
   quantisation bound) and what the protocol cost.
4. We show that an honest phone refuses a server that asks for both secrets
   of one client, and run SecAgg+ for 300 simulated phones in one process.

``--transcript FILE.html`` writes the run's messages (headers and sizes, never
payloads) as a page through ``mpc.run(..., transcript=...)``.
"""

from __future__ import annotations

import argparse

import numpy as np

import mpc
from mpc.errors import ProtocolAbort
from protocols.secagg import (Client, Quantizer, Server, aggregate, make_config, party_program)
from protocols.secagg.rounds import ADVERTISE, MASKED, SHARE, UNMASK


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transcript", metavar="FILE.html", help="write the run's transcript page")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--many", type=int, default=300, help="phones in the SecAgg+ simulation")
    args = parser.parse_args(argv)
    n, d = args.clients, args.dim
    if n < 4:
        parser.error("use at least 4 clients (one of them drops out)")

    rng = np.random.default_rng(7)  # simulated data only
    updates = [np.round(rng.normal(0, 1, d), 3) for _ in range(n)]
    say(f"{n} phones, each with a model update of {d} floats, e.g. phone 0: {updates[0][:4]} ...")

    quant = Quantizer(clip=8.0, frac_bits=16)
    bits = quant.bits_needed(n)
    config = make_config(n, d, variant="secagg", bits=bits, dropout=0.25)
    say(f"\nParameters: ring Z_2^{bits} (enough for {n} sums of values in [-8, 8] with 16 "
        f"fractional bits), Shamir threshold t = {config.threshold} of {n}.")
    encoded = [quant.encode(u, bits)[0] for u in updates]
    drops = {2: 2}  # phone 2 drops after round 1 (share keys), before its masked input

    say("\nRound 0 'advertise'  each phone sends two X25519 public keys (64 bytes) to the")
    say("                     server, which forwards everyone's keys to everyone.")
    say("Round 1 'share'      each phone Shamir-shares its self-mask seed b_u and its mask key")
    say("                     s_u among the others, each share encrypted for its recipient")
    say("                     (ChaCha20-Poly1305).")
    say("Round 2 'masked'     each phone sends x_u + PRG(b_u) + sum_v +-PRG(s_uv) mod 2^k.")
    say("                     Phone 2 is offline.")
    say("Round 3 'unmask'     survivors send seed shares of live phones and key shares of")
    say("                     phone 2.")

    run = mpc.run(party_program, parties=n + 1, inputs=[None, *encoded],
                  kwargs={"config": config, "drops": drops}, preprocessing=None,
                  record_view=True, transcript=args.transcript)
    total, survivors, server_seconds = run.outputs[0]
    masked = {frm - 1: arrays[0] for frm, tag, arrays in run.views[0] if tag.endswith("/masked")
              and arrays}
    say("\nWhat the server received in round 2 (first 4 ring elements per phone):")
    for u in sorted(masked):
        say(f"  phone {u}: {masked[u][:4]}   (its update starts {encoded[u][:4]})")
    say("  phone 2: nothing (offline)")

    got = quant.decode(total, bits)
    want = sum(updates[u] for u in survivors)
    say(f"\nThe server unmasks the sum of phones {survivors}:")
    say(f"  secure sum   : {np.round(got[:4], 4)} ...")
    say(f"  plaintext sum: {np.round(want[:4], 4)} ...")
    say(f"  max error {np.abs(got - want).max():.2e} <= bound n / 2^17 = {quant.error_bound(len(survivors)):.2e}")
    cost = run.cost
    say(f"\nCost: {cost.rounds} message rounds, server {server_seconds * 1e3:.1f} ms of computation,")
    say(f"  phone 0 sent {cost.bytes_sent[1]:,} B and received {cost.bytes_received[1]:,} B;"
        f" the server received {cost.bytes_received[0]:,} B.")
    if args.transcript:
        say(f"  transcript written to {args.transcript}")

    say("\nDouble masking: a server that asks phone 0 in round 3 'unmask' for BOTH the seed share")
    say("and the key share of phone 1 (which would let it strip both masks from phone 1's")
    say("input) is refused:")
    small = make_config(4, 2, dropout=0.25)
    phones = [Client(u, small, np.array([u, u], dtype=np.uint32)) for u in range(4)]
    server = Server(small)
    down = ADVERTISE.server_step(server, {u: ADVERTISE.client_step(p) for u, p in enumerate(phones)})
    down = SHARE.server_step(server, {u: SHARE.client_step(phones[u], down[u]) for u in range(4)})
    down = MASKED.server_step(server, {u: MASKED.client_step(phones[u], down[u]) for u in range(4)})
    try:
        UNMASK.client_step(phones[0], (np.array([0, 1, 2, 3]), np.array([1])))
    except ProtocolAbort as exc:
        say(f"  ProtocolAbort: {exc}")

    say(f"\nSecAgg+ for {args.many} simulated phones (random neighbour graph), 10% dropping out:")
    many = [rng.normal(0, 0.1, 1000) for _ in range(args.many)]
    res = aggregate(many, variant="secagg+", dropouts=0.1)
    err = np.abs(res.total - sum(many[u] for u in res.survivors)).max()
    c = res.config
    say(f"  each phone paired with k = {c.degree} neighbours (not {args.many - 1}), "
        f"threshold t = {c.threshold};")
    say(f"  privacy failure <= {c.privacy_failure:.1e}, correctness failure <= {c.correctness_failure:.1e}")
    say(f"  {len(res.survivors)} survivors, max error {err:.1e}; server {res.cost.server_seconds:.2f} s, "
        f"per phone {res.cost.client_seconds * 1e3:.0f} ms, {res.cost.bytes_per_client / 1e3:.1f} kB")
    return 0 if np.abs(got - want).max() <= quant.error_bound(len(survivors)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
