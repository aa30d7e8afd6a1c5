"""Given/when/then for aggregates: ``given(agg, *events).when(cmd, now).then(*expected)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.domain.aggregate import Aggregate, decide_and_apply
from kiln.domain.errors import DomainError
from kiln.events.base import Event


@dataclass
class Scenario:
    aggregate: Any

    def when(self, command: Any, now: float = 1_000.0) -> Outcome:
        try:
            return Outcome(self.aggregate, decide_and_apply(self.aggregate, command, now, list), None)
        except DomainError as exc:
            return Outcome(self.aggregate, [], exc)


@dataclass
class Outcome:
    aggregate: Any
    events: list[Event]
    error: DomainError | None

    def then(self, *expected: Event) -> Outcome:
        assert self.error is None, f"refused: {type(self.error).__name__}: {self.error.text}"
        assert self.events == list(expected)
        return self

    def refused(self, kind: type[DomainError], text: str | None = None) -> Outcome:
        assert self.error is not None, f"not refused; decided {self.events}"
        assert isinstance(self.error, kind), f"{type(self.error).__name__}: {self.error.text}"
        if text is not None:
            assert self.error.text == text
        return self

    def when(self, command: Any, now: float = 1_000.0) -> Outcome:
        return Scenario(self.aggregate).when(command, now)


def given(aggregate: Aggregate[Any], *history: Event) -> Scenario:
    for ev in history:
        aggregate.apply(ev)
    return Scenario(aggregate)


__all__ = ["given"]
