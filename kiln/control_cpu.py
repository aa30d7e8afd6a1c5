"""The actors' threads share one CPU.

An actor's thread is GIL-bound control work: each command the event loop sends wakes it, it takes the GIL,
appends its events and sleeps again; only one of the actors runs Python at a time anyway. Left free on two
CPUs, a woken actor started on the other CPU and waited there for the GIL its waker (the loop, GIL in hand)
still held, so each command cost a cross-CPU wake-up and about three context switches. Pinned to one CPU, 64
actors appending for 64 callers on the loop cost a third less CPU per command (bench/journal.py, Kiln's
shape). The event loop, the journal's standby committer and the media threads stay free: pinning the
committer too made 64 threads blocked in ``result()`` slower (it then wakes them all from one CPU), and
``SCHED_BATCH`` on top (no wake-up preemption) saved switches but left an actor that has answered waiting
behind whatever else runs on its CPU, still wanting the GIL (``tests/unit/actors/test_ask.py``'s one wake-up
per commit then failed under load).

Linux gives a new thread its creator's CPUs, so the threads an actor starts (a pull, a push, a recording)
would inherit the pin: media threads call ``free_thread`` first, which gives them back the process's CPUs.

``KILN_CONTROL_CPU``: unset, the last CPU the process may run on (nothing is pinned when it has one);
a number, that CPU; ``off``, the actors' threads are left free.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

ENV = "KILN_CONTROL_CPU"
_UNSET = object()
_choice: object = _UNSET  # the CPU chosen (an int) or None, decided on first use
_process: set[int] = set()  # the process's CPUs when the CPU was chosen
_lock = threading.Lock()


def control_cpu(environ: dict[str, str] | None = None) -> int | None:
    """The CPU the actors' threads are pinned to, or None: ``KILN_CONTROL_CPU`` and the process's CPUs."""
    wanted = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if wanted == "off" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(os.getpid())  # the main thread's set: a pinned thread's own is one CPU
    if wanted:
        try:
            cpu = int(wanted)
        except ValueError:
            log.warning("%s=%r is not a CPU number or 'off': actor threads are not pinned", ENV, wanted)
            return None
        if cpu not in allowed:
            log.warning("%s=%d is not among the CPUs this process may use (%s): actor threads are not pinned",
                        ENV, cpu, ",".join(map(str, sorted(allowed))))
            return None
        return cpu
    return max(allowed) if len(allowed) > 1 else None


def pin_control_thread() -> None:
    """Pin the calling thread (an actor's) to the control CPU, if there is one."""
    global _choice, _process
    if _choice is _UNSET:
        with _lock:
            if _choice is _UNSET:
                _process = os.sched_getaffinity(os.getpid()) if hasattr(os, "sched_getaffinity") else set()
                _choice = control_cpu()
                if _choice is not None:
                    log.info("actor threads pinned cpu=%d (%s=off leaves them free)", _choice, ENV)
    cpu = _choice
    if not isinstance(cpu, int):  # None: nothing to pin
        return
    try:
        os.sched_setaffinity(0, {cpu})  # 0: this thread only (Linux)
    except OSError as exc:  # e.g. the CPU went offline: the thread runs where the scheduler puts it
        log.warning("actor thread not pinned cpu=%s error=%s", cpu, exc)


def free_thread() -> None:
    """Give the calling thread the process's CPUs back, if an actor's pinned thread started it (a media
    thread's first call: pulls, pushes, recordings, transcoders run wherever the scheduler puts them)."""
    if not isinstance(_choice, int):
        return  # nothing is pinned in this process
    try:
        if os.sched_getaffinity(0) != _process:
            os.sched_setaffinity(0, _process)
    except OSError as exc:
        log.warning("thread not given back the process's CPUs error=%s", exc)
