"""Effects that run once a command's events are durable, without any thread waiting for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


def after(durable: Future[Any], effect: Callable[[], Future[T]]) -> Future[T]:
    """Start ``effect`` when ``durable`` succeeds; the result completes with the effect's outcome.

    If the events could not be journaled the effect never runs and the result carries that error:
    nothing takes effect that the journal does not hold.
    """
    done: Future[T] = Future()

    def journaled(fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            done.set_exception(exc)
            return
        try:
            started = effect()
        except Exception as error:
            done.set_exception(error)
            return
        started.add_done_callback(lambda f: _copy(f, done))

    durable.add_done_callback(journaled)
    return done


def _copy(source: Future[T], target: Future[T]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def gathered(futures: Sequence[Future[T]]) -> Future[list[T]]:
    """One future for many: their results in order, or the first error."""
    done: Future[list[T]] = Future()
    remaining = [len(futures)]

    def one(_f: Future[T]) -> None:
        if done.done():
            return
        exc = _f.exception()
        if exc is not None:
            done.set_exception(exc)
            return
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result([f.result() for f in futures])

    if not futures:
        done.set_result([])
    for fut in futures:
        fut.add_done_callback(one)
    return done
