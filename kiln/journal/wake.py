"""Waking the threads that wait for a commit: one eventfd write per commit, made without the GIL.

With many writers each blocked in ``Future.result()``, completing their futures woke them one at a time
through ``Condition.notify``: a futex wake made while holding the GIL, after which the committing thread
was often descheduled by the very thread it woke, GIL in hand. With 64 writers that was the largest
single cost of an append (py-spy --gil: half of the time the GIL was held was in ``notify``). A
``DurableFuture`` waited on without a timeout blocks instead in ``read`` on its commit's eventfd
(semaphore mode), which the committing thread writes once, after settling every future of the commit,
with the GIL released. The eventfd is made only when a thread actually waits (a lone writer commits its
own append and never does); other waits (with a timeout, ``concurrent.futures.wait``)
are the plain ``Future``'s.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("concurrent.futures")  # where Future logs a callback's failure

_MANY = 0xFFFFFFFF  # a semaphore count no number of waiters uses up: every read returns at once
_EVENTFD = hasattr(os, "eventfd")  # Linux; elsewhere result() waits as a plain Future does
_PENDING, _FINISHED = PENDING, FINISHED
_DONE = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED))
_CANCEL, _COMMIT = object(), object()  # who claimed a DurableFuture first


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

    def wake(self) -> int:
        """Release every present and future ``wait()``: after the commit's futures are settled. Returns how
        many threads it woke (the journal expects as many appends back: journal.py)."""
        with self._lock:
            self._woken = True
            fd, woken = self._fd, self._waiters
        if fd >= 0:
            os.eventfd_write(fd, _MANY)  # waiters cannot close it before this write has let them read
        return woken

    def __del__(self) -> None:  # never woken (a journal dropped mid-commit) and nobody waits: free the fd
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _LazyCondition:
    """``Future._condition``, made on first use: most appends' futures are settled and read without anyone
    waiting on it with a timeout (a ``threading.Condition`` and its lock cost more than framing the
    record). A non-data descriptor: once made, the instance's own attribute is found first."""

    def __get__(self, future: Future[Any] | None, owner: type | None = None) -> threading.Condition:
        if future is None:
            raise AttributeError("_condition")
        # setdefault is one step under the GIL: two threads that both come first share one Condition
        return future.__dict__.setdefault("_condition", threading.Condition())  # type: ignore[no-any-return]


class DurableFuture(Future[T]):
    """An append's future: ``result()`` without a timeout waits on its commit's ``CommitWake`` (so a thread
    waiting there when the future is cancelled returns at the commit, which writes the records anyway).

    The committing thread settles it with ``settle``/``fail``, which take its Condition only if a waiter made
    one; whichever of ``settle``/``fail`` and ``cancel`` claims the future first decides its outcome (one dict
    ``setdefault``, a single step under the GIL), so a cancel that loses returns False.

    Callbacks need no Condition either: in Kiln every append's future gets one (an actor's caller waits for it
    through ``_LoopReply``), and making and taking a Condition for each cost 7-12 us per future against 1-2
    without (adding a callback, settling, reading the outcome). ``add_done_callback`` queues the callback,
    then looks at the state again; the settling side sets the state, then runs the queue. Each side takes
    callbacks off the queue one ``popleft`` at a time (a single step under the GIL), so a callback added while
    the future completes runs exactly once, on one side or the other, as ``Future`` runs one added after
    completion at once."""

    wake: CommitWake | None = None  # set when the append is queued
    _condition = _LazyCondition()

    def __init__(self) -> None:  # Future.__init__ but for the Condition (see _LazyCondition)
        self._state = _PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: deque[Callable[[Future[T]], object]] = deque()

    def done(self) -> bool:
        return self._state in _DONE  # one attribute read: no lock needed

    def result(self, timeout: float | None = None) -> T:
        if self._state == _FINISHED and self._exception is None:
            return self._result  # type: ignore[return-value]  # _result is written before _state
        wake = self.wake
        if timeout is None and wake is not None and _EVENTFD and self._state not in _DONE:
            wake.wait()
            if self._state == _FINISHED and self._exception is None:
                return self._result  # type: ignore[return-value]
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state == _FINISHED:
            return self._exception  # written before _state; a done future needs no Condition
        return super().exception(timeout)

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        if self._state not in _DONE:
            self._done_callbacks.append(fn)
            if self._state not in _DONE:
                return  # whoever completes it runs the queue after setting the state, so after this look
            self._invoke_callbacks()  # done meanwhile: run what is queued (this one, unless the other side did)
            return
        self._call(fn)

    def _invoke_callbacks(self) -> None:
        callbacks = self._done_callbacks
        while callbacks:
            try:
                fn = callbacks.popleft()
            except IndexError:  # the other side took the last one
                return
            self._call(fn)

    def _call(self, fn: Callable[[Future[T]], object]) -> None:
        """Run one callback; its failure is logged as ``Future`` logs it, and the others still run."""
        try:
            fn(self)
        except Exception:
            log.exception("exception calling callback for %r", self)

    def cancel(self) -> bool:
        if self.__dict__.setdefault("_claim", _CANCEL) is not _CANCEL:
            return False  # the commit settles it: its records are written
        return super().cancel()

    def settle(self, result: T) -> None:
        """Complete with ``result`` (the committing thread), unless it was cancelled."""
        if self.__dict__.setdefault("_claim", _COMMIT) is not _COMMIT:
            return
        self._result = result
        if "_condition" in self.__dict__:
            self._finish()
            return
        self._state = _FINISHED
        if "_condition" in self.__dict__:  # a waiter came meanwhile: it read the state under the Condition,
            self._finish()  # before or after this write; _finish tells whoever saw it pending
            return
        self._invoke_callbacks()

    def fail(self, exc: BaseException) -> None:
        """Complete with ``exc`` (the committing thread), unless it was cancelled."""
        if self.__dict__.setdefault("_claim", _COMMIT) is not _COMMIT:
            return
        self._exception = exc
        self._finish()

    def _finish(self) -> None:
        with self._condition:
            self._state = _FINISHED
            for waiter in self._waiters:
                if self._exception is None:
                    waiter.add_result(self)
                else:
                    waiter.add_exception(self)
            self._condition.notify_all()
        self._invoke_callbacks()
