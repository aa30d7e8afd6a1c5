"""What the catalog actors (server, vhost, app) need from the process, as narrow Protocols.

Each actor states its own needs from these pieces; the concrete object (today the service's
context) is handed down the tree, since the app actor passes it on to its supervisors.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

import pykka

from kiln.eventlog import Encoded
from kiln.events.base import Event


class EventSink(Protocol):
    def encode(self, events: Sequence[Event]) -> Encoded:
        """The events as the journal stores them; raises ``NotJournaled`` when it cannot (before they change any
        state: ``decide_and_apply`` takes this as its ``store``)."""
        ...

    def emit(self, events: Sequence[Event] | Encoded) -> Future[Any]:
        """Journal the events as one append; the future completes once they are durable."""
        ...


class ActorRegistry(Protocol):
    """Where HTTP handlers find the actor that owns an entity."""

    def register(self, key: tuple[str, ...], ref: pykka.ActorRef[Any]) -> None: ...

    def unregister(self, key: tuple[str, ...], ref: pykka.ActorRef[Any] | None = None) -> None: ...
