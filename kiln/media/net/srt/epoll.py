"""``SrtEpoll``: one libsrt epoll set, so a single thread can watch many SRT sockets."""

from __future__ import annotations

import threading
from types import TracebackType

from kiln.media.net.srt import abi, libsrt
from kiln.media.net.srt.abi import EPOLL_ERR, EPOLL_IN, EPOLL_OUT

__all__ = ["EPOLL_ERR", "EPOLL_IN", "EPOLL_OUT", "SrtEpoll"]


class SrtEpoll:
    def __init__(self, max_events: int = 64) -> None:
        self._eid = libsrt.epoll_create()
        self._events = (abi.EpollEvent * max_events)()
        self._closed = False
        self._lock = threading.Lock()

    def __enter__(self) -> SrtEpoll:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def add(self, sock: int, events: int = EPOLL_IN | EPOLL_ERR) -> None:
        libsrt.epoll_add(self._eid, sock, events)

    def update(self, sock: int, events: int) -> None:
        libsrt.epoll_update(self._eid, sock, events)

    def remove(self, sock: int) -> None:
        """Stop watching ``sock``; a socket libsrt already closed is not an error."""
        libsrt.epoll_remove(self._eid, sock)

    def wait(self, timeout_ms: int) -> list[tuple[int, int]]:
        """Ready sockets as ``(socket id, SRT_EPOLL_* flags)``; empty after ``timeout_ms``.

        Only one thread may wait on a set at a time (the event buffer is shared).
        """
        return libsrt.epoll_uwait(self._eid, self._events, timeout_ms)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        libsrt.epoll_release(self._eid)
