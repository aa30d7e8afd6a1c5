"""Waking the threads that wait for a commit: one eventfd write per commit, made without the GIL.

With many writers each blocked in ``Future.result()``, completing their futures woke them one at a time
through ``Condition.notify``: a futex wake made while holding the GIL, after which the committing thread
was often descheduled by the very thread it woke, GIL in hand. With 64 writers that was the largest
single cost of an append (py-spy --gil: half of the time the GIL was held was in ``notify``). A
``DurableFuture`` waited on without a timeout blocks instead in ``read`` on its commit's eventfd
(semaphore mode), which the committing thread writes once, after settling every future of the commit,
with the GIL released. The eventfd is made only when a thread actually waits (a lone writer commits its
own append and never does); other waits (with a timeout, ``add_done_callback``, ``asyncio.wrap_future``)
are the plain ``Future``'s.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_MANY = 0xFFFFFFFF  # a semaphore count no number of waiters uses up: every read returns at once
_EVENTFD = hasattr(os, "eventfd")  # Linux; elsewhere result() waits as a plain Future does


class CommitWake:
    """The wake-up of one commit, shared by the futures of the appends it carries. Its eventfd lives only
    while threads wait on it: the last waiter out after the wake closes it (futures may be kept long)."""

    __slots__ = ("_lock", "_fd", "_woken", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd = -1
        self._woken = False
        self._waiters = 0

    def wait(self) -> None:
        """Block until ``wake()`` (at once if it has run)."""
        with self._lock:
            if self._woken:
                return
            if self._fd < 0:
                self._fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC)
            fd = self._fd
            self._waiters += 1
        try:
            os.read(fd, 8)  # the GIL is released while blocked, and while the writer's write wakes us
        finally:
            with self._lock:
                self._waiters -= 1
                if self._woken and self._waiters == 0 and self._fd >= 0:
                    os.close(self._fd)  # the write is done: it is what let this read return
                    self._fd = -1

    def wake(self) -> None:
        """Release every present and future ``wait()``: after the commit's futures are settled."""
        with self._lock:
            self._woken = True
            fd = self._fd
        if fd >= 0:
            os.eventfd_write(fd, _MANY)  # waiters cannot close it before this write has let them read

    def __del__(self) -> None:  # never woken (a journal dropped mid-commit) and nobody waits: free the fd
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class DurableFuture(Future[T]):
    """An append's future: ``result()`` without a timeout waits on its commit's ``CommitWake`` (so a thread
    waiting there when the future is cancelled returns at the commit, which writes the records anyway)."""

    wake: CommitWake | None = None  # set when the append is queued

    def result(self, timeout: float | None = None) -> T:
        wake = self.wake
        if timeout is None and wake is not None and _EVENTFD and not self.done():
            wake.wait()
        return super().result(timeout)
