"""``kiln`` with tracemalloc on: SIGUSR2 writes the biggest live allocation sites to $KILN_TRACEMALLOC_OUT.

Used by ``bench/memory.py --tracemalloc`` and ``tests/chaos/soak.py --tracemalloc/--malloc-stats``; the report
says which lines hold the Python memory that RSS shows (memory PyAV/FFmpeg allocates in C is not seen by
tracemalloc: the difference is the C side). Each report starts with one ``==`` line: the traced total and
glibc's own view (``mallinfo2``: bytes in use, bytes free but kept in its heaps, bytes in mmapped chunks), so
Python's heap, FFmpeg's buffers and the allocator's free space can be told apart.

Environment: ``KILN_TRACEMALLOC_FRAMES`` (default 8; 0: no tracing, only the malloc figures and the trim),
``KILN_TRACEMALLOC_SNAPSHOTS`` (a directory: each SIGUSR2 also dumps the whole snapshot there as
``NNN.snapshot``, for ``Snapshot.compare_to`` between two moments). SIGUSR1 calls glibc's ``malloc_trim(0)``
and appends one ``trim`` line with RSS before and after.
"""

from __future__ import annotations

import ctypes
import linecache
import os
import re
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = int(os.environ.get("KILN_TRACEMALLOC_FRAMES", "8"))
SNAPSHOTS = os.environ.get("KILN_TRACEMALLOC_SNAPSHOTS")
_LIBC = ctypes.CDLL("libc.so.6")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_LIBC.mallinfo2.restype = _MallInfo2


def _target() -> Path:
    return Path(os.environ.get("KILN_TRACEMALLOC_OUT", "tracemalloc.txt"))


def _rss_kib() -> int:
    found = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(found.group(1)) if found else -1


def malloc_line() -> str:
    """glibc's heaps, all arenas: in use (malloc'd, not freed), free (kept in the heaps), mmapped chunks; and
    the blocks Python's own allocator has handed out (its arenas are mmapped apart from glibc's heaps)."""
    info = _LIBC.mallinfo2()
    return (f"malloc_in_use {info.uordblks / 1e6:.1f} MB malloc_free {info.fordblks / 1e6:.1f} MB "
            f"malloc_mmap {info.hblkhd / 1e6:.1f} MB rss {_rss_kib()} KiB py_blocks {sys.getallocatedblocks()}")


def dump(_signum: int, _frame: FrameType | None) -> None:
    if not tracemalloc.is_tracing():
        with _target().open("a") as fh:
            fh.write(f"== {time.strftime('%H:%M:%S')} traced 0.0 MB (peak 0.0 MB) {malloc_line()}\n")
        return
    snapshot = tracemalloc.take_snapshot().filter_traces(  # not the report's own: its source lines
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, linecache.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"== {time.strftime('%H:%M:%S')} traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB) "
             f"{malloc_line()}"]
    for stat in snapshot.statistics("lineno")[:15]:
        lines.append(f"{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks  {stat.traceback[0]}")
    lines.append("-- by traceback (top 3)")
    for stat in snapshot.statistics("traceback")[:3]:
        lines.append(f"{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks")
        lines.extend("    " + line for line in stat.traceback.format(limit=8))
    if SNAPSHOTS:
        folder = Path(SNAPSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        number = len(list(folder.glob("*.snapshot")))
        partial = folder / f"{number:03d}.partial"
        snapshot.dump(str(partial))
        partial.rename(folder / f"{number:03d}.snapshot")
    with _target().open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def trim(_signum: int, _frame: FrameType | None) -> None:
    before = _rss_kib()
    _LIBC.malloc_trim(0)
    with _target().open("a") as fh:
        fh.write(f"trim rss {before} -> {_rss_kib()} KiB {malloc_line()}\n")


signal.signal(signal.SIGUSR2, dump)
signal.signal(signal.SIGUSR1, trim)

from kiln.cli import main  # noqa: E402
from kiln.service import KilnService  # noqa: E402, F401 - imported before tracing starts (10x faster start)

if FRAMES > 0:
    tracemalloc.start(FRAMES)
sys.argv[0] = "kiln"
sys.exit(main())
