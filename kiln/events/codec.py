"""Turning events into journal records and back."""

from __future__ import annotations

from typing import Any, Protocol

from kiln.events.base import Event, decode_event


class StoredRecord(Protocol):
    """What decoding needs of a journal record (kiln.journal.records.Record is one; events import no journal)."""

    @property
    def type(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def payload(self) -> dict[str, Any]: ...


def record_parts(ev: Event) -> tuple[str, str, int, dict[str, Any]]:
    """(entity, type, version, payload) for the journal."""
    return ev.entity, ev.TYPE, ev.VERSION, ev.payload()


def event_of(record: StoredRecord) -> Event:
    return decode_event(record.type, record.version, record.payload)
