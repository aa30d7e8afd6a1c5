"""The HLS v3 publisher: which output streams are published as TS, and the players' sessions.

``stream_started``/``stream_ended`` may come from any thread; an :class:`HlsStream` runs its own
worker, so nothing here waits on the event loop. Sessions follow OME's rule for the ``hlsv3``
connection count (media-spec §10), kept like LL-HLS's: a served master creates a session and counts
it once; a media playlist or segment naming a session Kiln no longer knows counts it once again; a
session idle for SESSION_IDLE_SECONDS ends and takes its count back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiln.config.values import as_float, is_true, publisher_section
from kiln.media.publish.hls.stream import HlsSettings, HlsStream
from kiln.media.publish.llhls.dvr import DvrStore, dvr_settings, stream_directory
from kiln.media.publish.session_query import next_free_id, parse_session
from kiln.media.publish.waiters import ChangeWaiters
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

SESSION_IDLE_SECONDS = 30.0
START_WAIT_SECONDS = 5.0  # how long a lookup waits for a started stream the stream actor has not handed over yet
CONNECTION_KIND = "hlsv3"
_ALNUM = string.ascii_letters + string.digits


class ConnectionStats(Protocol):
    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


def hls_config(app_config: dict[str, Any]) -> dict[str, Any] | None:
    """The app's ``Publishers/HLS`` section, None when HLS v3 is not enabled."""
    return publisher_section(app_config, "hls")


def settings_from(section: dict[str, Any]) -> HlsSettings:
    return HlsSettings(
        segment_duration=max(0.5, as_float(section.get("segmentDuration"), 5.0)),
        segment_count=max(1, int(as_float(section.get("segmentCount"), 3))),
        create_default_playlist=is_true(section.get("createDefaultPlaylist", True)),
        origin_mode=is_true(section.get("originMode", False)),
        dvr=dvr_settings(section.get("dvr")),
    )


@dataclass
class HlsSession:
    id: int
    key: str
    vhost: str
    app: str
    stream: str          # the input stream the stats belong to
    counted: int = 0
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def query(self) -> str:
        return f"session={self.id}_{self.key}"


@dataclass(frozen=True)
class Published:
    live: LiveStream
    stream: HlsStream


