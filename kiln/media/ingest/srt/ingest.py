"""SRT ingest: one libsrt listener on Bind/Providers/SRT, one stream per accepted caller.

Callers are vetted in the SRT handshake from memory (streamid grammar, vhost, then the
:class:`PublishScreen`: app, provider enabled, duplicate name), so a refused encoder sees
"connection rejected" with a code. The stream opener has the last word when the stream is opened,
after the first TS bytes were probed; a refusal then drops the connection. The received TS goes
through ``TsDemuxWorker`` (one thread per caller, which probes and opens the stream); the listener
thread only receives. What every caller sent in one listener pass reaches the event loop in one
wake-up (``LoopHandOff``), where the demuxer then runs inline, as RTMP's parsing does: the LL-HLS
packagers get the packets on their own thread and no per-stream wake-up is paid.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from kiln.admission.closing import notify_closed
from kiln.admission.contract import Admission, AdmissionRequest, Admitter, Direction, OpenDoor
from kiln.admission.step import admit_from_thread
from kiln.media.ingest.contract import (
    OpenTimedOut,
    PublishRejected,
    PublishRequest,
    Refusal,
    StreamOpener,
    VhostRouter,
    open_from_thread,
)
from kiln.media.ingest.demux.tsreader import TsDemuxWorker, TsHooks
from kiln.media.model import MediaKind
from kiln.media.net.srt.errors import RejectCode, SrtRejected
from kiln.media.net.srt.listener import SrtListener
from kiln.media.net.srt.streamid import SrtTarget, resolve_streamid
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 30.0  # the control plane answers in milliseconds; this only bounds a wedged shutdown
ADMISSION_TIMEOUT_S = 60.0  # checks bound themselves (a webhook's Timeout); this only bounds a wedged loop
JOIN_TIMEOUT_S = 5.0
HANDOFF_MAX_BYTES = 64 * 1024 * 1024
"""Bytes waiting for the event loop before callers' data is dropped (a wedged loop must not grow memory)."""
HANDSHAKE_CODES = {Refusal.NOT_FOUND: RejectCode.NOT_FOUND, Refusal.FORBIDDEN: RejectCode.FORBIDDEN,
                   Refusal.CONFLICT: RejectCode.CONFLICT}


class PublishScreen(Protocol):
    """The handshake's question to the control plane, answered from memory on libsrt's thread."""

    def screen(self, vhost: str, app: str, stream: str, provider: str) -> None:
        """Return if a publish could be accepted now (app exists, provider enabled, name free);
        else raise PublishRejected with its kind."""


