"""Open transcript pages in headless Chromium: DOM dumps and screenshots (a tool, outside the packages).

Used by the tests (a page is checked in a real browser, tests/mpc/transcript/test_transcript_browser.py)
and to make the screenshots in the docs (docs/transcripts/make_pages.py)::

    python tools/browser.py RUN.html RUN.png [--width 1400 --height 1500 --select 9]
 Chromium is an optional external program (Debian's
``chromium`` package); nothing here is needed to write a page. Each call uses a
fresh, temporary profile and switches off background networking, component
updates and sync, so the browser makes no request of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio")


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM`` first), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(page: str | os.PathLike[str], extra: list[str], timeout: float,
         fragment: str = "") -> subprocess.CompletedProcess[str]:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found: install Debian's 'chromium' package or set $CHROMIUM")
    url = Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="concilium-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True,
                              cwd=profile)


def dump_dom(page: str | os.PathLike[str], *, select: int | None = None, timeout: float = 90.0) -> str:
    """The page's DOM after its scripts ran, serialised by headless Chromium.

    ``select=i`` opens message ``i`` (and its round) in the detail panel first.
    """
    return _run(page, ["--dump-dom"], timeout,
                fragment="" if select is None else f"msg={int(select)}").stdout


def screenshot(page: str | os.PathLike[str], png: str | os.PathLike[str], *, width: int = 1400,
               height: int = 1500, select: int | None = None, timeout: float = 90.0) -> None:
    """Save a ``width`` x ``height`` PNG of the page as headless Chromium draws it.

    ``select=i`` opens message ``i`` in the detail panel first (the page's
    ``#show=<i>`` link; ``#msg=<i>`` also scrolls to it).
    """
    out = Path(png).resolve()
    _run(page, [f"--screenshot={out}", f"--window-size={width},{height}", "--hide-scrollbars"], timeout,
         fragment="" if select is None else f"show={int(select)}")
    if not out.is_file():
        raise RuntimeError(f"Chromium did not write {out}")


def main(argv: list[str] | None = None) -> int:
    """``python tools/browser.py PAGE PNG``: a screenshot of a transcript page."""
    ap = argparse.ArgumentParser(prog="python tools/browser.py",
                                 description="PNG of a transcript page, drawn by headless Chromium")
    ap.add_argument("page")
    ap.add_argument("png")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--select", type=int, help="open this message's details first")
    args = ap.parse_args(argv)
    screenshot(args.page, args.png, width=args.width, height=args.height, select=args.select)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
