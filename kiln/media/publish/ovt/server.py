"""The OVT publisher: Bind/Publishers/OVT/Port, where edges (Kiln or OME) pull output streams.

One TCP connection per pulled stream (media spec §3): the edge asks ``describe`` (every track and
playlist of the output stream), then ``play``; from then on each packet of the output's hub goes
out as one OVT media unit, until the stream ends (the connection is closed) or the edge says
``stop`` or goes away. A playing connection counts one ``ovt`` connection in the stream's stats.

Packets are encoded on the ingest thread (a hub callback, cheap) and written on the loop; a
connection whose unsent bytes pass ``MAX_PENDING`` is a slow edge and is closed, so a stalled edge
never holds memory or slows the origin. Garbage on the port is a logged, closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from kiln.media.formats import ovt
from kiln.media.ingest.contract import VhostRouter
from kiln.media.model import MediaKind, Packet
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream, OutputStream

log = logging.getLogger(__name__)

CONNECTION_KIND = "ovt"
FIRST_REQUEST_TIMEOUT_S = 10.0  # a connection that says nothing is closed (a scanner, a wrong port)
DESCRIBE_WAIT_S = 3.0           # OME: a stream that exists but has not started within 3 s answers 202
MAX_PENDING = 8 << 20           # unsent bytes per edge before it is a slow consumer
_sessions = itertools.count(1)


class OutputFinder(Protocol):
    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None: ...

    def get(self, vhost: str, app: str, name: str) -> LiveStream | None: ...


class ChainedPull(Protocol):
    """Pull on demand (``kiln.media.origins.OriginPuller``), for a describe of a stream not here."""

    def busy(self, vhost: str, app: str, stream: str) -> bool: ...

    async def pull(self, vhost: str, app: str, stream: str, query: str = "", map_store: bool = True) -> bool: ...


class RelayStats(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


def ovt_enabled(app_config: Mapping[str, Any]) -> bool:
    """OME relays an app over OVT only when its Publishers list ``<OVT/>``."""
    publishers = app_config.get("publishers")
    return isinstance(publishers, dict) and "ovt" in publishers


@dataclass(frozen=True)
class Target:
    host: str
    app: str
    stream: str
    query: str = ""


def parse_target(target: str) -> Target:
    """``ovt://host:port/app/stream[?query]`` → where the stream is; OvtError when it is not that."""
    parts = urlsplit(target)
    path = [p for p in parts.path.split("/") if p]
    if parts.scheme.lower() != "ovt" or len(path) != 2:
        raise ovt.OvtError(f"target {target!r} is not ovt://host:port/app/stream")
    return Target(parts.hostname or "", path[0], path[1], parts.query)


