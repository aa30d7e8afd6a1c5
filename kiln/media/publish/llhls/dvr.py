"""LL-HLS DVR storage: segment bytes beyond the live window live on disk, not in memory.

OME's ``<DVR>`` keeps MaxDuration seconds listed in the chunklist while only the live window stays
in memory; older segments spill to files under TempStoragePath. Every file operation runs on one
worker thread (the event loop never blocks) in submission order, so a read queued after a write
sees the file and a delete queued after a write removes it. Until its write has finished a segment
is served from the bytes handed over. The directory is per stream key, and removed when the stream
ends: a restarted stream draws a new key, so nothing could ever ask for the old files again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kiln.config.values import as_float, is_true
from kiln.control_cpu import free_thread

log = logging.getLogger(__name__)

DEFAULT_TEMP_STORAGE = "/tmp/ll_hls_dvr"
DEFAULT_MAX_DURATION = 3600.0
_DISK = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llhls-dvr", initializer=free_thread)


@dataclass(frozen=True)
class DvrSettings:
    """``<DVR>`` of the LLHLS publisher (media-spec §2.1); ``enabled`` False means no DVR."""

    enabled: bool = False
    temp_storage_path: str = DEFAULT_TEMP_STORAGE
    max_duration: float = DEFAULT_MAX_DURATION


def dvr_settings(section: Any) -> DvrSettings:
    """``<DVR>`` of LLHLS or HLS: OME's defaults (off, /tmp/ll_hls_dvr, 3600 s) for what is left out."""
    if not isinstance(section, dict):
        return DvrSettings()
    path = str(section.get("tempStoragePath") or "").strip() or DEFAULT_TEMP_STORAGE
    max_duration = as_float(section.get("maxDuration"), DEFAULT_MAX_DURATION)
    return DvrSettings(enabled=is_true(section.get("enable", False)), temp_storage_path=path,
                       max_duration=max_duration if max_duration > 0 else DEFAULT_MAX_DURATION)


def stream_directory(root: str, vhost: str, app: str, stream: str, key: str) -> Path:
    """One directory per published stream (names quoted: an app or stream name is not a path)."""
    return Path(root).joinpath(*(quote(part, safe="") or "_" for part in (vhost, app, stream, key)))


class DvrStore:
    """Files of one stream's spilled segments; every method is called on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, directory: Path) -> None:
        self.loop = loop
        self.directory = directory
        self._writing: dict[str, bytes] = {}   # handed over, write not finished yet
        self._stored: set[str] = set()         # written and not deleted
        self._closed = False
        # made now, on the disk thread: an unwritable TempStoragePath is logged as the stream starts, not
        # at its first spill, and the process's one disk thread is up from the first stream on
        self._last: Future[None] | None = _DISK.submit(directory.mkdir, parents=True, exist_ok=True)
        self._last.add_done_callback(self._made)

    def put(self, name: str, data: bytes) -> None:
        if self._closed:
            return
        self._writing[name] = data
        fut = _DISK.submit(_write, self.directory, name, data)
        self._last = fut
        fut.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._written, name, f))

    def _made(self, fut: Future[None]) -> None:
        error = fut.exception()
        if error is not None:  # each spill's write will fail and say so as well
            log.error("llhls dvr directory could not be made directory=%s error=%s", self.directory, error)

    def _written(self, name: str, fut: Future[None]) -> None:
        data = self._writing.pop(name, None)
        if data is None or self._closed:
            return  # deleted (or the stream ended) while it was being written
        error = fut.exception()
        if error is not None:
            log.error("llhls dvr write failed file=%s error=%s", self.directory / name, error)
            return
        self._stored.add(name)

    def has(self, name: str) -> bool:
        return name in self._writing or name in self._stored

    async def read(self, name: str) -> bytes | None:
        data = self._writing.get(name)
        if data is not None:
            return data
        if name not in self._stored:
            return None
        try:
            return await asyncio.wrap_future(_DISK.submit(_read, self.directory / name))
        except OSError as exc:
            log.error("llhls dvr read failed file=%s error=%s", self.directory / name, exc)
            return None

    def delete(self, name: str) -> None:
        self._writing.pop(name, None)
        self._stored.discard(name)
        self._last = _DISK.submit(_unlink, self.directory / name)

    def close(self) -> None:
        """The stream ended: its files go (queued behind any write still running)."""
        if self._closed:
            return
        self._closed = True
        self._writing.clear()
        self._stored.clear()
        self._last = _DISK.submit(shutil.rmtree, self.directory, True)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for the queued file operations (tests, shutdown); never called on the loop's hot path."""
        if self._last is not None:
            wait([self._last], timeout)  # a failed operation was logged by its callback

    def memory_bytes(self) -> int:
        return sum(len(d) for d in self._writing.values())


def _write(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