class LoopHandOff:
    """Callers' bytes from the listener thread to the event loop: every put until the loop runs goes in one
    ``call_soon_threadsafe``, in order (a caller's end too, so its last bytes are never cut off)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._batch: list[tuple[TsDemuxWorker, bytes | None, str]] = []
        self._bytes = 0
        self._scheduled = False
        self.dropped_bytes = 0

    def put(self, worker: TsDemuxWorker, data: bytes | None, reason: str = "") -> None:
        """``data`` None: the caller left with ``reason`` (``worker.finish``) after what was put before."""
        with self._lock:
            if data is not None and self._bytes + len(data) > HANDOFF_MAX_BYTES:
                first = not self.dropped_bytes
                self.dropped_bytes += len(data)
                schedule = False
            else:
                first = False
                self._batch.append((worker, data, reason))
                self._bytes += len(data) if data is not None else 0
                schedule, self._scheduled = not self._scheduled, True
        if first:  # once: the loop is wedged or far behind; TsFeed's own overflow warnings say the rest
            log.warning("srt input waits for a busy event loop, bytes dropped input=%s waiting_bytes=%d",
                        worker.label, self._bytes)
        if not schedule:
            return
        try:
            self.loop.call_soon_threadsafe(self.run)
        except RuntimeError:  # the loop is closed (shutdown): hand over here
            self.run()

    def run(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, []
            self._bytes = 0
            self._scheduled = False
        for worker, data, reason in batch:
            if data is None:
                worker.finish(reason)
            else:
                worker.push(data)


class SrtIngest:
    def __init__(self, opener: StreamOpener, router: VhostRouter, screen: PublishScreen,
                 loop: asyncio.AbstractEventLoop, *, host: str, port: int,
                 options: Mapping[str, str] | None = None, stream_map: Mapping[int, str] | None = None,
                 admission: Admitter | None = None) -> None:
        self.opener = opener
        self.admission: Admitter = admission or OpenDoor()
        self.router = router
        self.screen = screen
        self.loop = loop
        self.stream_map = dict(stream_map or {})
        self.listener = SrtListener(host, port, on_accept=self._on_accept, options=options)
        self._sessions: set[SrtSession] = set()
        self._lock = threading.Lock()
        self.handoff = LoopHandOff(loop)

    @property
    def port(self) -> int:
        return self.listener.port

    def start(self) -> None:
        self.listener.start()

    def close(self) -> None:
        """Blocking: drop every caller (their streams end "listener closed") and join the demux threads."""
        self.listener.close()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.abort("server shutdown")
        for session in sessions:
            session.join(JOIN_TIMEOUT_S)

    # -- handshake (libsrt's receive thread: memory lookups only) -----------------------------------
    def _on_accept(self, streamid: str, peer: tuple[str, int]) -> SrtSession:
        target = resolve_streamid(streamid, local_port=self.listener.port, stream_map=self.stream_map)
        vhost = self.router.vhost_for_host(target.host, allow_vhost_name=True)
        if vhost is None:
            raise SrtRejected(RejectCode.NOT_FOUND, f"no virtual host matches host {target.host!r}")
        try:
            self.screen.screen(vhost, target.app, target.stream, "srt")
        except PublishRejected as exc:
            raise SrtRejected(HANDSHAKE_CODES.get(exc.kind, RejectCode.FORBIDDEN), exc.reason) from exc
        session = SrtSession(self, target, vhost, peer)
        with self._lock:
            self._sessions.add(session)
        return session

    def _forget(self, session: SrtSession) -> None:
        with self._lock:
            self._sessions.discard(session)


class SrtSession:
    """One caller: the listener's ``SrtReceiver`` and the demux worker's hooks."""

    def __init__(self, ingest: SrtIngest, target: SrtTarget, vhost: str, peer: tuple[str, int]) -> None:
        self.ingest = ingest
        self.target = target
        self.vhost = vhost
        self.peer = peer
        self.worker: TsDemuxWorker | None = None
        self._closed = False
        self._admitted: AdmissionRequest | None = None  # told admission.closed() when the caller leaves
        self._lease: threading.Timer | None = None

    @property
    def label(self) -> str:
        return f"srt:{self.vhost}/{self.target.app}/{self.target.stream}@{self.peer[0]}:{self.peer[1]}"

    # -- SrtReceiver (listener thread) --------------------------------------------------------------
    def on_data(self, data: bytes) -> None:
        self.on_bytes(data)

    def on_bytes(self, data: bytes) -> None:
        """Every message of one listener pass, concatenated: one chunk for the demux thread (one lock, one wake-up)."""
        worker = self.worker
        if worker is None:
            if self._closed:
                return
            worker = self.worker = TsDemuxWorker(self.label, TsHooks(self._open_stream, self._ended)).start()
        self.ingest.handoff.put(worker, data)

    def on_close(self, reason: str) -> None:
        self._closed = True
        if self.worker is not None:
            self.ingest.handoff.put(self.worker, None, reason)
        else:
            log.info("srt caller left before sending media vhost=%s app=%s stream=%s peer=%s:%d reason=%s",
                     self.vhost, self.target.app, self.target.stream, self.peer[0], self.peer[1], reason)
        self.ingest._forget(self)
        self._end_admission()

    def _end_admission(self) -> None:
        if self._lease is not None:
            self._lease.cancel()
        asked, self._admitted = self._admitted, None
        if asked is not None:
            notify_closed(self.ingest.admission, asked, self.ingest.loop)

    # -- control ------------------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        if self.worker is not None:
            self.worker.abort(reason)

    def join(self, timeout: float) -> None:
        if self.worker is not None:
            self.worker.join(timeout)

    def _close_ingest(self, reason: str) -> None:
        """DELETE stream (or a newer publisher replaced this one): end the stream and drop the caller."""
        if self.worker is not None:
            self.worker.stop(reason)
        self.ingest.listener.disconnect(self, reason)

    # -- worker hooks (demux thread) -----------------------------------------------------------------
    def _admit(self) -> tuple[str, str, str]:
        """Ask admission (SignedPolicy signs ``srt://<streamid host>/<app>/<stream>?query``) on this demux
        thread, so a slow check holds only this caller. Returns the (possibly redirected) vhost/app/stream."""
        t = self.target
        asked = AdmissionRequest("SRT", Direction.INCOMING, t.url, self.peer, self.vhost, t.app, t.stream)
        admission = admit_from_thread(self.ingest.admission, self.ingest.loop, asked, ADMISSION_TIMEOUT_S)
        if not admission.allowed:  # OME closes the connection
            log.info("srt publish denied vhost=%s app=%s stream=%s peer=%s:%d rule=%s reason=%s", self.vhost, t.app,
                     t.stream, self.peer[0], self.peer[1], admission.rule, admission.reason)
            raise PublishRejected(f"access denied: {admission.reason}")
        self._admitted = asked
        self._arm_lease(admission)
        if admission.new_url:
            return self._redirect(admission.new_url)
        return self.vhost, t.app, t.stream

    def _arm_lease(self, admission: Admission) -> None:
        left = admission.seconds_left(int(time.time() * 1000))
        if left is not None:
            self._lease = threading.Timer(left, self._close_ingest, ("admission expired",))
            self._lease.daemon = True
            self._lease.start()

    def _redirect(self, new_url: str) -> tuple[str, str, str]:
        parts = urlsplit(new_url)
        segments = [s for s in parts.path.split("/") if s]
        vhost = self.ingest.router.vhost_for_host(parts.hostname, allow_vhost_name=True) if parts.hostname \
            else self.vhost
        if vhost is None or len(segments) < 2:
            raise PublishRejected(f"admission redirect {new_url!r} names no stream of this server", Refusal.NOT_FOUND)
        return vhost, segments[0], segments[1]

    def _open_stream(self, kinds: set[MediaKind]) -> LiveStream:
        t = self.target
        vhost, app, name = self._admit()
        request = PublishRequest(vhost, app, name, provider="srt", source_type="SRT", source_url=t.url,
                                 close_source=self._close_ingest)
        try:
            stream = open_from_thread(self.ingest.opener, self.ingest.loop, request, OPEN_TIMEOUT_S)
        except OpenTimedOut:
            log.warning("srt publish not answered vhost=%s app=%s stream=%s peer=%s:%d", self.vhost, t.app,
                        t.stream, self.peer[0], self.peer[1])
            raise
        except PublishRejected as exc:
            log.info("srt publish rejected vhost=%s app=%s stream=%s peer=%s:%d reason=%s", self.vhost, t.app,
                     t.stream, self.peer[0], self.peer[1], exc.reason)
            raise
        log.info("srt publish accepted vhost=%s app=%s stream=%s peer=%s:%d tracks=%s", stream.vhost, stream.app,
                 stream.name, self.peer[0], self.peer[1], ",".join(sorted(k.value for k in kinds)))
        return stream

    def _ended(self, reason: str) -> None:
        if not self._closed:
            self.ingest.listener.disconnect(self, reason)
