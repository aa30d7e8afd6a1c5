"""An effect starts only once its events are durable, and never if they could not be journaled."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from kiln.actors.effects import after, gathered


def test_the_effect_waits_for_the_journal_and_its_outcome_is_the_answer() -> None:
    durable: Future[None] = Future()
    started: list[str] = []
    effect_done: Future[int] = Future()

    def effect() -> Future[int]:
        started.append("inject")
        return effect_done

    answer = after(durable, effect)
    assert started == [] and not answer.done()
    durable.set_result(None)
    assert started == ["inject"] and not answer.done()
    effect_done.set_result(3)
    assert answer.result(0) == 3


def test_nothing_takes_effect_that_the_journal_does_not_hold() -> None:
    durable: Future[None] = Future()
    started: list[str] = []
    answer = after(durable, lambda: started.append("inject") or Future())
    durable.set_exception(OSError("disk full"))
    assert started == []
    with pytest.raises(OSError, match="disk full"):
        answer.result(0)


def test_an_effect_that_fails_fails_the_answer() -> None:
    durable: Future[None] = Future()
    failing: Future[int] = Future()
    answer = after(durable, lambda: failing)
    durable.set_result(None)
    failing.set_exception(ValueError("stream gone"))
    with pytest.raises(ValueError, match="stream gone"):
        answer.result(0)


def test_gathered_answers_in_order_once_all_are_done_or_with_the_first_error() -> None:
    first: Future[int] = Future()
    second: Future[int] = Future()
    both = gathered([first, second])
    second.set_result(2)
    assert not both.done()
    first.set_result(1)
    assert both.result(0) == [1, 2]
    assert gathered([]).result(0) == []
    failing: Future[int] = Future()
    one = gathered([failing, Future()])
    failing.set_exception(ValueError("no target"))
    with pytest.raises(ValueError, match="no target"):
        one.result(0)
