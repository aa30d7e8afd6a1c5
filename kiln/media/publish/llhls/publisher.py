"""The LL-HLS publisher: which output streams are published, and the players' sessions.

Thread-safe entry points (``stream_started``/``stream_ended``) hop onto the event loop, where
every LlhlsStream lives. Sessions follow OME's rules for the ``llhls`` connection count: a player
session is created by a master request, counted once per served master, and expires after a
period without requests.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kiln.config.values import as_float, is_true, publisher_section
from kiln.media.publish.llhls.dump import HlsDump
from kiln.media.publish.llhls.dvr import dvr_settings
from kiln.media.publish.llhls.stream import LlhlsSettings, LlhlsStream
from kiln.media.publish.session_query import next_free_id, parse_session
from kiln.media.publish.waiters import ChangeWaiters
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

SESSION_IDLE_SECONDS = 30.0
# how long a lookup waits for a stream that exists but has not reached this publisher yet: the stream actor
# tells the publishers a moment after the API lists the stream's outputs (two actor hops and a loop hop)
START_WAIT_SECONDS = 5.0
_ALNUM = string.ascii_letters + string.digits



def llhls_config(app_config: dict[str, Any]) -> dict[str, Any] | None:
    return publisher_section(app_config, "llhls")


def settings_from(section: dict[str, Any]) -> LlhlsSettings:
    return LlhlsSettings(
        chunk_duration=max(0.1, as_float(section.get("chunkDuration"), 0.5)),
        part_hold_back=as_float(section.get("partHoldBack"), 0.0),
        segment_duration=max(0.5, as_float(section.get("segmentDuration"), 10.0)),
        segment_count=max(3, int(as_float(section.get("segmentCount"), 5))),
        preload_hint=is_true(section.get("enablePreloadHint", True)),
        create_default_playlist=is_true(section.get("createDefaultPlaylist", True)),
        origin_mode=is_true(section.get("originMode", False)),
        server_time_numbering=is_true(section.get("serverTimeBasedSegmentNumbering", False)),
        dvr=dvr_settings(section.get("dvr")),
    )




def cors_urls(section: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, str]]:
    cd = section.get("crossDomains")
    if not isinstance(cd, dict):
        return (), {}
    urls = cd.get("urls") if "urls" in cd else cd.get("url")
    urls = [urls] if isinstance(urls, str) else (urls or [])
    headers: dict[str, str] = {}
    raw = cd.get("headers") or cd.get("header") or []
    for h in raw if isinstance(raw, list) else [raw]:
        if isinstance(h, dict) and h.get("key"):
            headers[str(h["key"])] = str(h.get("value", ""))
    return tuple(str(u) for u in urls), headers


@dataclass
class PlayerSession:
    id: int
    key: str
    vhost: str
    app: str
    stream: str          # the input stream the stats belong to
    counted: int = 0
    last_seen: float = field(default_factory=time.monotonic)


class LlhlsPublisher:
    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self.loop: asyncio.AbstractEventLoop | None = None
        self.streams: dict[tuple[str, str, str], LlhlsStream] = {}
        self.pending: set[tuple[str, str, str]] = set()  # input streams that exist but have not started
        self.sessions: dict[int, PlayerSession] = {}
        self._next_session = 1
        self._reaper: asyncio.Task[None] | None = None
        self._changed = ChangeWaiters()  # find_soon's and until_started's, woken when pending or streams change
        self._early_lock = threading.Lock()  # guards loop and _early while attach may be running
        self._early: list[tuple[Any, tuple[Any, ...]]] = []  # lifecycle calls made before attach, in order

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: from now on the publisher works there; what it was told before (the actor tree starts
        resumed pulls and scheduled channels before the service attaches it) is done first, in order."""
        with self._early_lock:
            self.loop = loop
            early, self._early = self._early, []
        self._reaper = loop.create_task(self._reap_sessions())
        for fn, args in early:
            fn(*args)

    def _call(self, fn: Any, *args: Any) -> None:
        with self._early_lock:
            loop = self.loop
            if loop is None:
                self._early.append((fn, args))
                return
        loop.call_soon_threadsafe(fn, *args)

    # -- lifecycle (any thread) --
    def stream_created(self, live: LiveStream) -> None:
        self._call(self.pending.add, live.key)

    def stream_started(self, live: LiveStream, app_config: dict[str, Any]) -> None:
        section = llhls_config(app_config)
        if section is None:  # this app publishes no LL-HLS: nothing of it is coming
            self._call(self._not_published, live)
            return
        self._call(self._start, live, settings_from(section))

    def stream_ended(self, live: LiveStream) -> None:
        self._call(self._end, live)

    # -- loop side --
    def _not_published(self, live: LiveStream) -> None:
        self.pending.discard(live.key)
        self._changed.wake()

    def _start(self, live: LiveStream, settings: LlhlsSettings) -> None:
        assert self.loop is not None
        self.pending.discard(live.key)
        self._changed.wake()
        if live.ended_reason is not None:
            return
        for out in live.outputs.values():
            key = (live.vhost, live.app, out.name)
            old = self.streams.pop(key, None)
            if old is not None:
                old.end("replaced")
            stream = self.streams[key] = LlhlsStream(self.loop, live, out, settings)
            log.info("llhls stream published vhost=%s app=%s stream=%s tracks=%d", live.vhost, live.app,
                     out.name, len(stream.packagers))

    def _end(self, live: LiveStream) -> None:
        self.pending.discard(live.key)
        self._changed.wake()
        for out in live.outputs.values():
            key = (live.vhost, live.app, out.name)
            found = self.streams.get(key)
            if found is not None and found.live is live:
                found.end(live.ended_reason or "stream ended")
                del self.streams[key]
                for dump in list(found.dumps):
                    dump.finish()
                found.release()

    def start_dump(self, stream: LlhlsStream, dump_id: str, output_path: str, playlists: list[str],
                   info_file: str, user_data: str) -> HlsDump:
        """Start (or queue until the stream is ready) a dump; runs on the event loop."""
        live = stream.live
        dump = HlsDump(stream, dump_id=dump_id, output_path=output_path, playlists=playlists, info_file=info_file,
                       user_data=user_data, stream_label=f"/{live.vhost}/{live.app}/{stream.output.name}")
        stream.dumps.append(dump)
        if stream.ready:
            dump.start()
        else:
            self.loop.create_task(self._start_when_ready(stream, dump))  # type: ignore[union-attr]
        log.info("hls dump started id=%s stream=%s path=%s", dump_id, stream.output.name, output_path)
        return dump

    async def _start_when_ready(self, stream: LlhlsStream, dump: HlsDump) -> None:
        while not stream.ready and not stream.ended and dump.enabled:
            await stream.wait_change(5.0)
        if stream.ready and dump.enabled:
            dump.start()

    def find(self, vhost: str, app: str, name: str) -> LlhlsStream | None:
        return self.streams.get((vhost, app, name))

    async def find_soon(self, vhost: str, app: str, name: str, input_name: str,
                        timeout: float = START_WAIT_SECONDS) -> LlhlsStream | None:
        """Output ``name`` of input ``input_name``, waiting (at most ``timeout``) while that input exists but
        has not started here yet: the API lists a stream's outputs a moment before its actor tells the
        publishers, and OME takes a dump for a stream that has just appeared."""
        found = self.find(vhost, app, name)
        if found is None:
            await self.until_started(vhost, app, input_name, timeout)
            found = self.find(vhost, app, name)
        return found

    async def until_started(self, vhost: str, app: str, input_name: str, timeout: float = START_WAIT_SECONDS) -> None:
        """Return once input stream ``input_name`` is no longer waiting to start here (its LL-HLS outputs are
        published, its app publishes none, or it ended), or after ``timeout``; at once for a stream that is not
        waiting. Runs on the loop."""
        await self._changed.wait_while(lambda: (vhost, app, input_name) in self.pending, timeout)

    # -- sessions --
    def new_session(self, stream: LlhlsStream) -> PlayerSession:
        sid = next_free_id(self._next_session, self.sessions)
        self._next_session = sid + 1
        live = stream.live
        session = PlayerSession(sid, "".join(secrets.choice(_ALNUM) for _ in range(8)), live.vhost, live.app,
                                live.name)
        self.sessions[sid] = session
        return session

    def touch(self, session_query: str, stream: LlhlsStream) -> PlayerSession | None:
        """The session named by ``<id>_<key>``; created when unknown (no access control), None if malformed."""
        parsed = parse_session(session_query)
        if parsed is None:
            return None
        sid, key = parsed
        session = self.sessions.get(sid)
        if session is None or session.key != key:
            live = stream.live
            session = PlayerSession(sid, key, live.vhost, live.app, live.name)
            self.sessions[sid] = session
        session.last_seen = time.monotonic()
        if session.counted == 0:
            self.count(session)
        return session

    def count(self, session: PlayerSession) -> None:
        session.counted += 1
        self.stats.connection(session.vhost, session.app, session.stream, "llhls", +1)

    async def _reap_sessions(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            limit = time.monotonic() - SESSION_IDLE_SECONDS
            for sid, session in list(self.sessions.items()):
                if session.last_seen < limit:
                    del self.sessions[sid]
                    if session.counted:
                        self.stats.connection(session.vhost, session.app, session.stream, "llhls",
                                              -session.counted)

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for stream in list(self.streams.values()):
            stream.end("server shutdown")
            if stream.dvr is not None:
                stream.dvr.close()
        self.streams.clear()
