"""Name lookups that a stop need not wait for.

``getaddrinfo`` cannot be interrupted: a destination whose name server does not answer holds the calling
thread for the resolver's whole timeout (glibc: 5 s per try and server, often 10 s or more). A push stopped
then (``:stopPush``, its stream ended) must not make its actor wait that long for the session's thread, nor
connect to the destination once the answer comes. So a session thread runs its lookups under a
:class:`LookupGuard`: while a lookup is under way the owner does not join the thread (:meth:`stop_skips_join`),
and a lookup that returns after the stop raises :class:`LookupAbandoned` instead of giving an address: the
thread then ends on its own, having connected to nothing.

The guard is found through a context variable set on the session's own thread, so the writers and clients
that resolve (RTMP, MPEG-TS over UDP/TCP, SRT; the pulls' OVT client and, before FFmpeg opens the URL, RTSP)
keep their signatures. A pull worker's thread (``media/ingest/rtsp/worker.py``) installs one as a push session's.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

_GUARD: ContextVar[LookupGuard | None] = ContextVar("kiln_lookup_guard", default=None)


class LookupAbandoned(OSError):
    """A lookup that its thread's owner stopped waiting for: no address is used."""


class LookupGuard:
    """One session thread's lookups, seen from the thread that stops it.

    Ordering (no lock needed under the GIL): the lookup thread sets ``resolving`` then reads ``stopping()``;
    the stopper sets its stop flag then reads ``resolving``. One of them sees the other: either the lookup never
    starts, or the stopper knows one is under way and does not join."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self.stopping = stopping
        self.resolving = False
        self.abandoned = ""  # the host whose answer came after the stop (for the owner's log line)

    def install(self) -> None:
        """Guard the lookups of the calling thread (call it first thing on the session's thread)."""
        _GUARD.set(self)

    def stop_skips_join(self) -> bool:
        """After the stop flag is set: True while a lookup is under way (the thread ends when it returns)."""
        return self.resolving


def guarded() -> bool:
    """Whether the calling thread's lookups run under a guard (a code path that cannot route its own lookup
    through :func:`getaddrinfo`, FFmpeg's, looks the name up here first only then)."""
    return _GUARD.get() is not None


def getaddrinfo(host: str, port: int, kind: int) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo(host, port, type=kind)``, abandoned (:class:`LookupAbandoned`) when the calling
    thread's guard was stopped before or during the lookup."""
    guard = _GUARD.get()
    if guard is None:
        return socket.getaddrinfo(host, port, type=kind)
    guard.resolving = True
    try:
        if guard.stopping():
            raise LookupAbandoned(f"stopped before looking {host} up")
        infos = socket.getaddrinfo(host, port, type=kind)
    finally:
        guard.resolving = False
    if guard.stopping():
        guard.abandoned = host
        raise LookupAbandoned(f"stopped while looking {host} up")
    return infos
