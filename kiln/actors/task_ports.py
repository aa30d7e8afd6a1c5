"""What push and record task actors need from the process, as narrow Protocols.

The task supervisor builds a ``TaskPorts`` from what it is given at start and hands it to each
task actor; nothing else of the process reaches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from kiln.eventlog import Encoded
from kiln.events.base import Event


class Journal(Protocol):
    def encode(self, events: Sequence[Event]) -> Encoded:
        """The events as the journal stores them; raises ``NotJournaled`` when it cannot (``decide_and_apply``)."""
        ...

    def emit(self, events: Sequence[Event] | Encoded) -> Future[Any]:
        """Append events atomically; the future completes once they are durable."""
        ...


class TaskStats(Protocol):
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...


class CounterBoard(Protocol):
    """Where HTTP reads a task's live counters (``media.task_counters``)."""

    def put(self, key: tuple[str, ...], counters: Any) -> None: ...

    def pop(self, key: tuple[str, ...]) -> None: ...


@dataclass(frozen=True)
class TaskPorts:
    journal: Journal
    stats: TaskStats
    counters: CounterBoard | None  # None in control-plane-only tests (no media runtime)
