"""The WebRTC publisher: viewers' sessions, one feed per output stream, the counters they move.

A viewer names ``/app/stream[/playlist]``; the app must list ``<Publishers><WebRTC>`` (OME serves
a publisher only where the app enables it) and the output stream must exist. Admission
(SignedPolicy, AdmissionWebhooks, protocol ``WEBRTC``) is asked before an offer is made. A session
counts one ``webrtc`` connection from the moment the player's SDP is accepted until it ends
(OME's +1/−1 rules), and its bytes are added to the stream's counters once a second. A stream that
is not here (``request_offer`` and WHEP POST alike) is first pulled through the vhost's Origins /
OriginMapStore, and the offer waits for it (bounded), as LL-HLS and thumbnails do.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from kiln.admission.closing import notify_closed
from kiln.admission.contract import AdmissionRequest, Admitter, Direction
from kiln.config.values import as_float, is_true
from kiln.events.redact import redact_url
from kiln.media.model import Track
from kiln.media.origins.on_demand import OnDemand, pull_and_wait, wait_ready
from kiln.media.publish.webrtc.choose import Choice, NotPlayable, Rendition, choose, video_warning
from kiln.media.publish.webrtc.feed import Feed
from kiln.media.publish.webrtc.session import ViewerSession
from kiln.media.rtc.turn.plan import TurnOffer
from kiln.media.rtc.udp_mux import PortPool
from kiln.media.stream.live import LiveStream, OutputStream

log = logging.getLogger(__name__)

CONNECTION_KIND = "webrtc"
DEFAULT_TIMEOUT_S = 30.0
REPORT_EVERY_S = 1.0
LEASE_EXPIRED = "admission expired"


class OutputFinder(Protocol):
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None: ...

    def pending(self, vhost: str, app: str, output_name: str) -> bool: ...


class PlaybackStats(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


class SessionLog(Protocol):
    """Where sessions opening and closing are kept (the journal, see audit.py): who watched what, how long."""

    def opened(self, vhost: str, app: str, stream: str, session: str, client: str, playlist: str, rendition: str,
               tracks: str) -> None: ...

    def closed(self, vhost: str, app: str, stream: str, session: str, client: str, reason: str, bytes_out: int,
               seconds: float) -> None: ...


class PlayRefused(Exception):
    """A viewer Kiln will not serve: ``code`` and ``text`` go back to it (signalling error, WHEP status)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Target:
    vhost: str
    app: str
    stream: str            # the output stream's name (what the URL names)
    playlist: str | None
    client: tuple[str, int]
    url: str               # as admission signs it


