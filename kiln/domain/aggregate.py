"""The contract every aggregate follows (see the package docstring)."""

from __future__ import annotations

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


def decide_and_apply(aggregate: Aggregate[C], command: C, now: float) -> list[Event]:
    """What an actor does with a command: decide, then apply the decided events to itself."""
    events = aggregate.decide(command, now)
    for ev in events:
        aggregate.apply(ev)
    return events
