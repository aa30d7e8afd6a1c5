"""Command plumbing between the asyncio HTTP layer and pykka actors.

HTTP handlers never block the event loop on an actor: ``ask`` sends an envelope with a
``concurrent.futures.Future`` and awaits it. An actor handles one command at a time (so conflicting
commands are serialised), emits its events, and answers with an ``Outcome`` whose ``durable``
future completes once the journal has fsynced those events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pykka

from kiln.domain.errors import DomainError
from kiln.journal.journal import defer_commits_while

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


@dataclass
class Envelope:
    command: Any
    reply: Future[Outcome]


class ActorGone(Exception):
    """The target actor stopped before it could take the command."""


class CommandActor(pykka.ThreadingActor):
    """Dispatches ``Envelope`` messages to ``handle_<CommandClassName>`` methods."""

    _defers_commits = False

    def on_receive(self, message: Any) -> Any:
        if not self._defers_commits:  # on the actor's own thread: its emits never hold up commands waiting
            self._defers_commits = True
            inbox = self.actor_inbox
            defer_commits_while(lambda: not inbox.empty())
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
        except Exception as exc:  # a bug: answer 500 instead of leaving the caller hanging
            log.exception("command failed actor=%s command=%s", type(self).__name__,
                          type(message.command).__name__)
            message.reply.set_exception(exc)
        else:
            message.reply.set_result(result if isinstance(result, Outcome) else Outcome(result))
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


async def ask(ref: pykka.ActorRef[Any], command: Any) -> Any:
    """Send a command from asyncio and return its value once its events are durable."""
    outcome = await asyncio.wrap_future(tell(ref, command))
    for fut in outcome.durable:
        await asyncio.wrap_future(fut)
    return outcome.result()


def ask_blocking(ref: pykka.ActorRef[Any], command: Any, timeout: float | None = 30.0) -> Any:
    """Same as ``ask`` for threads (tests, startup, media workers)."""
    outcome = tell(ref, command).result(timeout)
    for fut in outcome.durable:
        fut.result(timeout)
    return outcome.result()
