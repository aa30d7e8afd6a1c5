"""WebRTC viewers' sessions into the journal (who watched what, when, how long), without waiting on it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from kiln.events.base import Event
from kiln.events.playback import PlaybackSessionClosed, PlaybackSessionOpened

log = logging.getLogger(__name__)
PROTOCOL = "WEBRTC"


class EventSink(Protocol):
    def emit(self, events: Sequence[Event]) -> Future[Any]: ...


class JournalSessions:
    """The publisher's SessionLog: appends from the event loop; the journal's own thread writes."""

    def __init__(self, events: EventSink) -> None:
        self.events = events

    def opened(self, vhost: str, app: str, stream: str, session: str, client: str, playlist: str, rendition: str,
               tracks: str) -> None:
        self._emit(PlaybackSessionOpened(vhost, app, stream, PROTOCOL, session, client, playlist, rendition, tracks))

    def closed(self, vhost: str, app: str, stream: str, session: str, client: str, reason: str, bytes_out: int,
               seconds: float) -> None:
        self._emit(PlaybackSessionClosed(vhost, app, stream, PROTOCOL, session, client, reason, bytes_out, seconds))

    def _emit(self, event: Event) -> None:
        try:
            self.events.emit([event]).add_done_callback(_log_failure)
        except Exception as exc:  # the journal is closing (shutdown): the session still ends cleanly
            log.error("webrtc session not journaled type=%s error=%s", event.TYPE, exc)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("webrtc session not journaled error=%s", exc)
