"""In-memory stand-ins the task actors' tests share: a journal that keeps what is emitted (durable at
once) and session stats that count nothing."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from kiln.domain.effects import Effect
from kiln.eventlog import Encoded, encode_events
from kiln.events.base import Event


def _events_of(events: Sequence[Event] | Encoded) -> Sequence[Event]:
    return events.events if isinstance(events, Encoded) else events


class Journal:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def encode(self, events: Sequence[Event]) -> Encoded:
        return encode_events(events)  # the journal's own encoding: what it refuses, the actors see refused

    def emit(self, events: Sequence[Event] | Encoded) -> Future[Any]:
        self.events.extend(ev for ev in _events_of(events) if not isinstance(ev, Effect))
        done: Future[Any] = Future()
        done.set_result(None)
        return done


class Stats:
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None:
        return None

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None:
        return None