class _Session:
    """One edge connection; ``relay`` is set while it plays."""

    def __init__(self, peer: str, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.id = next(_sessions)
        self.peer = peer
        self.writer = writer
        self.loop = loop
        self.relay: CallbackSubscriber | None = None
        self.key: tuple[str, str, str] | None = None
        self.pending = 0  # bytes handed to the loop but not yet written (producer +, loop -)
        self.sent = 0
        self.closed_reason: str | None = None
        self.slow = False


class OvtPublisher:
    def __init__(self, router: VhostRouter, streams: OutputFinder, stats: RelayStats, *, host: str, port: int,
                 origins: ChainedPull | None = None) -> None:
        self.router = router
        self.origins = origins
        self.streams = streams
        self.stats = stats
        self.host = host
        self.requested_port = port
        self.server: asyncio.Server | None = None
        self._enabled: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._sessions: set[_Session] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.requested_port, limit=1 << 16)
        log.info("ovt listening address=%s:%d", self.host, self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for session in list(self._sessions):
            self._end(session, "server shutdown")
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None

    # -- stream lifecycle (any thread) -------------------------------------------------------------
    def stream_started(self, stream: LiveStream, app_config: Mapping[str, Any]) -> None:
        with self._lock:
            (self._enabled.add if ovt_enabled(app_config) else self._enabled.discard)(stream.key)

    def stream_ended(self, stream: LiveStream) -> None:
        """Relays end by themselves when the output's hub closes; only the app flag is forgotten."""
        with self._lock:
            self._enabled.discard(stream.key)

    # -- connection ----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername") or ("?", 0)
        session = _Session(f"{peer_info[0]}:{peer_info[1]}", writer, asyncio.get_running_loop())
        self._sessions.add(session)
        reassembler = ovt.Reassembler()
        reason = "edge closed the connection"
        try:
            while session.closed_reason is None:
                timeout = None if session.relay is not None or session.key is not None else FIRST_REQUEST_TIMEOUT_S
                head = await asyncio.wait_for(reader.readexactly(ovt.HEADER_SIZE), timeout)
                header = ovt.parse_header(head)
                payload = await reader.readexactly(header.length)
                unit = reassembler.feed(header, payload)
                if unit is None:
                    continue
                if header.payload_type != ovt.TYPE_REQUEST:
                    raise ovt.OvtError(f"an edge sent payload type {header.payload_type}, not a request")
                if not await self._request(session, unit):
                    reason = "edge sent stop"
                    break
        except ovt.OvtError as exc:
            reason = f"protocol error: {exc}"
            log.warning("ovt connection refused peer=%s reason=%s", session.peer, exc)
        except TimeoutError:
            reason = f"no request within {FIRST_REQUEST_TIMEOUT_S:.0f}s"
            log.warning("ovt connection closed peer=%s reason=%s", session.peer, reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the server is closing: the handler ends quietly, not as an error
            reason = "server shutdown"
        finally:
            self._end(session, session.closed_reason or reason)

    async def _request(self, session: _Session, unit: bytes) -> bool:
        """Answer one request; False once the edge said stop."""
        try:
            req = ovt.parse_request(unit)
        except ovt.OvtError as exc:  # OME answers a bad request 404 and keeps the connection
            self._respond(session, ovt.Response(0, "", 404, str(exc)))
            return True
        if req.application == "stop":
            self._respond(session, ovt.Response(req.id, req.application, 200, "OK"))
            return False
        if req.application not in ("describe", "play"):
            self._respond(session, ovt.Response(req.id, req.application, 404, "Unknown application"))
            return True
        try:
            target = parse_target(req.target)
        except ovt.OvtError as exc:
            self._respond(session, ovt.Response(req.id, req.application, 404, str(exc)))
            return True
        found = await self._wait_for_output(target)
        if isinstance(found[0], int):
            code, why = found
            log.info("ovt %s refused peer=%s target=%s code=%d reason=%s", req.application, session.peer,
                     req.target, code, why)
            self._respond(session, ovt.Response(req.id, req.application, int(code), str(why)))
            return True
        vhost, live, output = found
        if req.application == "describe":
            self._respond(session, ovt.Response(req.id, "describe", 200, "OK", self._describe(vhost, live, output)))
        elif session.relay is None:
            self._respond(session, ovt.Response(req.id, "play", 200, "OK", {"sessionId": session.id}))
            self._play(session, (vhost, live.app, live.name), output)
        else:
            self._respond(session, ovt.Response(req.id, "play", 409, "already playing"))
        return True

    async def _wait_for_output(self, target: Target) -> tuple[str, LiveStream, OutputStream] | tuple[int, str]:
        """The output to relay, or (code, why): 404 at once for a stream that is not here, 202 for one
        that exists but has not started within ``DESCRIBE_WAIT_S`` (OME's codes)."""
        vhost = self.router.vhost_for_host(target.host)
        if vhost is None:
            return 404, f"no virtual host matches host {target.host!r}"
        where = f"{vhost}/{target.app}/{target.stream}"
        missing = f"Could not find the stream: [{where}]"
        if self.origins is not None and self.streams.find_output(vhost, target.app, target.stream) is None \
                and self.streams.get(vhost, target.app, target.stream) is None:
            # OME chains relays: a describe of a stream not here runs this server's own Origins (never
            # its OriginMapStore). One this server is pulling on demand already is a loop.
            if self.origins.busy(vhost, target.app, target.stream):
                return 404, f"pull loop: {where} is being pulled by this server"
            if not await self.origins.pull(vhost, target.app, target.stream, target.query, map_store=False):
                return 404, missing
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DESCRIBE_WAIT_S
        while True:
            found = self.streams.find_output(vhost, target.app, target.stream)
            if found is not None:
                live, output = found
                with self._lock:
                    enabled = live.key in self._enabled
                if enabled:
                    assert isinstance(output, OutputStream)
                    return vhost, live, output
            elif self.streams.get(vhost, target.app, target.stream) is None:
                return 404, missing
            if loop.time() >= deadline:
                if found is not None:
                    return 404, f"OVT publisher is not enabled in application {vhost}/{target.app}"
                return 202, f"the stream has not started yet: [{where}]"
            await asyncio.sleep(0.1)

    @staticmethod
    def _describe(vhost: str, live: LiveStream, output: OutputStream) -> dict[str, Any]:
        tracks = []
        for ot in output.tracks:
            track = ot.track
            if track is None or ot.image or track.kind not in (MediaKind.VIDEO, MediaKind.AUDIO) \
                    or track.codec not in ovt.RELAYED:
                continue
            meter = output.meters.get(ot.id)
            bitrate = int(meter.bitrate_avg) if meter is not None else 0
            framerate = float(meter.framerate_avg) if meter is not None else 0.0
            tracks.append(ovt.track_json(track, bitrate, framerate))
        playlists = [ovt.playlist_json(p) for p in output.playlists()]
        return ovt.describe_contents(vhost, live.app, output.name, live.instance, tracks, playlists)

    def _respond(self, session: _Session, resp: ovt.Response) -> None:
        wire, _ = ovt.packetize(ovt.TYPE_RESPONSE, ovt.encode_response(resp), timestamp=0)
        if not session.writer.is_closing():
            session.writer.write(wire)

    # -- relay -----------------------------------------------------------------------------------------
    def _play(self, session: _Session, key: tuple[str, str, str], output: OutputStream) -> None:
        encoders: dict[int, ovt.WireEncoder] = {}
        sequence = 0
        hub = output.hub

        def on_packet(packet: Packet) -> None:  # the ingest thread
            nonlocal sequence
            encoder = encoders.get(packet.track_id)
            if encoder is None or packet.config is not None:
                track = hub.tracks.get(packet.track_id)
                if track is None or track.kind not in (MediaKind.VIDEO, MediaKind.AUDIO) \
                        or track.codec not in ovt.RELAYED:
                    return
                encoder = encoders[packet.track_id] = ovt.WireEncoder(track)
            wire, sequence = ovt.packetize(ovt.TYPE_MEDIA, ovt.encode_media(encoder.unit(packet)),
                                           sequence=sequence, timestamp=packet.pts, session_id=session.id)
            if session.pending > MAX_PENDING:
                if not session.slow:
                    session.slow = True
                    with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
                        session.loop.call_soon_threadsafe(self._end, session, "slow edge")
                return
            session.pending += len(wire)
            try:
                session.loop.call_soon_threadsafe(self._send, session, wire)
            except RuntimeError:  # the loop is closed: the server is shutting down
                session.pending -= len(wire)

        def on_end(reason: str) -> None:  # the stream ended (hub closed) or the subscriber was dropped
            try:
                session.loop.call_soon_threadsafe(self._end, session, f"stream ended ({reason})")
            except RuntimeError:  # the loop is closed: the server is gone already
                pass

        session.key = key
        session.relay = CallbackSubscriber(f"ovt-{session.peer}", on_packet, on_end)
        self.stats.connection(*key, CONNECTION_KIND, +1)
        log.info("ovt relay started peer=%s stream=%s output=%s session=%d", session.peer, "/".join(key),
                 output.name, session.id)
        hub.subscribe(session.relay, from_keyframe=True)

    def _send(self, session: _Session, wire: bytes) -> None:
        session.pending -= len(wire)
        if session.closed_reason is not None or session.writer.is_closing():
            return
        session.writer.write(wire)
        session.sent += len(wire)
        if session.key is not None:
            self.stats.bytes_out(*session.key, len(wire))
        if session.writer.transport.get_write_buffer_size() > MAX_PENDING:
            log.warning("ovt edge too slow peer=%s unsent=%d", session.peer,
                        session.writer.transport.get_write_buffer_size())
            self._end(session, "slow edge")

    def _end(self, session: _Session, reason: str) -> None:
        """Close the connection and release the relay (loop thread; idempotent)."""
        if session.closed_reason is None:
            session.closed_reason = reason
        if session not in self._sessions:
            return
        self._sessions.discard(session)
        relay = session.relay
        if relay is not None:
            relay.on_end = None
            relay.close()
            if session.key is not None:
                self.stats.connection(*session.key, CONNECTION_KIND, -1)
            log.info("ovt relay ended peer=%s stream=%s reason=%s bytes=%d", session.peer, "/".join(session.key or ()),
                     reason, session.sent)
        if not session.writer.is_closing():
            session.writer.close()

