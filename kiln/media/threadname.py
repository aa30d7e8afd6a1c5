"""OS-level thread names (Linux ``prctl(PR_SET_NAME)``): Python's thread names stay inside Python, so
``top -H``, ``/proc/<pid>/task/*/comm`` and ``bench/srt_ingest.py --threads`` would see every Kiln
thread as "python". Names are cut to 15 bytes by the kernel."""

from __future__ import annotations

import ctypes
import sys

PR_SET_NAME = 15


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS; nothing happens where that is not possible."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode("ascii", "replace")[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
