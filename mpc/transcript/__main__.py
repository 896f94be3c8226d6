"""Command line for transcripts: JSON to page, parts to one run (layer: mpc core).

    python -m mpc.transcript html RUN.json -o RUN.html [--title T] [--labels A,B,C]
    python -m mpc.transcript merge PART0.json PART1.json ... -o RUN.html   (one part per process)

Screenshots need a browser, which the library does not drive: ``python tools/browser.py
RUN.html RUN.png`` (headless Chromium).
"""

from __future__ import annotations

import argparse
import sys

from .html import write_html
from .merge import merge
from .record import read_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mpc.transcript", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    h = sub.add_parser("html", help="render a JSON transcript as a self-contained page")
    h.add_argument("json")
    h.add_argument("-o", "--output", required=True)
    h.add_argument("--title")
    h.add_argument("--labels", help="comma-separated party names")
    h.add_argument("--collapsed", action="store_true", help="start with every round collapsed")
    m = sub.add_parser("merge", help="combine the parts written by each party's process")
    m.add_argument("parts", nargs="+")
    m.add_argument("-o", "--output", required=True, help="RUN.html, or RUN.json")
    m.add_argument("--title")
    args = ap.parse_args(argv)
    if args.command == "merge":
        merge([read_json(p) for p in args.parts], title=args.title).write(args.output)
        return 0
    t = read_json(args.json)
    labels = args.labels.split(",") if args.labels else None
    write_html(t, args.output, title=args.title, labels=labels, collapsed=args.collapsed or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
