"""One JSON shape for a journal record, shared by ``kiln journal show --json`` and every feed that
shows records to people or services (secrets masked by the caller's redactor)."""

from __future__ import annotations

from typing import Any

from kiln.events.redact import Redactor
from kiln.journal.records import Record
from kiln.timefmt import format_time


def record_view(record: Record, redactor: Redactor | None) -> dict[str, Any]:
    """``{seq, time, entity, type, version, payload}``; ``redactor`` None shows secrets as stored."""
    payload = record.payload if redactor is None else redactor.payload(record.payload)
    return {"seq": record.seq, "time": format_time(record.time), "entity": record.entity,
            "type": record.type, "version": record.version, "payload": payload}
