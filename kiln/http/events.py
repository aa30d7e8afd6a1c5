"""``GET /v1/events``: the journal as Server-Sent Events, so a service follows Kiln instead of polling.

Each durable record is one event: ``id`` is its sequence number, ``event`` its type, ``data`` the
journal's one JSON shape of a record (``kiln journal show --json``, secrets masked). ``?from=SEQ``
starts there; a reconnecting ``EventSource`` sends ``Last-Event-ID`` and resumes right after it, so a
client that drops and comes back sees every record exactly once. Without either, the stream starts
with the next record. ``entity=`` (a prefix, as ``kiln journal show --entity``) and ``type=``
(comma-separated) filter. A comment line every ``KEEPALIVE_S`` keeps proxies from closing a quiet
stream. A client too slow to keep up is cut off by the feed and resumes by ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import Response, StreamingResponse

from kiln.errors import ApiError
from kiln.events.base import registered_types
from kiln.events.redact import Redactor
from kiln.http.envelope import BASE_HEADERS, dumps
from kiln.http.router import Call, Router

KEEPALIVE_S = 15.0
RETRY_MS = 1000


class FeedRecord(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def entity(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


class FeedTail(Protocol):
    next_seq: int

    async def batch(self) -> list[Any] | None: ...
    def close(self) -> None: ...


class EventFeed(Protocol):
    """What the route reads of the journal feed (``kiln.journal.feed.JournalFeed``)."""

    @property
    def last_seq(self) -> int: ...
    def tail(self, from_seq: int) -> FeedTail: ...
    def view(self, record: Any, redactor: Redactor | None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RecordFilter:
    entity: str = ""
    types: frozenset[str] = frozenset()

    def __call__(self, record: FeedRecord) -> bool:
        return record.entity.startswith(self.entity) and (not self.types or record.type in self.types)


def parse_seq(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # int() reads at most 4,300 digits
        raise ApiError(400, f"{what} must be a journal sequence number (an integer >= 0), not {value[:40]!r}")
    return int(value)


def start_seq(query: dict[str, str], last_event_id: str | None, last_seq: int) -> int:
    """Where a stream starts: after ``Last-Event-ID`` (a reconnect wins over the URL), else ``from``,
    else after the newest durable record."""
    if last_event_id is not None and last_event_id.strip():
        return parse_seq(last_event_id.strip(), "Last-Event-ID") + 1
    if "from" in query:
        return max(1, parse_seq(query["from"], "from"))
    return last_seq + 1


def record_filter(query: dict[str, str]) -> RecordFilter:
    """The stream's filter; an event type Kiln does not have is a 400 (a typo would otherwise show nothing)."""
    types = frozenset(t.strip() for t in query.get("type", "").split(",") if t.strip())
    unknown = sorted(types - set(registered_types()))
    if unknown:
        raise ApiError(400, f"Unknown event type: {unknown[0][:60]}")
    return RecordFilter(query.get("entity", ""), types)


async def sse_stream(feed: EventFeed, start: int, wanted: Callable[[Any], bool],
                     keepalive_s: float = KEEPALIVE_S, closing: asyncio.Event | None = None,
                     secrets: Callable[[], list[dict[str, Any]]] | None = None) -> AsyncIterator[bytes]:
    """The event stream's bytes; ends when the feed cuts the client off (it reconnects and resumes) or when
    ``closing`` is set (the server stops: an endless response would hold its shutdown forever)."""
    yield f"retry: {RETRY_MS}\n: kiln journal from seq {start}\n\n".encode()
    tail = feed.tail(start)
    redactor = Redactor()  # one per stream: it knows the secrets held now and learns those it sees
    for payload in secrets() if secrets is not None else ():
        redactor.learn(payload)
    pending: asyncio.Future[Any] | None = None
    stop: asyncio.Future[Any] = asyncio.ensure_future((closing or asyncio.Event()).wait())
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(tail.batch())
            done, _ = await asyncio.wait({pending, stop}, timeout=keepalive_s, return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                return
            if not done:
                yield b": keep-alive\n\n"
                continue
            batch, pending = pending.result(), None
            if batch is None:
                return
            out = []
            for record in batch:
                if not wanted(record):
                    redactor.learn(record.payload)
                    continue
                data = dumps(feed.view(record, redactor)).decode("ascii")
                out.append(f"id: {record.seq}\nevent: {record.type}\ndata: {data}\n\n")
            if out:
                yield "".join(out).encode("ascii")
    finally:
        stop.cancel()
        if pending is not None:
            pending.cancel()
        tail.close()


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    async def events(call: Call) -> Response:
        feed: EventFeed | None = getattr(ctx, "feed", None)
        if feed is None:
            raise ApiError(404, "Controller not found")
        query = dict(call.request.query_params)
        start = start_seq(query, call.request.headers.get("last-event-id"), feed.last_seq)
        keepalive = getattr(api, "sse_keepalive_s", KEEPALIVE_S)
        stream = sse_stream(feed, start, record_filter(query), keepalive, api.closing,
                            getattr(ctx, "secret_payloads", None))
        return StreamingResponse(stream,
                                 media_type="text/event-stream",
                                 headers={**BASE_HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    router.add("GET", r"/v1/events", events)
