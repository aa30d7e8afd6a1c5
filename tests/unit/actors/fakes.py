"""In-memory stand-ins the task actors' tests share: a journal that keeps what is emitted (durable at
once) and session stats that count nothing."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from kiln.events.base import Event


class Journal:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, events: Sequence[Event]) -> Future[Any]:
        self.events.extend(events)
        done: Future[Any] = Future()
        done.set_result(None)
        return done


class Stats:
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None:
        return None

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None:
        return None
