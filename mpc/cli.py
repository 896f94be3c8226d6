"""The ``mpc`` command: keys, one party of a session, a local N-party run, the dealer (layer: mpc core).

::

    mpc keys new --party 0 --out keys/          # keys/party0.key (0600) + keys/party0.crt
    mpc keys show keys/party0.crt               # its SHA-256 fingerprint
    mpc run PROGRAM --party 0 --config parties.toml [--key keys/party0.key]
    mpc dealer --config parties.toml            # if the config has a [dealer]
    mpc run PROGRAM --local 3                   # 3 processes over loopback TCP + TLS
    mpc run PROGRAM --local 3 --inputs a.npy b.npy c.npy   # each party its own input file

PROGRAM is ``file.py`` (function ``program``), ``file.py:function`` or
``module:function``; every party calls ``function(party, *args, **kwargs)``
with ``--args``/``--kwargs`` given as JSON. A party's private input comes from
its own file: ``--input FILE`` with ``--party I``, ``--inputs F0 F1 ...`` with
``--local N`` (``.npy``, ``.npz``, ``.csv``, ``.json``: :mod:`mpc.inputs`); it is
the program's first argument after ``party``, as in ``mpc.run(..., inputs=...)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any, Sequence

import numpy as np

from .errors import ConciliumError, ParameterError, PartyError, party_failure
from .preprocessing.dealer import TrustedDealerWarning


def _json(text: str, kind: type, what: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"mpc: {what} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise SystemExit(f"mpc: {what} must be a JSON {kind.__name__}")
    return value


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=20)
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    from .distributed import encode_value

    return json.dumps(encode_value(a), sort_keys=True) == json.dumps(encode_value(b), sort_keys=True)


def _cmd_keys(ns: argparse.Namespace) -> int:
    from .transport.tls import fingerprint, load_certificate, new_identity

    if ns.keys_cmd == "new":
        if ns.party != "dealer" and not ns.party.isdigit():
            raise ParameterError(f"--party must be a party number or 'dealer', not {ns.party!r}")
        party: int | str = ns.party if ns.party == "dealer" else int(ns.party)
        files = new_identity(party, ns.out, overwrite=ns.force)
        print(f"private key  {files.key}  (keep it on this party's machine only)")
        print(f"certificate  {files.certificate}  (give it to every other party)")
        print(f"fingerprint  sha256:{files.fingerprint}")
        return 0
    print(f"sha256:{fingerprint(load_certificate(ns.certificate))}")
    return 0


def _cmd_run(ns: argparse.Namespace) -> int:
    from . import distributed

    from .inputs import load_input

    args = _json(ns.args, list, "--args")
    kwargs = _json(ns.kwargs, dict, "--kwargs")
    if ns.local is not None:
        if ns.party is not None or ns.config is not None:
            raise SystemExit("mpc: give either --local N or --party I --config FILE, not both")
        if ns.input is not None:
            raise SystemExit("mpc: --input FILE is for --party I; with --local N give --inputs F0 F1 ...")
        inputs = None
        if ns.inputs is not None:
            if len(ns.inputs) != ns.local:
                raise SystemExit(f"mpc: --local {ns.local} needs {ns.local} --inputs files (one per party, "
                                 f"in party order), got {len(ns.inputs)}")
            inputs = [load_input(f, i) for i, f in enumerate(ns.inputs)]
        pre = ns.preprocessing or (None if ns.no_dealer else "dealer")
        result = distributed.run_local(ns.program, ns.local, inputs=inputs, args=args, kwargs=kwargs,
                                       frac_bits=ns.frac_bits, timeout=ns.timeout or 30.0,
                                       preprocessing=pre, transcript=ns.transcript)
        outs = result.outputs
        if all(_same(o, outs[0]) for o in outs[1:]):
            print(f"result (all {len(outs)} parties): {_show(outs[0])}")
        else:
            for i, o in enumerate(outs):
                print(f"party {i}: {_show(o)}")
        if not ns.quiet:
            wire = sum(s for per in result.socket_bytes.values() for s, _ in per.values())
            print(f"cost: {result.cost.summary()}")
            included = "handshakes and dealer" if pre == "dealer" else "handshakes"
            print(f"  on the wire (TLS, {included} included): {wire:,} B")
            if ns.transcript:
                print(f"transcript: {ns.transcript} (merged from every party's own record)")
        return 0
    if ns.party is None or ns.config is None:
        raise SystemExit("mpc: run needs --local N, or --party I and --config FILE")
    if ns.inputs is not None:
        raise SystemExit("mpc: --inputs F0 F1 ... is for --local N; party I gives its own --input FILE")
    if ns.input is not None:
        args = [load_input(ns.input, ns.party), *args]
    elif ns.input_value is not None:            # from the --local launcher: exact values
        from .transport.values import decode_value
        with open(ns.input_value, encoding="utf-8") as f:
            args = [decode_value(json.load(f)), *args]
    from . import config as cfgmod

    conf = cfgmod.load(ns.config)
    if ns.timeout:
        conf = cfgmod.SessionConfig(conf.parties, conf.dealer, float(ns.timeout), conf.name, conf.path)
    record = bool(ns.transcript) or ns.record_transcript
    fn = distributed.load_program(ns.program)
    outcome = distributed.execute_party(fn, conf, ns.party, key=ns.key, args=args, kwargs=kwargs,
                                        frac_bits=ns.frac_bits, session_tag=ns.session,
                                        record_transcript=record,
                                        name=distributed._canonical_name(ns.program),
                                        preprocessing=ns.preprocessing)
    if ns.result:
        with open(ns.result, "w", encoding="utf-8") as f:
            f.write(outcome.to_json())
    if ns.transcript and outcome.transcript is not None:
        part = outcome.transcript
        part.error = None if outcome.error is None else str(outcome.error)
        part.write(ns.transcript)
    if outcome.error is not None:
        raise party_failure(ns.party, outcome.error)
    if not ns.quiet:
        print(f"party {ns.party}: {_show(outcome.output)}")
        sent = sum(m.payload_bytes for m in outcome.log if m.sender == ns.party)
        wire = sum(s for s, _ in outcome.socket_bytes.values())
        rounds = max((m.round + 1 for m in outcome.log if m.sender >= 0), default=0)
        mine = sum(1 for m in outcome.log if m.sender == ns.party)
        print(f"cost (this party): sent {mine} messages, {sent:,} B payload, {wire:,} B on the wire "
              f"(TLS, handshakes included); {rounds} rounds; {outcome.seconds:.3f} s")
    return 0


def _cmd_dealer(ns: argparse.Namespace) -> int:
    from . import distributed

    served = distributed.serve_dealer(ns.config, key=ns.key, session_tag=ns.session)
    print(f"dealer: served {served} requests")
    return 0


def _short_warning(message: Any, category: type, *_: Any, **__: Any) -> str:
    return f"mpc: warning: {message}\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpc", description="Concilium: secure multi-party computation")
    sub = p.add_subparsers(dest="cmd", required=True)

    keys = sub.add_parser("keys", help="make or inspect a party's key and certificate")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    new = ksub.add_parser("new", help="new key pair and self-signed certificate")
    new.add_argument("--party", required=True, help="party id (0, 1, ...) or 'dealer'")
    new.add_argument("--out", required=True, help="folder for partyI.key and partyI.crt")
    new.add_argument("--force", action="store_true", help="overwrite existing files")
    show = ksub.add_parser("show", help="print a certificate's fingerprint")
    show.add_argument("certificate")

    run = sub.add_parser("run", help="run a party program")
    run.add_argument("program", help="file.py[:function] or module:function")
    run.add_argument("--local", type=int, metavar="N", help="N parties as local processes over TCP+TLS")
    run.add_argument("--party", type=int, metavar="I", help="run party I of --config")
    run.add_argument("--config", help="the session's TOML config")
    run.add_argument("--key", help="this party's private key (default: its certificate's path, .key)")
    run.add_argument("--input", metavar="FILE",
                     help="this party's private input (.npy, .npz, .csv, .json), given to the program "
                          "as its first argument after party")
    run.add_argument("--inputs", nargs="+", metavar="FILE",
                     help="with --local N: one input file per party, in party order")
    run.add_argument("--input-value", help=argparse.SUPPRESS)  # exact value, from the --local launcher
    run.add_argument("--args", default="[]", help="JSON list of extra arguments for the program")
    run.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    run.add_argument("--frac-bits", type=int, default=16, help="fixed-point fractional bits (16)")
    run.add_argument("--timeout", type=float, help="seconds to wait for a peer (default: config, 30)")
    run.add_argument("--session", default="", help="run tag every party gives (separates runs)")
    run.add_argument("--transcript", help="write the transcript (.html or .json)")
    run.add_argument("--no-dealer", action="store_true", help="--local without a trusted dealer")
    run.add_argument("--preprocessing", choices=["ot", "he"],
                     help="the parties make their own preprocessing (no dealer, no third party): ot for any n, he for 2")
    run.add_argument("--quiet", action="store_true", help="print only the result")
    run.add_argument("--result", help=argparse.SUPPRESS)  # JSON outcome, for the --local launcher
    run.add_argument("--record-transcript", action="store_true", help=argparse.SUPPRESS)

    sub.add_parser("fl", help="federated learning across processes: 'mpc fl server|client --help'",
                   add_help=False)
    sub.add_parser("analytics", help="federated analytics across processes: 'mpc analytics "
                   "server|client --help'", add_help=False)
    dealer = sub.add_parser("dealer", help="run the session's trusted dealer")
    dealer.add_argument("--config", required=True)
    dealer.add_argument("--key", help="the dealer's private key (default: its certificate's path, .key)")
    dealer.add_argument("--session", default="", help="run tag the parties give")
    return p


def _cmd_plugin(name: str, argv: Sequence[str]) -> int:
    """``mpc NAME ...`` from a higher layer (``fl``: the federated roles in ``ml``, which ``mpc``
    never imports): the command is found through the ``concilium.commands`` entry points that
    the installed distribution declares (pyproject.toml)."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="concilium.commands") if ep.name == name]
    if not found:
        print(f"mpc {name}: no such command is installed (reinstall concilium: pip install -e .)",
              file=sys.stderr)
        return 2
    return int(found[0].load()(list(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["fl"], ["analytics"]):
        return _cmd_plugin(args[0], args[1:])
    ns = parser().parse_args(argv)
    warnings.simplefilter("once", TrustedDealerWarning)
    warnings.formatwarning = _short_warning
    try:
        if ns.cmd == "keys":
            return _cmd_keys(ns)
        if ns.cmd == "run":
            return _cmd_run(ns)
        return _cmd_dealer(ns)
    except PartyError as exc:
        print(f"mpc: {exc}", file=sys.stderr)
        return 2
    except ConciliumError as exc:
        print(f"mpc: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