def webrtc_section(app_config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The app's ``Publishers/WebRTC`` (an empty element counts), or None when the app does not enable it."""
    publishers = app_config.get("publishers") if isinstance(app_config, Mapping) else None
    if not isinstance(publishers, dict) or "webrtc" not in publishers:
        return None
    section = publishers.get("webrtc")
    return section if isinstance(section, dict) else {}


def session_timeout(app_config: Mapping[str, Any] | None) -> float:
    """``Publishers/WebRTC/Timeout`` (ms, OME's default 30000) in seconds: OME's ICE timeout. A session
    that answers no consent check this long ends; so does one not connected this long after its offer,
    and a signalling socket that asks for no offer."""
    section = webrtc_section(app_config) or {}
    return as_float(section.get("timeout"), DEFAULT_TIMEOUT_S * 1000) / 1000 or DEFAULT_TIMEOUT_S


def bframes_of(output: OutputStream) -> Any:
    def has_bframes(track: Track) -> bool:
        meter = output.meters.get(track.id)
        return bool(meter is not None and meter.has_bframes)
    return has_bframes


class WebRtcPublisher:
    def __init__(self, streams: OutputFinder, stats: PlaybackStats, pool: PortPool | None,
                 admission: Admitter | None = None, journal: SessionLog | None = None,
                 origins: OnDemand | None = None) -> None:
        self.streams = streams
        self.origins = origins
        self.stats = stats
        self.pool = pool
        self.turn = TurnOffer((), False)  # the TURN server offers name (TcpRelay), set at start when configured
        self.admission = admission
        self.journal = journal
        self._ids = itertools.count(1)
        self.sessions: dict[int, ViewerSession] = {}
        self._keys: dict[int, tuple[str, str, str]] = {}      # session -> (vhost, app, input stream) for stats
        self._targets: dict[int, Target] = {}
        self._counted: set[int] = set()
        self._admitted: dict[int, AdmissionRequest] = {}
        self.feeds: dict[tuple[str, str, str], Feed] = {}
        self._reporter: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._reporter = loop.create_task(self._report())

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await session.close("server shutdown")
        if self._reporter is not None:
            self._reporter.cancel()
            self._reporter = None

    # -- a viewer arrives --
    def choice(self, target: Target, app_config: Mapping[str, Any] | None) -> tuple[LiveStream, OutputStream, Choice]:
        """What the viewer would play, or PlayRefused (404 as OME: 'Cannot create offer' plus why)."""
        if webrtc_section(app_config) is None:
            raise PlayRefused(404, f"WebRTC is not enabled for this application [{target.vhost}/{target.app}]")
        found = self.streams.find_output(target.vhost, target.app, target.stream)
        if found is None:
            raise PlayRefused(404, f"no stream [{target.vhost}/{target.app}/{target.stream}]")
        live, output = found
        assert isinstance(output, OutputStream)
        warning = video_warning(output.track_list(), bframes_of(output), live.bypassed)
        if warning is None:
            output.warnings.pop(CONNECTION_KIND, None)
        else:  # the stream's JSON shows it (lastWarning) beside this log line and the viewer's error
            output.warnings[CONNECTION_KIND] = warning
        try:
            picked = choose(output.track_list(), output.playlists(), target.playlist, bframes_of(output),
                            create_default=is_true((webrtc_section(app_config) or {}).get("createDefaultPlaylist",
                                                                                           True)),
                            as_it_comes=live.bypassed)
        except NotPlayable as exc:
            log.warning("webrtc not playable vhost=%s app=%s stream=%s playlist=%s reason=%s", target.vhost,
                        target.app, target.stream, target.playlist, exc)
            raise PlayRefused(406, str(exc)) from None
        first = picked.renditions[0]
        for why in picked.left_out:  # worth an INFO line only when the viewer gets no track of that kind
            missing = (first.video is None and why.startswith("video")) or (first.audio is None and
                                                                             why.startswith("audio"))
            log.log(logging.INFO if missing else logging.DEBUG, "webrtc track left out vhost=%s app=%s stream=%s "
                    "reason=%s", target.vhost, target.app, target.stream, why)
        return live, output, picked

    async def _arrive(self, target: Target) -> None:
        """A viewer asking for a stream that is not playable yet: when its publisher is connecting (the stream is
        here, its first tracks are not), wait for them; when it is not here, pull it on demand and wait. A player
        that connects as the publisher does is served, not refused (OME refuses it with 'Cannot create offer')."""
        def with_tracks() -> tuple[LiveStream, Any] | None:
            found = self.streams.find_output(target.vhost, target.app, target.stream)
            return found if found is not None and found[1].track_list() else None

        if self.streams.pending(target.vhost, target.app, target.stream):
            await wait_ready(with_tracks)
            return
        await pull_and_wait(self.origins, target.vhost, target.app, target.stream, urlsplit(target.url).query,
                            with_tracks)

    async def admit(self, target: Target, request_id: int) -> float | None:
        """Ask admission (PlayRefused 401 when refused); the seconds the session may last (None: no limit)."""
        if self.admission is None:
            return None
        asked = AdmissionRequest("WEBRTC", Direction.OUTGOING, target.url, target.client, target.vhost, target.app,
                                 target.stream)
        verdict = await self.admission.admit(asked)
        if not verdict.allowed:
            log.info("webrtc playback denied vhost=%s app=%s stream=%s peer=%s:%d rule=%s reason=%s", target.vhost,
                     target.app, target.stream, target.client[0], target.client[1], verdict.rule, verdict.reason)
            raise PlayRefused(401, f"access denied: {verdict.reason}")
        if verdict.new_url:
            log.warning("webrtc playback redirect not applied vhost=%s app=%s stream=%s new_url=%s", target.vhost,
                        target.app, target.stream, redact_url(verdict.new_url))
        self._admitted[request_id] = asked
        return verdict.seconds_left(int(time.time() * 1000))

    async def open(self, target: Target, app_config: Mapping[str, Any] | None,
                   rendition: Rendition | None = None) -> tuple[ViewerSession, Choice]:
        """A new session (not yet negotiated) for ``target``; PlayRefused says why not."""
        assert self.loop is not None, "start() first"
        ident = next(self._ids)
        if webrtc_section(app_config) is not None and self.streams.find_output(target.vhost, target.app,
                                                                               target.stream) is None:
            lease = await self.admit(target, ident)  # a refused viewer never starts a pull
            try:
                await self._arrive(target)
                live, output, picked = self.choice(target, app_config)
            except BaseException:  # not played after all (no origin has it, or the player left): admission hears it
                asked = self._admitted.pop(ident, None)
                if self.admission is not None and asked is not None:
                    notify_closed(self.admission, asked, self.loop)
                raise
        else:
            live, output, picked = self.choice(target, app_config)
            lease = await self.admit(target, ident)
        key = (target.vhost, target.app, output.name)
        feed = self.feeds.get(key)
        if feed is None or feed.ended is not None or feed.output is not output:
            feed = self.feeds[key] = Feed(output, self.loop, self._feed_ended)
            feed.start()
        timeout = session_timeout(app_config)
        label = f"{target.vhost}/{target.app}/{target.stream}@{target.client[0]}:{target.client[1]}"
        session = ViewerSession(ident, label, feed, rendition or picked.renditions[0], self.pool, timeout,
                                self._closed)
        self.sessions[ident] = session
        self._keys[ident] = (target.vhost, target.app, live.name)
        self._targets[ident] = target
        if lease is not None:  # stream_expire, a webhook's lifetime: the session is cut when it passes
            timer = self.loop.call_later(max(0.0, lease), self._expire, session)
            session.ended_callbacks.append(timer.cancel)
        return session, picked

    def _expire(self, session: ViewerSession) -> None:
        if session.closed_reason is None and self.loop is not None:
            log.info("webrtc playback lease expired session=%s id=%d", session.label, session.id)
            self.loop.create_task(session.close(LEASE_EXPIRED))

    def negotiated(self, session: ViewerSession) -> None:
        """The player's SDP is accepted: one webrtc connection (OME counts here, before ICE completes)."""
        key, target = self._keys.get(session.id), self._targets.get(session.id)
        if key is None or target is None or session.id in self._counted or session.closed_reason is not None:
            return
        self._counted.add(session.id)
        self.stats.connection(*key, CONNECTION_KIND, +1)
        tracks = ",".join(f"{t.id}:{t.codec.value}" for t in session.rendition.tracks)
        log.info("webrtc session opened session=%s id=%d rendition=%s tracks=%s", session.label, session.id,
                 session.rendition.name, tracks)
        if self.journal is not None:
            self.journal.opened(target.vhost, target.app, target.stream, str(session.id),
                                f"{target.client[0]}:{target.client[1]}", target.playlist or "",
                                session.rendition.name, tracks)

    def _closed(self, session: ViewerSession, reason: str) -> None:
        key = self._keys.pop(session.id, None)
        target = self._targets.pop(session.id, None)
        self.sessions.pop(session.id, None)
        asked = self._admitted.pop(session.id, None)
        n = session.counters.unreported
        if key is not None and n:
            self.stats.bytes_out(*key, n)
            session.counters.reported += n
        if self.admission is not None and asked is not None and self.loop is not None:
            notify_closed(self.admission, asked, self.loop)
        if session.id not in self._counted:
            log.debug("webrtc offer abandoned session=%s id=%d reason=%s open_sessions=%d udp_routes=%d",
                      session.label, session.id, reason, len(self.sessions),
                      self.pool.sessions if self.pool is not None else 0)
        if session.id in self._counted:
            self._counted.discard(session.id)
            if key is not None:
                self.stats.connection(*key, CONNECTION_KIND, -1)
            seconds = time.monotonic() - session.created
            c = session.counters
            log.info("webrtc session closed session=%s id=%d reason=%s bytes=%d seconds=%.1f resyncs=%d "
                     "first_rtp_ms_p50=%.2f first_rtp_ms_p99=%.2f resent=%d keyframe_requests=%d", session.label,
                     session.id, reason, c.bytes_out, seconds, session.skips, c.percentile(0.5), c.percentile(0.99),
                     c.resent, c.keyframe_requests)
            if self.journal is not None and target is not None:
                self.journal.closed(target.vhost, target.app, target.stream, str(session.id),
                                    f"{target.client[0]}:{target.client[1]}", reason, c.bytes_out, round(seconds, 3))
        feed = session.feed
        if not feed.members and feed.ended is None:
            feed.close("no viewer left")  # its hub subscription goes; _feed_ended forgets it

    def _feed_ended(self, feed: Feed, reason: str) -> None:
        """The output's hub closed (the stream ended) or the last viewer left: end its sessions."""
        for key, known in list(self.feeds.items()):
            if known is feed:
                del self.feeds[key]
        for session in list(self.sessions.values()):
            if session.feed is feed and session.closed_reason is None and self.loop is not None:
                self.loop.create_task(session.close(reason))

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            for ident, session in list(self.sessions.items()):
                key = self._keys.get(ident)
                n = session.counters.unreported
                if key is not None and n:
                    session.counters.reported += n
                    self.stats.bytes_out(*key, n)

    def counts(self) -> dict[str, int]:
        return {"sessions": len(self.sessions), "feeds": len(self.feeds),
                "udp_routes": self.pool.sessions if self.pool is not None else 0}

