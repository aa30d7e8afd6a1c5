"""``ask``: an HTTP handler's command comes back once the actor answered and its events are durable, with
the actor's refusal or the journal's failure as the caller's error, and each command's phases timed."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pykka
import pytest

from kiln.actors.base import ActorGone, CommandActor, Outcome, ask, tell
from kiln.domain.errors import DomainError
from kiln.journal.wake import DurableFuture
from kiln.metrics.commands import COMMANDS


class Answer:
    def __init__(self, value: Any, durable: list[Future[Any]], error: DomainError | None = None) -> None:
        self.value, self.durable, self.error = value, durable, error


class Refuse:
    pass


class Answering(CommandActor):
    def handle_Answer(self, cmd: Answer) -> Outcome:
        return Outcome(cmd.value, cmd.durable, cmd.error)

    def handle_Refuse(self, _cmd: Refuse) -> Outcome:
        raise DomainError("no")


@pytest.fixture
def ref() -> Iterator[pykka.ActorRef[Any]]:
    actor = Answering.start()
    yield actor
    actor.stop()


def complete_later(loop: asyncio.AbstractEventLoop, fut: Future[Any], outcome: Any, delay: float) -> None:
    """Complete ``fut`` from another thread, as the journal's committing thread does."""
    def done() -> None:
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
    loop.call_later(delay, lambda: loop.run_in_executor(None, done))


def test_the_answer_waits_for_every_durable_future(ref: pykka.ActorRef[Any]) -> None:
    async def main() -> tuple[Any, bool]:
        loop = asyncio.get_running_loop()
        first, second = Future[Any](), Future[Any]()
        complete_later(loop, first, [], 0.05)
        complete_later(loop, second, [], 0.15)
        value = await ask(ref, Answer("done", [first, second]))
        return value, second.done()

    before = COMMANDS.commands
    journal_before = COMMANDS.journal_seconds
    assert asyncio.run(main()) == ("done", True)
    assert COMMANDS.commands == before + 1
    assert COMMANDS.journal_seconds - journal_before >= 0.1  # the wait for the durable futures is the journal's


