"""What the journal stores: one immutable record per event, numbered by the journal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NewRecord:
    """An event on its way in; the journal adds the sequence number and the time. ``encoded``: the record's
    ``framing.encode_tail``, made by whoever checks that it can be stored before its event changes any state
    (kiln/eventlog.py); empty, ``Journal.append`` makes it."""

    entity: str
    type: str
    version: int
    payload: dict[str, Any] = field(default_factory=dict)
    encoded: bytes = b""


@dataclass(frozen=True, slots=True)
class Record:
    """A durable event: ``seq`` is gapless and strictly increasing across the whole journal."""

    seq: int
    time: float
    entity: str
    type: str
    version: int
    payload: dict[str, Any]

    def as_list(self) -> list[Any]:
        return [self.seq, self.time, self.entity, self.type, self.version, self.payload]


_new_object = object.__new__
_set_entity, _set_type, _set_version, _set_payload, _set_encoded = (
    NewRecord.__dict__[name].__set__ for name in ("entity", "type", "version", "payload", "encoded"))


def new_record(entity: str, type_: str, version: int, payload: dict[str, Any], encoded: bytes) -> NewRecord:
    """``NewRecord(entity, type_, version, payload, encoded)`` made field by field through its slots: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``, and every command's events go
    through here (``kiln.eventlog.encode_events``)."""
    record = _new_object(NewRecord)
    _set_entity(record, entity)
    _set_type(record, type_)
    _set_version(record, version)
    _set_payload(record, payload)
    _set_encoded(record, encoded)
    return record
