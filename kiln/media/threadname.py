"""OS-level thread names (Linux ``pthread_setname_np``): Python's thread names stay inside Python, so
``top -H``, ``/proc/<pid>/task/*/comm`` and ``bench/srt_ingest.py --threads`` would see every Kiln
thread as "python". The starter names the thread right after ``start()``, so the name is in place
before anyone else looks. Names are cut to 15 bytes (the kernel's limit)."""

from __future__ import annotations

import ctypes
import sys
import threading


def name_os_thread(thread: threading.Thread, name: str) -> None:
    """Give a started thread an OS name; nothing happens where that is not possible."""
    if not sys.platform.startswith("linux") or thread.ident is None:
        return
    try:
        setname = ctypes.CDLL(None).pthread_setname_np
        setname.argtypes = [ctypes.c_ulong, ctypes.c_char_p]
        setname(thread.ident, name.encode("ascii", "replace")[:15])
    except (OSError, AttributeError):
        pass
