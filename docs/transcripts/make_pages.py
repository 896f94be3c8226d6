"""Regenerate the demo transcripts in docs/transcripts/ and their screenshots in docs/img/.

    python docs/transcripts/make_pages.py                 # every demo that exists
    python docs/transcripts/make_pages.py hospital        # one of them

Each demo is run with its ``--transcript`` flag, writing JSON
(``python examples/millionaires.py --transcript FILE.json``), and the page is
rendered from it with the parties' names; the hospital demo, which has no such
flag, is run through ``mpc.run(..., transcript=True)``. The
screenshot is taken by headless Chromium (Debian's ``chromium``) with one
message opened in the detail panel.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "transcripts"
IMAGES = ROOT / "docs" / "img"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))   # the Chromium driver is a tool, not part of the library

import mpc  # noqa: E402
import browser  # noqa: E402
from mpc.transcript import read_json  # noqa: E402


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def hospital() -> Path:
    h = _module("hospital_stats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mpc.run(h.program, parties=3, transcript=True)
    out = PAGES / "hospital_stats.html"
    title = "Hospital statistics: mean and variance of blood pressure over three hospitals"
    res.transcript.write_html(out, labels=h.HOSPITALS, title=title)
    res.transcript.write_json(PAGES / "hospital_stats.json")
    return out


def by_flag(example: str, page: str, labels: list[str] | dict[int, str] | None, title: str) -> Path:
    """Run the demo with ``--transcript X.json``, then write the page with names and a title."""
    out = PAGES / page
    json_path = out.with_suffix(".json")
    subprocess.run([sys.executable, str(ROOT / "examples" / f"{example}.py"), "--transcript", str(json_path)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    read_json(json_path).write_html(out, labels=labels, title=title)
    return out


def secagg_many(n: int) -> Path:
    """SecAgg+ with ``n`` clients on the Party runtime (n + 1 threads): a large page, rounds collapsed."""
    import numpy as np

    from protocols.secagg import make_config, party_program

    config = make_config(n, 100, variant="secagg+")
    rng = np.random.default_rng(3)  # noqa: TID251 - simulated data only
    values = [None] + [rng.integers(0, 1000, 100) for _ in range(n)]
    res = mpc.run(party_program, n + 1, inputs=values, kwargs={"config": config}, preprocessing=None,
                  transcript=True, timeout=600)
    out = PAGES / f"secagg_plus_{n}.html"
    res.transcript.write_html(out, labels=["server"] + [f"phone {u}" for u in range(n)],
                              title=f"SecAgg+ with {n} phones (degree k = {config.degree}, threshold t = {config.threshold})")
    return out


DEMOS = {
    "hospital": (hospital, "hospital_stats"),
    "millionaires": (lambda: by_flag("millionaires", "millionaires.html", ["Alice", "Bob"],
                                     "Yao's millionaires: Alice and Bob learn who is richer, and nothing else"),
                     "millionaires"),
    "secagg": (lambda: by_flag("secure_aggregation", "secure_aggregation.html",
                               ["server"] + [f"phone {u}" for u in range(5)],
                               "Secure aggregation (SecAgg): the server learns only the sum; phone 2 drops out"),
               "secure_aggregation"),
    "secagg1000": (lambda: secagg_many(1000), "secure_aggregation"),
}


HEIGHTS = {"millionaires": 1100, "secagg1000": 1900}
"""Screenshot heights in pixels where the default 1500 would show blank page or miss the rounds."""


def pick_message(page: Path) -> int | None:
    """A message worth opening in the screenshot: garbled tables, a product, a masked input, an opening."""
    text = page.read_text(encoding="utf-8")
    start = text.index('id="transcript-data">') + len('id="transcript-data">')
    data = json.loads(text[start:text.index("</script>", start)])
    tags = [data["tags"][row[3]] for row in data["m"]]
    for prefix in ("garbled", "mul#", "masked", "open#"):
        for i, tag in enumerate(tags):
            if tag.split("/")[-1].startswith(prefix):
                return i
    return 0 if tags else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("demos", nargs="*", help=f"some of {', '.join(DEMOS)} (default: all that exist)")
    ap.add_argument("--select", type=int, help="message to open in the screenshots")
    args = ap.parse_args()
    names = args.demos or list(DEMOS)
    unknown = sorted(set(names) - set(DEMOS))
    if unknown:
        ap.error(f"unknown demo(s) {', '.join(unknown)}: choose from {', '.join(DEMOS)}")
    for name in names:
        make, example = DEMOS[name]
        if not (ROOT / "examples" / f"{example}.py").is_file():
            print(f"{name}: no example yet, skipped")
            continue
        page = make()
        png = IMAGES / f"transcript_{name}.png"
        select = args.select if args.select is not None else pick_message(page)
        browser.screenshot(page, png, select=select, height=HEIGHTS.get(name, 1500))
        print(f"{name}: {page.relative_to(ROOT)} ({page.stat().st_size:,} B), {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