class HlsPublisher:
    def __init__(self, stats: ConnectionStats) -> None:
        self.stats = stats
        self._lock = threading.Lock()
        self.streams: dict[tuple[str, str, str], Published] = {}
        self.sessions: dict[int, HlsSession] = {}
        self._next_session = 1
        self._reaper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where DVR stores live
        # input streams that exist but have not started here yet, and find_soon's waiters (on the loop)
        self._pending: dict[tuple[str, str, str], LiveStream] = {}
        self._changed = ChangeWaiters()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reaper = loop.create_task(self._reap_sessions())

    # -- lifecycle (any thread) --
    def stream_created(self, live: LiveStream) -> None:
        with self._lock:
            self._pending[live.key] = live

    def stream_started(self, live: LiveStream, app_config: dict[str, Any]) -> None:
        try:
            self._start(live, app_config)
        finally:
            self._settled(live)

    def _settled(self, live: LiveStream) -> None:
        """``live`` no longer waits to start here: find_soon's waiters look again."""
        with self._lock:
            if self._pending.get(live.key) is live:
                del self._pending[live.key]
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._changed.wake)

    def _start(self, live: LiveStream, app_config: dict[str, Any]) -> None:
        section = hls_config(app_config)
        if section is None or live.ended_reason is not None:
            return
        settings = settings_from(section)
        for out in live.outputs.values():
            stream = HlsStream(out, settings, self._dvr_store(live, out.name, settings))
            if not stream.segmenters:
                log.info("hls stream not published stream=%s reason=no H.264/H.265/AAC track", out.name)
                continue
            with self._lock:
                old = self.streams.pop((live.vhost, live.app, out.name), None)
                self.streams[(live.vhost, live.app, out.name)] = Published(live, stream)
            if old is not None:
                old.stream.detach("replaced")
            stream.attach(out)

    def _dvr_store(self, live: LiveStream, name: str, settings: HlsSettings) -> DvrStore | None:
        """A store of its own per published output: a fresh key, so a restarted stream's new files
        never meet the old ones (which the old store removes)."""
        if not settings.dvr.enabled:
            return None
        if self._loop is None:
            log.warning("hls dvr off stream=%s reason=publisher not attached to a loop", name)
            return None
        key = "hls-" + "".join(secrets.choice(_ALNUM) for _ in range(8))
        return DvrStore(self._loop, stream_directory(settings.dvr.temp_storage_path, live.vhost, live.app, name,
                                                     key))

    def stream_ended(self, live: LiveStream) -> None:
        self._settled(live)
        for out in live.outputs.values():
            key = (live.vhost, live.app, out.name)
            with self._lock:
                found = self.streams.get(key)
                if found is None or found.live is not live:
                    continue
                del self.streams[key]
            found.stream.detach(live.ended_reason or "stream ended")

    def find(self, vhost: str, app: str, name: str) -> Published | None:
        with self._lock:
            return self.streams.get((vhost, app, name))

    def _coming(self, vhost: str, app: str, name: str) -> bool:
        """An input stream of the app has started with output ``name`` (the API lists it) but not reached here."""
        with self._lock:
            return any(key[:2] == (vhost, app) and live.started and name in live.outputs
                       for key, live in self._pending.items())

    async def find_soon(self, vhost: str, app: str, name: str, timeout: float = START_WAIT_SECONDS) -> Published | None:
        """Output ``name``, waiting (at most ``timeout``) while an input stream that has it has started but has not
        reached this publisher yet: the stream actor tells the publishers a moment after the API lists the
        stream's outputs, and a player that asks as soon as it sees them must not get a 404. On the loop."""
        await self._changed.wait_while(
            lambda: self.find(vhost, app, name) is None and self._coming(vhost, app, name), timeout)
        return self.find(vhost, app, name)

    # -- sessions (event loop) --
    def new_session(self, published: Published) -> HlsSession:
        sid = next_free_id(self._next_session, self.sessions)
        self._next_session = sid + 1
        live = published.live
        session = HlsSession(sid, "".join(secrets.choice(_ALNUM) for _ in range(8)), live.vhost, live.app, live.name)
        self.sessions[sid] = session
        self._count(session)
        return session

    def touch(self, session_query: str | None, published: Published) -> HlsSession | None:
        """The session named by ``<id>_<key>`` (counted again if Kiln forgot it); None if absent or malformed."""
        parsed = parse_session(session_query)
        if parsed is None:
            return None
        sid, key = parsed
        session = self.sessions.get(sid)
        if session is None or session.key != key:
            live = published.live
            session = self.sessions[sid] = HlsSession(sid, key, live.vhost, live.app, live.name)
            self._count(session)
        session.last_seen = time.monotonic()
        return session

    def _count(self, session: HlsSession) -> None:
        session.counted += 1
        self.stats.connection(session.vhost, session.app, session.stream, CONNECTION_KIND, +1)

    def reap(self, now: float) -> None:
        limit = now - SESSION_IDLE_SECONDS
        for sid, session in list(self.sessions.items()):
            if session.last_seen < limit:
                del self.sessions[sid]
                if session.counted:
                    self.stats.connection(session.vhost, session.app, session.stream, CONNECTION_KIND,
                                          -session.counted)

    async def _reap_sessions(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            self.reap(time.monotonic())

    def close(self) -> None:
        """Stop reaping sessions (on the event loop)."""
        if self._reaper is not None:
            self._reaper.cancel()

    def detach_all(self, reason: str) -> None:
        """Detach every published stream; waits for their threads, so not on the event loop."""
        with self._lock:
            published = list(self.streams.values())
            self.streams.clear()
        for p in published:
            p.stream.detach(reason)
