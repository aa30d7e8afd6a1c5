"""The SRT playback publisher: one libsrt listener on Bind/Publishers/SRT, one session per caller.

Callers are vetted in the SRT handshake from memory, so a refused player sees "connection rejected"
with a code and Kiln logs why: the streamid grammar, the vhost (host routing), the app's
``<Publishers><SRT/>``, the output stream (stream registry) and the playlist. The passphrase is
the port's (``Bind/Publishers/SRT/Options`` ``SRTO_PASSPHRASE``, as in OME): libsrt refuses a
caller whose passphrase differs in the handshake. Each accepted caller counts one ``srt``
connection from its connection until it leaves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from kiln.admission.contract import AdmissionRequest, Admitter, Direction
from kiln.media.ingest.contract import VhostRouter
from kiln.media.net.srt.errors import RejectCode, SrtRejected
from kiln.media.net.srt.listener import SrtListener, SrtReceiver
from kiln.media.net.srt.socket import SrtSocket
from kiln.media.publish.srt.admission import CallerAdmission
from kiln.media.publish.srt.session import SessionHooks, SrtPlaySession
from kiln.media.publish.srt.target import NotPlayable, parse_playback_streamid, playback_tracks
from kiln.media.stream.live import LiveStream, OutputStream

log = logging.getLogger(__name__)

CONNECTION_KIND = "srt"


class OutputFinder(Protocol):
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None: ...


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
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        """``admission`` (asked on ``loop``, both or neither) vets each caller before it is served."""
        if (admission is None) != (loop is None):
            raise ValueError("SrtPlayback needs both admission and its loop, or neither")
        self.router = router
        self.admission = admission
        self.loop = loop
        self.streams = streams
        self.stats = stats
        self.listener = SrtListener(host, port, on_accept=self._on_accept, options=options,
                                    on_connected=self._on_connected)
        self._enabled: set[tuple[str, str, str]] = set()  # input streams whose app has <Publishers><SRT/>
        self._keys: dict[SrtPlaySession, tuple[str, str, str]] = {}  # accepted caller -> (vhost, app, input stream)
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
        found = self.streams.find_output(vhost, target.app, target.stream)
        if found is None:
            raise SrtRejected(RejectCode.NOT_FOUND,
                              f"no stream {target.stream!r} in application {vhost}/{target.app}")
        live, output = found
        with self._lock:
            enabled = live.key in self._enabled
        if not enabled:
            raise SrtRejected(RejectCode.FORBIDDEN, f"SRT publisher is not enabled in application {vhost}/{target.app}")
        assert isinstance(output, OutputStream)
        try:
            chosen = playback_tracks(output.track_list(), output.playlists(), target.playlist)
        except NotPlayable as exc:
            raise SrtRejected(RejectCode.NOT_FOUND, str(exc)) from None
        label = f"{vhost}/{target.app}/{target.stream}" + (f"/{target.playlist}" if target.playlist else "") + \
            f"@{peer[0]}:{peer[1]}"
        key = (vhost, target.app, live.name)  # metrics count an output's connections on its input stream
        hooks = SessionHooks(on_bytes=lambda n: self.stats.bytes_out(*key, n), disconnect=self._disconnect,
                             closed=self._closed, admit=self._admit)
        session = SrtPlaySession(label, output, chosen.tracks, hooks)
        with self._lock:
            self._keys[session] = key
            if self.admission is not None and self.loop is not None:
                # SignedPolicy signs srt://<streamid host>/<app>/<stream>[/<playlist>]?<query> (spec §5)
                asked = AdmissionRequest("SRT", Direction.OUTGOING, target.url, peer, vhost, target.app,
                                         target.stream)
                self._admissions[session] = CallerAdmission(self.admission, self.loop, asked,
                                                            lambda reason: session.detach(reason))
        return session

    # -- listener thread --------------------------------------------------------------------------------
    def _on_connected(self, receiver: SrtReceiver, sock: SrtSocket) -> None:
        assert isinstance(receiver, SrtPlaySession)
        with self._lock:
            key = self._keys.get(receiver)
            if key is None:
                return
            self._counted.add(receiver)
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
