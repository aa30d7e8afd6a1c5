"""Disk space set aside beside the journal, so a full disk refuses new commands instead of losing one.

Actors apply a command's events in memory before the journal makes them durable, so a journal write
that fails leaves the process behind its own journal, and the journal stops for good. To keep a full
disk from getting that far, the journal keeps a preallocated file of ``size`` bytes (``reserve``):

- while the reserve is held, commands are accepted;
- a journal write that meets ENOSPC gives the reserve back to the file system and carries on, so
  the command already decided still becomes durable (and events from media, such as a stream that
  starts or a recording that fails, keep being journaled from that space);
- without the reserve, commands are refused (HTTP 507) until the reserve can be allocated again,
  which is how Kiln notices that space came back.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = "reserve"
DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024
RETRY_SECONDS = 0.5


class DiskReserve:
    def __init__(self, directory: Path, size: int = DEFAULT_RESERVE_BYTES, *,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.path = Path(directory) / RESERVE_NAME
        self.size = size
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._held = False
        self._next_try = 0.0

    @property
    def held(self) -> bool:
        return self._held

    def ensure(self) -> bool:
        """True when the reserve is held; tries to allocate it again (at most every ``retry_seconds``)."""
        if self._held:
            return True
        with self._lock:
            if self._held:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_seconds
            try:
                self._allocate()
            except OSError as exc:
                self.path.unlink(missing_ok=True)
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    log.error("journal reserve not allocated path=%s error=%s", self.path, exc)
                return False
            self._held = True
        log.warning("journal reserve allocated path=%s bytes=%d: commands are accepted", self.path, self.size)
        return True

    def release(self) -> bool:
        """Give the reserve's space back (on ENOSPC); False when there was none to give."""
        with self._lock:
            if not self._held:
                return False
            self._held = False
            self._next_try = time.monotonic() + self.retry_seconds
            self.path.unlink(missing_ok=True)
        log.error("journal reserve released path=%s bytes=%d: the disk is full, commands are refused "
                  "until %d bytes are free again", self.path, self.size, self.size)
        return True

    def _allocate(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
            os.fsync(fd)
        finally:
            os.close(fd)
