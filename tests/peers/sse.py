"""A Server-Sent Events reader for e2e tests: reads ``id``/``event``/``data`` blocks from a live stream
with httpx, the way a browser's ``EventSource`` would (``Last-Event-ID`` on reconnect)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]


def read_events(client: httpx.Client, url: str, until: Callable[[list[SseEvent]], bool], *,
                last_event_id: int | None = None, timeout: float = 30.0,
                on_open: Callable[[], object] | None = None) -> tuple[list[SseEvent], list[str]]:
    """Events read until ``until(events)`` holds, then the connection is dropped; also the comment lines.
    ``on_open`` runs once the answer's headers are in (the stream's start point is fixed by then)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    events: list[SseEvent] = []
    comments: list[str] = []
    deadline = time.monotonic() + timeout
    with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout)) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        if on_open is not None:
            on_open()
        fields: dict[str, str] = {}
        for line in answer.iter_lines():
            if time.monotonic() > deadline:
                raise TimeoutError(f"events read so far: {[e.id for e in events]}")
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            elif "id" in fields:
                events.append(SseEvent(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                if until(events):
                    return events, comments
            else:
                fields = {}
    raise AssertionError(f"stream ended early after {[e.id for e in events]}")
