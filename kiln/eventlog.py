"""The write side's single door: events go to the journal, durable records go to projections.

Projections are updated on the thread that commits to the journal, one commit at a time, in sequence
order, before the append's future completes; so when an HTTP command returns, every later GET already sees its effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from itertools import islice
from typing import Any, Protocol

from kiln.domain.effects import Effect
from kiln.domain.errors import NotJournaled
from kiln.events.base import Event
from kiln.events.codec import event_of, record_parts
from kiln.journal.errors import JournalError
from kiln.journal.framing import encode_tail
from kiln.journal.journal import unstorable
from kiln.journal.reader import BATCH
from kiln.journal.records import NewRecord, Record, new_record
from kiln.replay import Replay

log = logging.getLogger(__name__)


class Projection(Protocol):
    """A read model. It may also offer ``replay_handler(type_name) -> Callable[[Event], None] | None``: what
    ``apply`` does for events of that type (None: it ignores them), looked up once per type by replay; and
    ``replay_lock``, a lock replay holds around each list of records (its replay handlers then do not lock)."""

    def apply(self, ev: Event) -> None: ...


def _lists_of(rows: Iterable[list[Any]], size: int) -> Iterator[list[list[Any]]]:
    """``rows`` in lists of up to ``size``."""
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class RecordJournal(Protocol):
    """What the log needs of the journal: appends that become durable, and a word when they do."""

    def append(self, records: list[NewRecord]) -> Future[list[Record]]: ...

    def add_listener(self, fn: Callable[[list[Record]], None]) -> None: ...

    @property
    def failure(self) -> str | None:
        """Why a failed write stopped the journal, or None."""
        ...


# (entity, type, version, payload, encoded) -> the record the journal appends
NewRecordFactory = Callable[[str, str, int, dict[str, Any], bytes], NewRecord]


class Encoded:
    """A command's decided events, encoded for the journal before any of them changed an actor's state
    (``EventLog.encode``): ``records`` are those the journal stores (effects left out), ``events`` all of them.
    A plain slotted class: one is made per command (a frozen dataclass's ``__init__`` costs twice as much)."""

    __slots__ = ("events", "records")

    def __init__(self, events: list[Event], records: list[NewRecord]) -> None:
        self.events = events
        self.records = records

    @staticmethod
    def joined(parts: Iterable[Encoded]) -> Encoded:
        """Several commands' events as one append (one fsync for a request of many items)."""
        events: list[Event] = []
        records: list[NewRecord] = []
        for part in parts:
            events += part.events
            records += part.records
        return Encoded(events, records)
Observer = Callable[[Record, Event], None]


def encode_events(events: Sequence[Event], new_record: NewRecordFactory = new_record) -> Encoded:
    """``EventLog.encode`` without the journal's state: each event that is not an effect, as the journal stores it
    (``framing.encode_tail``); ``NotJournaled`` (logged) for one msgpack cannot store."""
    records = []
    for ev in events:
        if isinstance(ev, Effect):
            continue
        entity, type_, version, payload = record_parts(ev)
        try:
            encoded = encode_tail(entity, type_, version, payload)
        except Exception as exc:  # noqa: BLE001 - a value msgpack cannot store (an int beyond 64 bits)
            refused = unstorable([NewRecord(entity, type_, version, payload)], exc)
            raise NotJournaled(f"{refused}; nothing was changed") from None
        records.append(new_record(entity, type_, version, payload, encoded))
    return Encoded(events if type(events) is list else list(events), records)


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

    def encode(self, events: Sequence[Event]) -> Encoded:
        """The events as the journal stores them, or ``NotJournaled`` (logged) when it cannot: a value msgpack
        cannot store, or a journal a failed write stopped. An actor calls this before its events change its state
        (``decide_and_apply``), so a refused command changes nothing; the encoding is the journal's own (it is
        not done again at the commit)."""
        failure = self._journal.failure
        if failure is not None:
            raise NotJournaled(failure)
        return encode_events(events, self._new_record)

    def emit(self, events: Sequence[Event] | Encoded) -> Future[list[Record]]:
        """Append events (encoded by ``encode``, or encoded here) as one atomic call; the future completes when
        they are durable, or fails with ``NotJournaled`` (never raises)."""
        try:
            encoded = events if isinstance(events, Encoded) else self.encode(events)
            return self._journal.append(encoded.records)
        except (NotJournaled, JournalError) as exc:
            refused: Future[list[Record]] = Future()
            refused.set_exception(exc if isinstance(exc, NotJournaled) else NotJournaled(str(exc)))
            return refused

    def apply_replayed(self, records: Iterable[Record]) -> int:
        """Feed records read back at startup to the projections (not to observers)."""
        count = 0
        for record in records:
            self._project(record, event_of(record))
            count += 1
        return count

    def apply_stored(self, rows: Iterable[list[Any]]) -> int:
        """``apply_replayed`` for records as the journal stores them, ``[seq, time, entity, type, version,
        payload]`` (``Journal.read_stored``; the payload a map, or its values in layout order)."""
        return self.apply_stored_lists(_lists_of(rows, BATCH))

    def apply_stored_lists(self, lists: Iterable[list[list[Any]]]) -> int:
        """``apply_stored`` for the records in lists (``Journal.read_stored_lists``): startup replay's path,
        ``kiln.replay.Replay`` (each type routed once to the projections that read it, their locks taken
        once per list). A projection's failure is logged and counted as in ``_project``."""
        replay = Replay(self._projections)
        try:
            replay.run(lists)
        finally:
            self.projection_failures += replay.failures
        return replay.count

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
