"""Giving memory back to the system after streams leave.

A live stream's packets, LL-HLS parts and FFmpeg buffers are allocated by many threads, so glibc
spreads them over several malloc arenas; once freed, that memory stays mapped in the arenas' free
lists and RSS never goes back down (209 MB after 20 streams left, 60 MB idle). ``malloc_trim(0)``
hands whole free pages of every arena back to the kernel. ``HeapTrimmer`` runs it (after a
``gc.collect()`` when no stream is live, so cyclic garbage such as PyAV containers is freed first; a full
collection holds the GIL for tens of milliseconds, which live streams should not wait for; the trim
itself runs through ctypes, which releases the GIL) once things have been
quiet for ``delay`` seconds (1 s) after the last stream ended: a burst of 20 streams leaving costs one trim.
Without glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 128 * 1024


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_large_blocks_mapped(mallopt: Callable[[int, int], int] | None = None) -> bool:
    """Pin glibc's mmap threshold at 128 kB, so every large block (an LL-HLS part or segment, a video
    frame) gets its own mapping and goes back to the kernel when freed.

    By default glibc raises the threshold (up to 32 MB) each time such a block is freed; after that,
    parts and segments are carved from the heap, and the holes they leave as the window slides keep
    RSS about 1 MB per 720p stream above the bytes actually live (bench/memory.py: 6.8 MB per stream,
    5.8 MB pinned). The cost is one mmap/munmap pair per large block, a few per stream-second.
    False without glibc."""
    fn = mallopt if mallopt is not None else _glibc_mallopt()
    if fn is None:
        return False
    return bool(fn(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


class HeapTrimmer:
    def __init__(self, delay: float = 1.0, trim: Callable[[int], int] | None = None,
                 idle: Callable[[], bool] = lambda: True) -> None:
        self.delay = delay
        self.idle = idle  # True when nothing is live: a full gc.collect() stalls no one
        self._trim = trim if trim is not None else _glibc_malloc_trim()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.trims = 0

    def released(self) -> None:
        """Something big was let go (a stream ended): trim once nothing else is let go for ``delay`` s."""
        if self._trim is None:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self._run)
            self._timer.name = "kiln-heap-trim"
            self._timer.daemon = True
            self._timer.start()

    def _run(self) -> None:
        with self._lock:
            self._timer = None
        assert self._trim is not None
        began = time.monotonic()
        collected = gc.collect() if self.idle() else 0
        self._trim(0)
        self.trims += 1
        log.debug("heap trimmed collected=%d seconds=%.3f", collected, time.monotonic() - began)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
