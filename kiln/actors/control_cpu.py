"""The actors' threads share one CPU, and none of them preempts the thread that woke it.

An actor's thread is GIL-bound control work: each command the event loop sends wakes it, it takes the GIL,
appends its events and sleeps again. Left free on two CPUs, a woken actor starts on the other CPU and waits
there for the GIL its waker (the loop, GIL in hand) still holds; on the waker's CPU it preempts the waker
instead, GIL and all. Either way each command cost about three context switches. Pinned to one CPU and in
``SCHED_BATCH`` (no wake-up preemption), 64 actors appending for 64 callers on the loop cost 1.5 switches
per command and a third less CPU (bench/journal.py, Kiln's shape). The event loop, the journal's standby
committer and the media threads stay free: pinning the committer too made 64 threads blocked in
``result()`` slower (it then wakes them all from one CPU).

``KILN_CONTROL_CPU``: unset, the last CPU the process may run on (nothing changes when it has one);
a number, that CPU; ``off``, the actors' threads are left as they are.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

ENV = "KILN_CONTROL_CPU"
_UNSET = object()
_choice: object = _UNSET  # the CPU chosen (an int) or None, decided on first use
_lock = threading.Lock()


def control_cpu(environ: dict[str, str] | None = None) -> int | None:
    """The CPU control threads are pinned to, or None: ``KILN_CONTROL_CPU`` and the process's CPUs."""
    wanted = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if wanted == "off" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(os.getpid())  # the main thread's set: a pinned thread's own is one CPU
    if wanted:
        try:
            cpu = int(wanted)
        except ValueError:
            log.warning("%s=%r is not a CPU number or 'off': control threads are not pinned", ENV, wanted)
            return None
        if cpu not in allowed:
            log.warning("%s=%d is not among the CPUs this process may use (%s): control threads are not pinned",
                        ENV, cpu, ",".join(map(str, sorted(allowed))))
            return None
        return cpu
    return max(allowed) if len(allowed) > 1 else None


def pin_control_thread() -> None:
    """Pin the calling thread (an actor's) to the control CPU, in ``SCHED_BATCH``, if there is one."""
    global _choice
    if _choice is _UNSET:
        with _lock:
            if _choice is _UNSET:
                _choice = control_cpu()
                if _choice is not None:
                    log.info("actor threads pinned cpu=%d policy=batch (%s=off leaves them as they are)", _choice,
                             ENV)
    cpu = _choice
    if not isinstance(cpu, int):  # None: nothing to pin
        return
    try:
        os.sched_setaffinity(0, {cpu})  # 0: this thread only (Linux)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:  # e.g. the CPU went offline: the thread runs where the scheduler puts it
        log.warning("control thread not pinned cpu=%s error=%s", cpu, exc)
