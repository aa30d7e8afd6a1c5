"""The write side's single door: events go to the journal, durable records go to projections.

Projections are updated on the thread that commits to the journal, one commit at a time, in sequence
order, before the append's future completes; so when an HTTP command returns, every later GET already sees its effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from kiln.events.base import Event, ValuesDecoder, decode_event, decode_values, values_decoder
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


def _no_fill(values: list[Any]) -> Event:  # pragma: no cover - a type first seen as a map: never called
    raise AssertionError("no fill for a type first stored as a map")


def _decode_stored(type_name: str, version: int, payload: Any) -> Event:
    """An event from a stored payload: a map, or a list in its layout's order (kiln.events.layouts)."""
    if type(payload) is list:
        return decode_values(type_name, version, payload)
    return decode_event(type_name, version, payload)


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
        payload]`` (``Journal.read_stored``; the payload a map, or its values in layout order): startup replay's
        path. Each event type is routed, once, to the projections that handle it (``replay_handler``), so an
        event is built only when a projection reads its type and goes only where it is read (the first record
        of each type is always decoded, so an unknown type still fails replay), and value lists of the type's
        first-seen version are decoded by one compiled ``fill`` (``values_decoder``). A projection's failure is
        logged and counted as in ``_project``."""
        projections = tuple(self._projections)
        # type -> (its route, the version whose value lists ``fill`` decodes, fill)
        routes: dict[str, tuple[tuple[tuple[Projection, Callable[[Event], None]], ...], int, ValuesDecoder]] = {}
        count = 0
        for row in rows:
            count += 1
            type_name, version, payload = row[3], row[4], row[5]
            found = routes.get(type_name)
            if found is None:
                _decode_stored(type_name, version, payload)
                listed = type(payload) is list
                found = routes[type_name] = (_route(projections, type_name), version if listed else -1,
                                             values_decoder(type_name, version) if listed else _no_fill)
            route, fill_version, fill = found
            if not route:
                continue
            if type(payload) is list:
                ev = fill(payload) if version == fill_version else decode_values(type_name, version, payload)
            else:
                ev = decode_event(type_name, version, payload)
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
