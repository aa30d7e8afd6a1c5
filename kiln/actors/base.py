"""Command plumbing between the asyncio HTTP layer and pykka actors.

HTTP handlers never block the event loop on an actor: ``ask`` sends an envelope and awaits its answer.
An actor handles one command at a time (so conflicting commands are serialised), emits its events, and
answers with an ``Outcome`` whose ``durable`` future completes once the journal has fsynced those events.
``ask`` is woken once, when both have happened (``_LoopReply``); threads use ``tell`` and its Future.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from kiln.control_cpu import pin_control_thread
from kiln.domain.errors import DomainError, NotJournaled
from kiln.journal.errors import JournalError
from kiln.journal.journal import defer_commits_while
from kiln.metrics.commands import COMMANDS, CommandTimings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    value: Any = None
    durable: list[Future[Any]] = field(default_factory=list)
    error: DomainError | None = None  # raised to the caller once ``durable`` completed

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Reply(Protocol):
    """Where an actor puts its answer: a ``Future`` (``tell``) or an asking task's ``_LoopReply``."""

    def set_result(self, outcome: Outcome) -> Any: ...

    def set_exception(self, exception: BaseException) -> Any: ...


@dataclass
class Envelope:
    command: Any
    reply: Reply


class ActorGone(Exception):
    """The target actor stopped before it could take the command."""


def refusal(exc: BaseException) -> BaseException:
    """What the caller hears of a failure: the journal's own (a failed write stopped it, it is closed) as the
    domain's 500 in its words, which HTTP renders in OME's envelope (it knows no journal); anything else as is."""
    if isinstance(exc, JournalError):
        return NotJournaled(str(exc))
    return exc


class CommandActor(pykka.ThreadingActor):
    """Dispatches ``Envelope`` messages to ``handle_<CommandClassName>`` methods."""

    _defers_commits = False

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        """A ``queue.SimpleQueue`` (in C, one lock) instead of pykka's ``queue.Queue`` (a lock and Conditions in
        Python): each command puts once and gets once, and the inbox only needs ``put``, ``get`` and ``empty``
        (pykka's ``ActorInbox``)."""
        return queue.SimpleQueue()

    def on_receive(self, message: Any) -> Any:
        if not self._defers_commits:  # on the actor's own thread: its emits never hold up commands waiting
            self._defers_commits = True
            inbox = self.actor_inbox
            defer_commits_while(lambda: not inbox.empty())
            pin_control_thread()  # GIL-bound: on one CPU with the other actors (kiln/control_cpu.py)
        if not isinstance(message, Envelope):
            return super().on_receive(message)
        handler: Callable[[Any], Any] | None = getattr(
            self, "handle_" + type(message.command).__name__, None)
        if handler is None:
            message.reply.set_exception(TypeError(f"{type(self).__name__} cannot handle {message.command!r}"))
            return None
        try:
            result = handler(message.command)
        except DomainError as exc:
            message.reply.set_exception(exc)
        except JournalError as exc:  # logged by the journal
            message.reply.set_exception(refusal(exc))
        except Exception as exc:  # a bug: answer 500 instead of leaving the caller hanging
            log.exception("command failed actor=%s command=%s", type(self).__name__,
                          type(message.command).__name__)
            message.reply.set_exception(exc)
        else:
            message.reply.set_result(result if isinstance(result, Outcome) else Outcome(result))
        finally:
            # pykka's loop keeps the envelope it took until the next one arrives: without this, an idle actor
            # kept its last command's payload alive (StreamGone's ended LiveStream with its transcoder's codec
            # contexts and filter-graph threads, until another stream came and went)
            message.command = None
        return None

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("actor crashed actor=%s error=%s", type(self).__name__, exception_value)


def tell(ref: pykka.ActorRef[Any], command: Any) -> Future[Outcome]:
    """Send a command; the returned future completes with the actor's Outcome."""
    reply: Future[Outcome] = Future()
    try:
        ref.tell(Envelope(command, reply))
    except pykka.ActorDeadError as exc:
        raise ActorGone(str(exc)) from exc
    return reply


def settled(reply: Future[Outcome]) -> Future[Any]:
    """A future that completes once another actor's answer and its events are durable.

    An actor that needs a second actor's work done before its own caller hears back returns this
    among its ``durable`` futures instead of waiting: no actor thread ever blocks on another.
    """
    done: Future[Any] = Future()

    def answered(fut: Future[Outcome]) -> None:
        try:
            outcome = fut.result()
        except BaseException as exc:  # the other actor failed: the caller sees it
            done.set_exception(exc)
            return
        pending = list(outcome.durable)
        if not pending:
            done.set_result(outcome.value)
            return
        remaining = [len(pending)]

        def one_durable(f: Future[Any]) -> None:
            if done.done():
                return
            if f.exception() is not None:
                done.set_exception(f.exception())
                return
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set_result(outcome.value)

        for f in pending:
            f.add_done_callback(one_durable)

    reply.add_done_callback(answered)
    return done


def tell_quietly(ref: pykka.ActorRef[Any], command: Any) -> None:
    """Fire-and-forget to an actor that may already be stopping (its answer is not needed)."""
    try:
        tell(ref, command)
    except ActorGone:
        log.debug("dropped command for stopped actor command=%s", type(command).__name__)


