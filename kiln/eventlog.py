"""The write side's single door: events go to the journal, durable records go to projections.

Projections are updated on the thread that commits to the journal, one commit at a time, in sequence
order, before the append's future completes; so when an HTTP command returns, every later GET already sees its effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from kiln.events.base import Event, decode_event
from kiln.events.codec import event_of, record_parts
from kiln.journal.records import NewRecord, Record

log = logging.getLogger(__name__)


class Projection(Protocol):
    """A read model. It may also offer ``replay_handler(type_name) -> Callable[[Event], None] | None``: what
    ``apply`` does for events of that type (None: it ignores them), looked up once per type by replay."""

    def apply(self, ev: Event) -> None: ...


def _route(projections: Sequence[Projection], type_name: str) -> tuple[tuple[Projection, Callable[[Event], None]], ...]:
    """The projections that read ``type_name`` and what each calls for it."""
    found = []
    for projection in projections:
        replay_handler = getattr(projection, "replay_handler", None)
        handler = replay_handler(type_name) if replay_handler is not None else projection.apply
        if handler is not None:
            found.append((projection, handler))
    return tuple(found)


class RecordJournal(Protocol):
    """What the log needs of the journal: appends that become durable, and a word when they do."""

    def append(self, records: list[NewRecord]) -> Future[list[Record]]: ...

    def add_listener(self, fn: Callable[[list[Record]], None]) -> None: ...


# (entity, type, version, payload) -> the record the journal appends
NewRecordFactory = Callable[[str, str, int, dict[str, Any]], NewRecord]
Observer = Callable[[Record, Event], None]


class EventLog:
    def __init__(self, journal: RecordJournal, new_record: NewRecordFactory) -> None:
        self._journal = journal
        self._new_record = new_record
        self._projections: list[Projection] = []
        self._observers: list[Observer] = []
        self.projection_failures = 0
        journal.add_listener(self._on_durable)

    def add_projection(self, projection: Projection) -> None:
        self._projections.append(projection)

    def add_observer(self, fn: Observer) -> None:
        """Called with (record, event) for every durable record, after the projections."""
        self._observers.append(fn)

    def emit(self, events: Sequence[Event]) -> Future[list[Record]]:
        """Append events as one atomic call; the future completes when they are durable."""
        return self._journal.append([self._new_record(*record_parts(ev)) for ev in events])

    def apply_replayed(self, records: Iterable[Record]) -> int:
        """Feed records read back at startup to the projections (not to observers)."""
        count = 0
        for record in records:
            self._project(record, event_of(record))
            count += 1
        return count

    def apply_stored(self, rows: Iterable[Sequence[Any]]) -> int:
        """``apply_replayed`` for records as the journal stores them, ``[seq, time, entity, type, version,
        payload]`` (``Journal.read_stored``): startup replay's path. Each event type is routed, once, to the
        projections that handle it (``replay_handler``), so an event is built only when a projection reads
        its type and goes only where it is read (the first record of each type is always decoded, so an
        unknown type still fails replay). A projection's failure is logged and counted as in ``_project``."""
        projections = tuple(self._projections)
        routes: dict[str, tuple[tuple[Projection, Callable[[Event], None]], ...]] = {}
        count = 0
        for row in rows:
            count += 1
            type_name = row[3]
            route = routes.get(type_name)
            if route is None:
                decode_event(type_name, row[4], row[5])
                route = routes[type_name] = _route(projections, type_name)
            if not route:
                continue
            ev = decode_event(type_name, row[4], row[5])
            for projection, handler in route:
                try:
                    handler(ev)
                except Exception:
                    self.projection_failures += 1
                    log.exception("projection failed projection=%s type=%s seq=%s", type(projection).__name__,
                                  type_name, row[0])
        return count

    def _project(self, record: Record, ev: Event) -> None:
        """One projection's bug must not leave the others (or the rest of the batch) behind."""
        for projection in self._projections:
            try:
                projection.apply(ev)
            except Exception:
                self.projection_failures += 1
                log.exception("projection failed projection=%s type=%s seq=%s", type(projection).__name__,
                              record.type, record.seq)

    def _on_durable(self, records: list[Record]) -> None:
        for record in records:
            ev = event_of(record)
            self._project(record, ev)
            for observer in self._observers:
                try:
                    observer(record, ev)
                except Exception:
                    log.exception("event observer failed type=%s seq=%s", record.type, record.seq)