def test_the_first_failed_durable_future_in_order_is_the_error(ref: pykka.ActorRef[Any]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        first, second = Future[Any](), Future[Any]()
        complete_later(loop, first, OSError("disk gone"), 0.02)
        complete_later(loop, second, RuntimeError("later"), 0.01)
        await ask(ref, Answer("never", [first, second]))

    with pytest.raises(OSError, match="disk gone"):
        asyncio.run(main())


def test_an_outcome_error_is_raised_after_its_events_are_durable(ref: pykka.ActorRef[Any]) -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        durable = Future[Any]()
        complete_later(loop, durable, [], 0.05)
        try:
            await ask(ref, Answer(None, [durable], DomainError("refused after journaling")))
        except DomainError:
            return durable.done()
        return False

    assert asyncio.run(main()) is True


def test_a_refusal_and_answers_without_events(ref: pykka.ActorRef[Any]) -> None:
    async def main() -> Any:
        with pytest.raises(DomainError):
            await ask(ref, Refuse())
        return await ask(ref, Answer(7, []))

    assert asyncio.run(main()) == 7


def test_a_cancelled_request_leaves_the_command_to_finish(ref: pykka.ActorRef[Any]) -> None:
    """A client gone mid-command cancels its request; the durable future is not cancelled (the journal writes
    the events anyway) and the late answer is dropped quietly."""
    async def main() -> Future[Any]:
        durable = Future[Any]()
        task = asyncio.create_task(ask(ref, Answer("late", [durable])))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        durable.set_result([])
        await asyncio.sleep(0.05)  # the late answer reaches the loop and finds nobody waiting
        return durable

    assert not asyncio.run(main()).cancelled()


def test_a_stopped_actor_is_actor_gone() -> None:
    actor = Answering.start()
    actor.stop()

    async def main() -> None:
        await ask(actor, Answer(1, []))

    with pytest.raises(ActorGone):
        asyncio.run(main())


class Slow:
    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate


class Gated(Answering):
    def handle_Slow(self, cmd: Slow) -> Outcome:
        assert cmd.gate.wait(10)
        return Outcome("slow")


def test_a_request_cancelled_before_the_actor_answers_leaves_the_actor_serving() -> None:
    """A client that goes away while its command waits in the mailbox: the actor still answers into the
    reply (no error in its thread, which would stop it) and serves the next command."""
    actor = Gated.start()
    gate = threading.Event()
    try:
        async def main() -> Any:
            task = asyncio.create_task(ask(actor, Slow(gate)))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.set()
            return await asyncio.wait_for(ask(actor, Answer("next", [])), 10)

        assert asyncio.run(main()) == "next"
        assert actor.is_alive()
    finally:
        gate.set()
        actor.stop()


class Token:
    """A value to follow: weakly referenced, it tells whether an answer was let go."""


def test_an_answered_ask_leaves_no_reference_cycle(ref: pykka.ActorRef[Any]) -> None:
    """Under start/stop pairs every command's objects (its outcome, futures and their Conditions) ended up as
    cyclic garbage (durable future -> its callback -> the reply -> the outcome -> the future), and the
    collector's passes over them were a fifth of the API's CPU: once answered, reference counting frees them."""
    async def main() -> weakref.ref[Token]:
        loop = asyncio.get_running_loop()
        durable: DurableFuture[Any] = DurableFuture()  # what the journal hands out
        loop.call_later(0.05, lambda: loop.run_in_executor(None, durable.settle, []))
        value = await ask(ref, Answer(Token(), [durable]))
        await ask(ref, Answer(None, []))  # the actor's thread lets go of the first command
        return weakref.ref(value)

    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        answer = asyncio.run(main())
        assert answer() is None
    finally:
        if enabled:
            gc.enable()


class Carry:
    def __init__(self, payload: Any) -> None:
        self.payload = payload


class Carrying(CommandActor):
    def handle_Carry(self, _cmd: Carry) -> Outcome:
        return Outcome(None)


def test_an_idle_actor_lets_go_of_its_last_command() -> None:
    """pykka's loop keeps the envelope it took until the next one arrives, so an actor whose last command was
    StreamGone kept the ended stream (its transcoder's codec contexts and their native threads) alive until
    another command came: on an idle server, indefinitely. Answered is let go, with no other command sent."""
    actor = Carrying.start()
    try:
        payload = Token()
        gone = weakref.ref(payload)
        assert tell(actor, Carry(payload)).result(5).value is None
        del payload
        deadline = time.monotonic() + 5
        while gone() is not None and time.monotonic() < deadline:  # the actor's thread finishes its turn
            gc.collect()
            time.sleep(0.01)
        assert gone() is None, "the actor still holds its last command"
    finally:
        actor.stop()


def test_asks_made_durable_by_one_commit_wake_the_loop_once(ref: pykka.ActorRef[Any]) -> None:
    """The journal settles a commit's futures one after the other on its thread: the loop is woken once for
    the batch (not once per command), and every request still gets its own answer."""
    async def main() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        wakes = [0]
        wake = loop.call_soon_threadsafe

        def counted(*args: Any, **kw: Any) -> Any:
            wakes[0] += 1
            return wake(*args, **kw)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        futures = [DurableFuture[Any]() for _ in range(20)]
        asks = [asyncio.create_task(ask(ref, Answer(i, [futures[i]]))) for i in range(20)]
        await asyncio.sleep(0)  # the tasks above send their commands (an ask awaited here would go first)
        await ask(ref, Answer(None, []))  # every command above is answered (the actor takes them in order)
        before = wakes[0]

        settled = threading.Event()

        def commit() -> None:
            for fut in futures:
                fut.settle([])
            settled.set()

        # the loop is held until the whole commit is settled, as when the committing thread keeps the GIL through
        # it; without the hold, a loaded machine could let the loop drain midway and need a second wake-up
        loop.call_soon(settled.wait, 30)
        committer = threading.Thread(target=commit)  # as the journal's thread (an executor would wake the loop)
        committer.start()
        values = await asyncio.gather(*asks)
        committer.join()
        return values, wakes[0] - before

    values, wakes = asyncio.run(main())
    assert values == list(range(20))
    assert wakes == 1  # one per commit, never one per command


def test_a_loop_that_asked_is_not_kept_alive_by_its_inbox(ref: pykka.ActorRef[Any]) -> None:
    """The replies' inbox of a loop (one per loop, kept by the loop weakly) does not hold the loop itself: a
    loop that asked and was closed is freed, with whatever hangs off it."""

    async def main() -> Any:
        return await ask(ref, Answer(7, []))

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(main()) == 7
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None, "the closed loop stayed alive"