class _LoopInbox:
    """The replies of one event loop's ``ask``s that other threads have settled, handed to the loop in one
    wake-up per batch: a commit makes a dozen commands durable at once under start/stop pairs, and a
    ``call_soon_threadsafe`` each (a handle, a write to the loop's wake-up fd, with the GIL held on the
    committing thread) cost more than settling them.

    Lock-free under the GIL: a thread appends, then schedules a drain unless one is pending; the drain
    clears ``pending`` before it takes the replies, so a reply appended after its last look finds ``pending``
    clear and schedules the next one."""

    __slots__ = ("_loop", "_ready", "_pending", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weakly: the inbox is the loop's value in ``_INBOXES``, and a value that held its key would keep
        # every loop that ever asked (and what hangs off it) alive for good
        self._loop = weakref.ref(loop)
        self._ready: deque[_LoopReply] = deque()
        self._pending = False

    def put(self, reply: _LoopReply) -> None:
        self._ready.append(reply)
        if not self._pending:
            self._pending = True
            loop = self._loop()
            if loop is None:  # the loop is gone: nobody waits any more
                return
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed (shutdown): nobody waits any more
                pass

    def _drain(self) -> None:
        self._pending = False
        ready = self._ready
        while ready:
            ready.popleft()._settle()


_INBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopInbox] = weakref.WeakKeyDictionary()


def _inbox_of(loop: asyncio.AbstractEventLoop) -> _LoopInbox:
    inbox = _INBOXES.get(loop)
    if inbox is None:
        inbox = _INBOXES[loop] = _LoopInbox(loop)
    return inbox


class _LoopReply:
    """The reply of one ``ask``: wakes the asking task once, when the actor has answered *and* the answer's
    events are durable. Awaiting the answer and then each durable future through ``asyncio.wrap_future``
    cost a hop back to the loop (a self-pipe write and a wake-up) and a chained asyncio future for each;
    the answer alone never lets the request go on, so only the last of them needs to wake the loop.

    The outcome is let go as soon as its durable futures are done: while one is pending, its callback list
    holds this reply, which holds the outcome, which holds the future (a reference cycle), and a cycle left
    for the garbage collector made every command's objects (its futures, their Conditions, the answer) cyclic
    garbage: the collector's passes over them were a fifth of the API's CPU under start/stop pairs.

    It also times the command's phases (``kiln.metrics.commands``)."""

    __slots__ = ("_inbox", "_waiter", "_outcome", "_index", "_timings", "_asked", "_answered", "_durable",
                 "_failed", "_value")

    def __init__(self, inbox: _LoopInbox, waiter: asyncio.Future[Any], timings: CommandTimings) -> None:
        self._inbox = inbox
        self._waiter: asyncio.Future[Any] | None = waiter
        self._outcome: Outcome | None = None
        self._index = 0  # the durable future waited for next
        self._timings = timings
        self._asked = time.perf_counter()
        self._answered = self._durable = 0.0
        self._failed: BaseException | None = None
        self._value: Any = None

    def set_result(self, outcome: Outcome) -> None:
        """On the actor's thread."""
        self._answered = time.perf_counter()
        self._outcome = outcome
        self._after_durable()

    def set_exception(self, exception: BaseException) -> None:
        self._answered = time.perf_counter()
        self._finish(exception, None)

    def _after_durable(self) -> None:
        """Wait for the answer's durable futures in order (on whichever thread completes each); the first
        that failed is the caller's error, as when they were awaited one after the other."""
        outcome = self._outcome
        assert outcome is not None
        durable = outcome.durable
        index = self._index
        while index < len(durable):
            fut = durable[index]
            if not fut.done():
                self._index = index
                fut.add_done_callback(self._durable_done)
                return
            try:
                failed = fut.exception()
            except CancelledError as exc:
                failed = exc
            if failed is not None:
                self._finish(refusal(failed), None)
                return
            index += 1
        self._finish(outcome.error, outcome.value)

    def _durable_done(self, _fut: Future[Any]) -> None:
        self._after_durable()  # from the same index: this future's outcome is checked there

    def _finish(self, failed: BaseException | None, value: Any) -> None:
        self._durable = time.perf_counter()
        self._outcome = None  # breaks the cycle through the durable futures' callbacks (class docstring)
        self._failed, self._value = failed, value
        self._inbox.put(self)

    def _settle(self) -> None:
        """On the loop: complete the waiter, unless its request was cancelled meanwhile."""
        failed, value = self._failed, self._value
        self._failed = self._value = None
        durable = self._durable
        self._timings.record(self._answered - self._asked, durable - self._answered, time.perf_counter() - durable)
        waiter = self._waiter
        self._waiter = None  # the actor may keep its last message (and this reply) until its next one
        if waiter is None or waiter.done():
            return
        if failed is not None:
            waiter.set_exception(failed)
        else:
            waiter.set_result(value)


async def ask(ref: pykka.ActorRef[Any], command: Any) -> Any:
    """Send a command from asyncio and return its value once its events are durable."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()
    try:
        ref.tell(Envelope(command, _LoopReply(_inbox_of(loop), waiter, COMMANDS)))
    except pykka.ActorDeadError as exc:
        raise ActorGone(str(exc)) from exc
    return await waiter


def ask_blocking(ref: pykka.ActorRef[Any], command: Any, timeout: float | None = 30.0) -> Any:
    """Same as ``ask`` for threads (tests, startup, media workers)."""
    outcome = tell(ref, command).result(timeout)
    for fut in outcome.durable:
        failed = fut.exception(timeout)
        if failed is not None:
            raise refusal(failed)
    return outcome.result()
