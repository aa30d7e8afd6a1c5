"""Turning events into journal records and back."""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard

from kiln.events.base import Event, decode_event


class StoredRecord(Protocol):
    """What decoding needs of a journal record (kiln.journal.records.Record is one; events import no journal)."""

    @property
    def type(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def payload(self) -> dict[str, Any]: ...


def storable_int(value: object) -> TypeGuard[int]:
    """An int (not a bool) the journal can keep: msgpack stores -2**63 .. 2**64-1 and refuses the append of any
    other (JSON bodies carry integers of any size)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 64)


def record_parts(ev: Event) -> tuple[str, str, int, dict[str, Any]]:
    """(entity, type, version, payload) for the journal."""
    return ev.entity, ev.TYPE, ev.VERSION, ev.payload()


def event_of(record: StoredRecord) -> Event:
    return decode_event(record.type, record.version, record.payload)
