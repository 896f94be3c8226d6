"""Writing a file that others must not read or redirect (layer: mpc core).

:func:`private_file` writes to a fresh temporary name in the destination's
folder, opened with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 (or the
mode given), then moves it into place in one step: ``rename`` (which replaces
a file or a planted link itself, never the link's target) when replacing is
allowed, else ``link`` (which refuses any existing name, a dangling link
included). A reader never sees a half-written file, and no link planted at
the destination or the temporary name is ever followed.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from .errors import ParameterError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


@contextmanager
def private_file(path: str | os.PathLike[str], *, replace: bool,
                 mode: int = 0o600) -> Iterator[BinaryIO]:
    """A binary file object whose content lands at ``path`` when the block ends without error.

    ``replace=False`` refuses an existing ``path`` (file, folder or link, even
    a dangling one) with :class:`ParameterError`.
    """
    dest = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(dest))
    if not replace and os.path.lexists(dest):
        raise ParameterError(f"{dest} already exists; refusing to overwrite it")
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, _FLAGS, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest, follow_symlinks=False)
            except FileExistsError:
                raise ParameterError(f"{dest} already exists; refusing to overwrite it") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
