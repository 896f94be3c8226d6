"""The progress bar of a training run: tqdm's if installed, else a plain line (layer: ml)."""

from __future__ import annotations

import sys
from typing import Any, Iterator

from mpc.optional import available


class _PlainProgress:
    """The fallback when tqdm is not installed: one line on stderr, rewritten on a terminal."""

    def __init__(self, rounds: int, desc: str) -> None:
        self.rounds, self.desc, self.done, self.postfix = rounds, desc, 0, ""
        self.tty = sys.stderr.isatty()

    def __iter__(self) -> Iterator[int]:
        for r in range(1, self.rounds + 1):
            yield r
            self.done = r
            if self.tty:
                sys.stderr.write(f"\r{self._line()}")
                sys.stderr.flush()

    def _line(self) -> str:
        return f"{self.desc}: round {self.done}/{self.rounds}" + (f" {self.postfix}" if self.postfix else "")

    def set_postfix(self, **values: str) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        sys.stderr.write(("\r" if self.tty else "") + self._line() + "\n")
        sys.stderr.flush()


class _NoProgress(_PlainProgress):
    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.rounds + 1))

    def close(self) -> None:
        pass


def progress_bar(rounds: int, desc: str, progress: bool) -> Any:
    """Rounds 1..rounds with a progress bar: tqdm's if installed, else a plain line; none if off.

    ``progress=False`` never imports tqdm (a base install has none).
    """
    if not progress:
        return _NoProgress(rounds, desc)
    if available("tqdm"):
        from tqdm.auto import tqdm
        return tqdm(range(1, rounds + 1), desc=desc)
    return _PlainProgress(rounds, desc)


__all__ = ["progress_bar"]
