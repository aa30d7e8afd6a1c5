"""Requests that carry many items (POST vhosts, apps, output profiles), decided one item at a time.

OME answers such a request with one entry per item (rest-spec §1.8): the item's response, or why
that item alone was refused. Some refusals stop the rest of the request instead; which ones is
the caller's rule, so ``decide_each`` takes the kinds that stay with their item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kiln.domain.aggregate import Aggregate, decide_and_apply
from kiln.domain.errors import DomainError
from kiln.events.base import Event

C = TypeVar("C")


@dataclass(frozen=True)
class ItemResult:
    """One element of a multi-status answer: the item's response, or the refusal of that item."""

    response: Any = None
    error: DomainError | None = None


@dataclass
class Batch:
    """What ``decide_each`` found: an answer per item decided, the events of each accepted item
    (in item order, already applied to the aggregate), and the refusal that stopped the rest."""

    results: list[ItemResult] = field(default_factory=list)
    accepted: list[list[Event]] = field(default_factory=list)
    stopped_by: DomainError | None = None

    @property
    def events(self) -> list[Event]:
        return [ev for events in self.accepted for ev in events]


def decide_each(aggregate: Aggregate[C], commands: Iterable[C], now: float,
                respond: Callable[[list[Event]], Any],
                per_item: tuple[type[DomainError], ...]) -> Batch:
    """Decide and apply the commands in order. A refusal of a kind in ``per_item`` becomes that
    item's answer; any other refusal stops the batch (items before it stay decided)."""
    batch = Batch()
    for command in commands:
        try:
            events = decide_and_apply(aggregate, command, now)
        except per_item as exc:
            batch.results.append(ItemResult(error=exc))
            continue
        except DomainError as exc:
            batch.stopped_by = exc
            break
        batch.accepted.append(events)
        batch.results.append(ItemResult(response=respond(events)))
    return batch
