"""The SRT playback publisher: one libsrt listener on Bind/Publishers/SRT, one session per caller.

Callers are vetted in the SRT handshake from memory, so a refused player sees "connection rejected"
with a code and Kiln logs why: the streamid grammar, the vhost (host routing), the app's
``<Publishers><SRT/>``, the output stream (stream registry) and the playlist. The passphrase is
the port's (``Bind/Publishers/SRT/Options`` ``SRTO_PASSPHRASE``, as in OME): libsrt refuses a
caller whose passphrase differs in the handshake. Each accepted caller counts one ``srt``
connection from its connection (or, pulled on demand, from its stream's arrival) until it leaves.

Pull on demand (media spec §4.1), as OME's SRT publisher: on a server with Origins / OriginMapStore, a caller
for a stream that is not here, of an app that publishes SRT, is accepted; its session thread asks admission
(a refused caller starts no pull), then the vhost's origins pull the stream on the loop while that thread waits,
bounded (``PULL_WAIT_S`` for the pull, then ``READY_WAIT_S`` for its tracks), and the caller is served once the
output has tracks. A caller whose stream never comes is closed, and the reason logged, as OME closes it
("Could not find stream"). libsrt's thread only looks things up in memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from kiln.admission.contract import AdmissionRequest, Admitter, Direction
from kiln.media.ingest.contract import VhostRouter
from kiln.media.model import Track
from kiln.media.net.srt.errors import RejectCode, SrtRejected
from kiln.media.net.srt.listener import SrtListener, SrtReceiver
from kiln.media.net.srt.socket import SrtSocket
from kiln.media.net.srt.streamid import SrtTarget
from kiln.media.origins.map_store import store_config
from kiln.media.origins.on_demand import READY_WAIT_S, OnDemand, pull_and_wait, wait_ready
from kiln.media.origins.puller import PULL_WAIT_S
from kiln.media.origins.rules import resolve
from kiln.media.publish.srt.admission import CallerAdmission
from kiln.media.publish.srt.session import SessionHooks, SrtPlaySession
from kiln.media.publish.srt.target import NotPlayable, parse_playback_streamid, playback_tracks
from kiln.media.stream.live import LiveStream, OutputStream

log = logging.getLogger(__name__)

CONNECTION_KIND = "srt"
ARRIVAL_SLACK_S = 5.0  # pull_and_wait bounds itself (PULL_WAIT_S + READY_WAIT_S); this only bounds a wedged loop
ARRIVAL_POLL_S = 0.25  # how soon a waiting session notices its caller left


Found = tuple[LiveStream, Any]  # an input stream and the output a caller plays


class AppConfigs(Protocol):
    """What the handshake reads to decide whether a missing stream may be pulled (memory only)."""

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None: ...

    def vhost_config(self, vhost: str) -> dict[str, Any] | None: ...


class OutputFinder(Protocol):
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None: ...

    def pending(self, vhost: str, app: str, output_name: str) -> bool:
        """A stream that will have this output is here but not started yet."""


class PlaybackStats(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


def srt_enabled(app_config: Mapping[str, Any]) -> bool:
    """OME plays an app over SRT only when its Publishers list ``<SRT/>``."""
    publishers = app_config.get("publishers")
    return isinstance(publishers, dict) and "srt" in publishers


class SrtPlayback:
    def __init__(self, router: VhostRouter, streams: OutputFinder, stats: PlaybackStats, *, host: str, port: int,
                 options: Mapping[str, str] | None = None, admission: Admitter | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, origins: OnDemand | None = None,
                 apps: AppConfigs | None = None) -> None:
        """``admission`` (asked on ``loop``, both or neither) vets each caller before it is served; ``origins``
        (run on ``loop``; ``apps`` says which apps exist and publish SRT) pulls a stream that is not here."""
        if (admission is None) != (loop is None) and (admission is not None or origins is None):
            raise ValueError("SrtPlayback needs both admission and its loop, or neither")
        if origins is not None and (loop is None or apps is None):
            raise ValueError("SrtPlayback pulls on demand on its loop and needs the app configs")
        self.router = router
        self.admission = admission
        self.loop = loop
        self.origins = origins
        self.apps = apps
        self.streams = streams
        self.stats = stats
        self.listener = SrtListener(host, port, on_accept=self._on_accept, options=options,
                                    on_connected=self._on_connected)
        self._enabled: set[tuple[str, str, str]] = set()  # input streams whose app has <Publishers><SRT/>
        # accepted caller -> (vhost, app, input stream); None until a stream pulled on demand arrives
        self._keys: dict[SrtPlaySession, tuple[str, str, str] | None] = {}
        self._counted: set[SrtPlaySession] = set()  # connected callers, each one srt connection
        self._admissions: dict[SrtPlaySession, CallerAdmission] = {}  # accepted caller -> its admission
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.listener.port

    def start(self) -> None:
        self.listener.start()

    def close(self) -> None:
        """Blocking: refuse new callers, close every connection, join the session threads."""
        with self._lock:
            sessions = list(self._keys)
        self.listener.close()
        for session in sessions:
            session.detach("server shutdown")

    # -- stream lifecycle (any thread) ----------------------------------------------------------------
    def stream_created(self, stream: LiveStream, app_config: Mapping[str, Any]) -> None:
        """The app's flag is known before the stream starts: the API lists a started stream's outputs a moment
        before its actor hands it to the publishers, and a caller in that moment was refused as if the app did
        not publish SRT."""
        self.stream_started(stream, app_config)

    def stream_started(self, stream: LiveStream, app_config: Mapping[str, Any]) -> None:
        with self._lock:
            if srt_enabled(app_config):
                self._enabled.add(stream.key)
            else:
                self._enabled.discard(stream.key)

    def stream_ended(self, stream: LiveStream) -> None:
        """Sessions end by themselves when the output's hub closes; only the app flag is forgotten."""
        with self._lock:
            self._enabled.discard(stream.key)

    # -- handshake (libsrt's receive thread: memory lookups only) -------------------------------------
    def _on_accept(self, streamid: str, peer: tuple[str, int]) -> SrtPlaySession:
        target = parse_playback_streamid(streamid, self.listener.port)
        vhost = self.router.vhost_for_host(target.host, allow_vhost_name=True)
        if vhost is None:
            raise SrtRejected(RejectCode.NOT_FOUND, f"no virtual host matches host {target.host!r}")
        label = f"{vhost}/{target.app}/{target.stream}" + (f"/{target.playlist}" if target.playlist else "") + \
            f"@{peer[0]}:{peer[1]}"
        found = self.streams.find_output(vhost, target.app, target.stream)
        key: tuple[str, str, str] | None = None
        if found is None:
            self._pullable(vhost, target)
            hooks = SessionHooks(on_bytes=lambda n: self._bytes_out(session, n), disconnect=self._disconnect,
                                 closed=self._closed, admit=self._admit,
                                 arrive=lambda s: self._arrive(s, vhost, target))
            session = SrtPlaySession(label, None, [], hooks)
        else:
            live, output = found
            chosen = self._playable(live, output, vhost, target.app, target.playlist)
            key = (vhost, target.app, live.name)  # metrics count an output's connections on its input stream
            counted = key
            hooks = SessionHooks(on_bytes=lambda n: self.stats.bytes_out(*counted, n), disconnect=self._disconnect,
                                 closed=self._closed, admit=self._admit)
            session = SrtPlaySession(label, output, chosen, hooks)
        with self._lock:
            self._keys[session] = key
            if self.admission is not None and self.loop is not None:
                # SignedPolicy signs srt://<streamid host>/<app>/<stream>[/<playlist>]?<query> (spec §5)
                asked = AdmissionRequest("SRT", Direction.OUTGOING, target.url, peer, vhost, target.app,
                                         target.stream)
                self._admissions[session] = CallerAdmission(self.admission, self.loop, asked,
                                                            lambda reason: session.detach(reason))
        return session

    def _pullable(self, vhost: str, target: SrtTarget) -> None:
        """A stream that is not here is pulled only when the vhost can pull it (an Origins rule matches, or it has
        an OriginMapStore) and its app exists and publishes SRT (OME: 'Could not find vhost/app'), so that no
        caller pulls a stream it could not play; else the handshake refuses it as before."""
        app, stream = target.app, target.stream
        missing = SrtRejected(RejectCode.NOT_FOUND, f"no stream {stream!r} in application {vhost}/{app}")
        if self.origins is None or self.apps is None:
            raise missing
        vhost_config = self.apps.vhost_config(vhost) or {}
        if resolve(vhost_config.get("origins"), app, stream, target.query) is None and \
                store_config(vhost_config) is None:
            raise missing
        app_config = self.apps.app_config(vhost, app)
        if app_config is None:
            raise missing
        if not srt_enabled(app_config):
            raise SrtRejected(RejectCode.FORBIDDEN, f"SRT publisher is not enabled in application {vhost}/{app}")

    def _playable(self, live: LiveStream, output: Any, vhost: str, app: str, playlist: str | None) -> list[Track]:
        """The tracks a caller of this output gets; SrtRejected when the app does not publish SRT or the output
        has nothing the caller asked for."""
        with self._lock:
            enabled = live.key in self._enabled
        if not enabled:
            raise SrtRejected(RejectCode.FORBIDDEN, f"SRT publisher is not enabled in application {vhost}/{app}")
        assert isinstance(output, OutputStream)
        try:
            return playback_tracks(output.track_list(), output.playlists(), playlist).tracks
        except NotPlayable as exc:
            raise SrtRejected(RejectCode.NOT_FOUND, str(exc)) from None

    def _bytes_out(self, session: SrtPlaySession, n: int) -> None:
        """A caller whose stream was pulled: its key is set (under the lock) before its first byte is sent."""
        key = self._keys.get(session)
        if key is not None:
            self.stats.bytes_out(*key, n)

    # -- session thread: pull on demand -------------------------------------------------------------------
    def _arrive(self, session: SrtPlaySession, vhost: str, target: SrtTarget) -> str | None:
        """Blocking (the session's thread, after admission): pull the caller's stream on the loop and wait,
        bounded, until its output has tracks; then serve it (None), else why the caller is closed."""
        loop, app, stream = self.loop, target.app, target.stream
        assert loop is not None
        log.info("srt playback pulling on demand session=%s", session.label)

        def ready() -> Found | None:
            found = self.streams.find_output(vhost, app, stream)
            if found is None or not found[1].track_list():
                return None
            with self._lock:
                started = found[0].key in self._enabled
            return found if started else None

        # here already (it may have started since the handshake) or its publisher is connecting here: wait, do
        # not pull (checking only "connecting" pulled a stream that had just started)
        if self.streams.find_output(vhost, app, stream) is not None or self.streams.pending(vhost, app, stream):
            arrival = wait_ready(ready)
        else:
            arrival = pull_and_wait(self.origins, vhost, app, stream, target.query, ready)
        try:
            pulled = asyncio.run_coroutine_threadsafe(arrival, loop)
        except RuntimeError:  # the loop is closed: the server is stopping
            arrival.close()
            return "server shutdown"
        found = self._wait_arrival(session, pulled)
        if session.leaving:
            return "caller left"
        if found is None:
            reason = f"could not find stream {stream!r} in application {vhost}/{app}: no origin gave it"
            log.info("srt playback pull on demand failed session=%s reason=%s", session.label, reason)
            return reason
        live, output = found
        try:
            tracks = self._playable(live, output, vhost, app, target.playlist)
        except SrtRejected as exc:
            log.info("srt playback pulled stream not playable session=%s reason=%s", session.label, exc.reason)
            return exc.reason
        key = (vhost, app, live.name)
        session.bind(output, tracks)
        with self._lock:
            if session not in self._keys:  # the listener let go of the caller while the stream arrived
                return "caller left"
            self._keys[session] = key
            self._counted.add(session)
        self.stats.connection(*key, CONNECTION_KIND, +1)
        log.info("srt playback started session=%s tracks=%s pulled=true", session.label,
                 ",".join(f"{t.id}:{t.codec.value}" for t in tracks))
        return None

    @staticmethod
    def _wait_arrival(session: SrtPlaySession, pulled: concurrent.futures.Future[Found | None]) -> Found | None:
        """The pull's answer; None (the pull cancelled) once the caller leaves or the loop does not answer."""
        deadline = time.monotonic() + PULL_WAIT_S + READY_WAIT_S + ARRIVAL_SLACK_S
        while True:
            try:
                return pulled.result(timeout=ARRIVAL_POLL_S)
            except concurrent.futures.TimeoutError:
                if session.leaving or time.monotonic() >= deadline:
                    pulled.cancel()  # the shared pull itself goes on for others (OriginPuller shields it)
                    return None
            except (concurrent.futures.CancelledError, Exception) as exc:  # the loop stopped, a failing lookup
                log.warning("srt playback pull on demand failed session=%s reason=%s", session.label,
                            type(exc).__name__)
                return None

    # -- listener thread --------------------------------------------------------------------------------
    def _on_connected(self, receiver: SrtReceiver, sock: SrtSocket) -> None:
        assert isinstance(receiver, SrtPlaySession)
        with self._lock:
            if receiver not in self._keys:
                return
            key = self._keys[receiver]
            if key is not None:
                self._counted.add(receiver)
        if key is None:  # its stream is not here: the session pulls it, counts and logs once it arrives
            log.info("srt playback connected, stream not here session=%s", receiver.label)
            receiver.connected(sock)
            receiver.attach(None)
            return
        self.stats.connection(*key, CONNECTION_KIND, +1)
        log.info("srt playback started session=%s tracks=%s", receiver.label,
                 ",".join(f"{t.id}:{t.codec.value}" for t in receiver.tracks))
        receiver.connected(sock)
        receiver.attach(receiver.output)

    # -- session thread --------------------------------------------------------------------------------
    def _admit(self, session: SrtPlaySession) -> str | None:
        """Before the first byte is sent: None to serve the caller, else why it is dropped."""
        with self._lock:
            admission = self._admissions.get(session)
        return None if admission is None else admission.ask()

    def _closed(self, session: SrtPlaySession) -> None:
        """The listener let go of the caller (exactly once per accepted caller)."""
        with self._lock:
            key = self._keys.pop(session, None)
            counted = session in self._counted
            self._counted.discard(session)
            admission = self._admissions.pop(session, None)
        if admission is not None:
            admission.ended()
        if key is not None and counted:
            self.stats.connection(*key, CONNECTION_KIND, -1)

    def _disconnect(self, session: SrtPlaySession, reason: str) -> None:
        self.listener.disconnect(session, reason)
