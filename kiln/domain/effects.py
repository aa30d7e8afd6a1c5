"""Decisions that are not journaled.

An aggregate sometimes decides something the journal must not hold: when to retry, or attempt
bookkeeping that lives only as long as the process (a push's failures in a row). ``decide``
returns these beside the events so the rule stays testable by given/when/then; ``apply`` folds
them like events; the actor journals only ``journaled(events)`` and runs the effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kiln.events.base import Event


@dataclass(frozen=True)
class Effect(Event):
    """Base of the non-journaled decisions (never registered as an event type)."""

    @property
    def entity(self) -> str:
        return ""


def journaled(events: Sequence[Event]) -> list[Event]:
    """The decided events the journal takes (effects left out)."""
    return [ev for ev in events if not isinstance(ev, Effect)]


def effects(events: Sequence[Event]) -> list[Effect]:
    return [ev for ev in events if isinstance(ev, Effect)]
