"""Command line for transcripts: JSON to page, page to screenshot (layer: mpc core).

    python -m mpc.transcript html RUN.json -o RUN.html [--title T] [--labels A,B,C]
    python -m mpc.transcript screenshot RUN.html RUN.png [--width 1400 --height 1500 --select 9]
    python -m mpc.transcript merge PART0.json PART1.json ... -o RUN.html   (one part per process)
"""

from __future__ import annotations

import argparse
import sys

from .browser import screenshot
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
    s = sub.add_parser("screenshot", help="PNG of a page, drawn by headless Chromium")
    s.add_argument("page")
    s.add_argument("png")
    s.add_argument("--width", type=int, default=1400)
    s.add_argument("--height", type=int, default=1500)
    s.add_argument("--select", type=int, help="open this message's details first")
    m = sub.add_parser("merge", help="combine the parts written by each party's process")
    m.add_argument("parts", nargs="+")
    m.add_argument("-o", "--output", required=True, help="RUN.html, or RUN.json")
    m.add_argument("--title")
    args = ap.parse_args(argv)
    if args.command == "merge":
        merge([read_json(p) for p in args.parts], title=args.title).write(args.output)
        return 0
    if args.command == "html":
        t = read_json(args.json)
        labels = args.labels.split(",") if args.labels else None
        write_html(t, args.output, title=args.title, labels=labels, collapsed=args.collapsed or None)
    else:
        screenshot(args.page, args.png, width=args.width, height=args.height, select=args.select)
    return 0


if __name__ == "__main__":
    sys.exit(main())
