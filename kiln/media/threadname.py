"""OS-level thread names (Linux ``pthread_setname_np``): Python's thread names stay inside Python, so
``top -H``, ``/proc/<pid>/task/*/comm`` and ``bench/srt_ingest.py --threads`` would see every Kiln
thread as "python". ``kiln serve`` names every thread the threading module starts
(``name_threads_as_they_start``); a few starters also name theirs right after ``start()``, so the name is
in place before anyone else looks even where that hook is not installed (tests, an embedding program).
Names are cut to 15 bytes (the kernel's limit)."""

from __future__ import annotations

import ctypes
import sys
import threading
from types import FrameType
from typing import Any


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


def name_threads_as_they_start() -> None:
    """From now on, each thread started by the threading module (actors, pools, timers, media threads)
    gets its Python name as its OS name: ``top -H`` and ``/proc/<pid>/task/*/comm`` then say which part
    of Kiln a thread is, and a leak shows by name. ``threading.setprofile`` is the documented hook that
    runs in a new thread before its target; ``_name_and_forget`` names the thread and removes itself at
    that first event, so nothing is profiled."""
    threading.setprofile(_name_and_forget)


def _name_and_forget(frame: FrameType, event: str, arg: Any) -> None:
    sys.setprofile(None)
    thread = threading.current_thread()
    name_os_thread(thread, thread.name)
