"""Admission decisions into the journal, through the one thing it needs of the event log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from kiln.admission.contract import AdmissionRequest, Verdict
from kiln.admission.signed_policy import redact
from kiln.events.admission import AdmissionAllowed, AdmissionDenied
from kiln.events.base import Event

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def emit(self, events: Sequence[Event]) -> Future[Any]: ...


class JournalAudit:
    """The step's AdmissionAudit: appends without waiting (the journal's own thread writes)."""

    def __init__(self, events: EventSink) -> None:
        self.events = events

    def decided(self, request: AdmissionRequest, rule: str, verdict: Verdict) -> None:
        client = f"{request.client[0]}:{request.client[1]}"
        url = redact(request.url, verdict.secrets)
        base = (request.vhost, request.app, request.stream, request.protocol, request.direction.value, client, url,
                rule)
        ev: Event
        if verdict.allowed:
            ev = AdmissionAllowed(*base, new_url=redact(verdict.new_url or "", verdict.secrets),
                                  lifetime_ms=verdict.lifetime_ms, stream_expire_ms=verdict.stream_expire_ms or 0,
                                  reason=verdict.reason)
        else:
            ev = AdmissionDenied(*base, reason=verdict.reason)
        self.events.emit([ev]).add_done_callback(_log_failure)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("admission decision not journaled error=%s", exc)
