"""Requests that carry many items (POST vhosts, apps, output profiles), decided one item at a time.

OME answers such a request with one entry per item (rest-spec §1.8): the item's response, or why
that item alone was refused. Some refusals stop the rest of the request instead; which ones is
the caller's rule, so ``decide_each`` takes the kinds that stay with their item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kiln.domain.aggregate import Aggregate
from kiln.domain.errors import DomainError
from kiln.events.base import Event

C = TypeVar("C")
S = TypeVar("S")


@dataclass(frozen=True)
class ItemResult:
    """One element of a multi-status answer: the item's response, or the refusal of that item."""

    response: Any = None
    error: DomainError | None = None


@dataclass
class Batch(Generic[S]):
    """What ``decide_each`` found: an answer per item decided, the events of each accepted item
    (in item order, already applied to the aggregate) and what ``store`` made of them, and the refusal
    that stopped the rest."""

    results: list[ItemResult] = field(default_factory=list)
    accepted: list[list[Event]] = field(default_factory=list)
    stored: list[S] = field(default_factory=list)
    stopped_by: DomainError | None = None

    @property
    def events(self) -> list[Event]:
        return [ev for events in self.accepted for ev in events]


def decide_each(aggregate: Aggregate[C], commands: Iterable[C], now: float, store: Callable[[list[Event]], S],
                respond: Callable[[list[Event]], Any],
                per_item: tuple[type[DomainError], ...]) -> Batch[S]:
    """Decide and apply the commands in order (``decide_and_apply``, with ``store``). A refusal of a kind in
    ``per_item`` becomes that item's answer; any other refusal (``store``'s too) stops the batch (items before it
    stay decided)."""
    batch: Batch[S] = Batch()
    for command in commands:
        try:
            events = aggregate.decide(command, now)
            stored = store(events)  # before the events change the aggregate, as in ``decide_and_apply``
        except per_item as exc:
            batch.results.append(ItemResult(error=exc))
            continue
        except DomainError as exc:
            batch.stopped_by = exc
            break
        for ev in events:
            aggregate.apply(ev)
        batch.accepted.append(events)
        batch.stored.append(stored)
        batch.results.append(ItemResult(response=respond(events)))
    return batch
