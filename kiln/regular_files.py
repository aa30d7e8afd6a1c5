"""Reading and writing files at paths someone else chose (the API, a config file) without ever waiting.

``open()`` of a FIFO waits until the other end is opened: a reader for a writer, a writer for a reader.
A FIFO where Kiln expects a certificate, an info file or a playlist would hold whatever thread opened
it for good (the event loop, an actor, a worker that shutdown then joins). So files are opened with
``O_NONBLOCK`` and checked with ``fstat`` (a FIFO is refused at once), and files are written under a
fresh temporary name (``O_EXCL``) that then replaces the target, so whatever stood at the target, a
FIFO too, is never opened.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path


class NotRegularFile(OSError):
    """Something other than a regular file (a FIFO, a directory, a device) where a file is expected."""


def not_regular(path: str | Path) -> NotRegularFile:
    return NotRegularFile(errno.EINVAL, f"not a regular file: {path}")


def require_regular(path: Path) -> Path:
    """``path`` when it is a regular file (symlinks followed); OSError otherwise, without opening it."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise not_regular(path)
    return path


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; OSError for anything else (a FIFO is refused, never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise not_regular(path)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def write_replacing(path: Path, data: bytes, tmp: Path | None = None, mode: int | None = None) -> None:
    """Write ``data`` to ``tmp`` (default: ``path`` + this process's and thread's ids + ``.tmp``, so two
    writers of one path never share it), made afresh, then rename it over ``path``; ``mode`` set exactly
    when given (else 0o666 less the umask)."""
    tmp = tmp if tmp is not None else path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)  # a FIFO (or a file someone else holds open) left there: gone, not opened
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666 if mode is None else mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(tmp, mode)  # the umask narrowed what os.open was asked for
    os.replace(tmp, path)
