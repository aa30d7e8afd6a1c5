"""The contract every aggregate follows (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from kiln.events.base import Event

C = TypeVar("C", contravariant=True)


class Aggregate(Protocol[C]):
    def decide(self, command: C, now: float) -> list[Event]:
        """The events this command causes in the current state; raises DomainError to refuse."""
        ...

    def apply(self, event: Event) -> None:
        """Fold one event (decided now, or replayed from the journal) into the state."""
        ...


S = TypeVar("S")


def decide_and_apply(aggregate: Aggregate[C], command: C, now: float, store: Callable[[list[Event]], S]) -> S:
    """What an actor does with a command: decide, have ``store`` check that the journal can keep the events (the
    event log encodes them: ``EventLog.encode``), then apply them to the aggregate; returns what ``store`` made,
    which the actor appends. A refusal of ``store`` (a value the journal cannot store, a journal stopped by a
    failed write) leaves the aggregate as it was: an actor is never ahead of what a restart rebuilds because of
    what its events hold."""
    events = aggregate.decide(command, now)
    stored = store(events)
    for ev in events:
        aggregate.apply(ev)
    return stored
