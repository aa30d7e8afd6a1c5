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
