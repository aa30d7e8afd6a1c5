"""One RTMP connection on the publish side: handshake, NetConnection/NetStream commands, media.

An ``asyncio.Protocol``: bytes arrive in ``data_received`` and go straight through the sans-IO
handshake, chunk reader and FLV converter to the publish sink, with no per-message task or queue.
The only await is the handler's ``on_publish``; reading pauses while it runs and the messages that
arrived with the ``publish`` command are replayed in order once it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from kiln.events.redact import redact_url
from kiln.media.formats import amf0
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.flv import FlvConverter
from kiln.media.formats.rtmp import messages
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.errors import RtmpProtocolError
from kiln.media.formats.rtmp.handshake import ServerHandshake
from kiln.media.formats.rtmp.messages import RtmpMessage
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.rtmp import commands
from kiln.media.ingest.rtmp.handler import REJECTED, PublishHandler, PublishSink, RtmpPublish, status_code
from kiln.media.ingest.rtmp.names import resolve_publish_name
from kiln.media.ingest.rtmp.pacer import ReadPacer
from kiln.media.model import Packet, Track

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

_VIDEO = messages.VIDEO
_AUDIO = messages.AUDIO
CSID_STREAM = 5          # where NetStream status messages go (any csid works; this is the usual one)
# a paced socket is readable before its tick only past this many bytes (170 ms of a 3 Mbit/s stream): no higher,
# as Linux grows the receive buffer and clamps the window to a mark above a quarter of the default buffer (128 kB)
PACED_LOWAT = 64 << 10
PACED_READ = 64 << 10    # bytes per recv on a tick (a full read is followed by another)
GRACEFUL_CLOSE_S = 2.0   # after a reply that must reach the client, abort if the socket has not closed


@dataclass(frozen=True)
class SessionConfig:
    enhanced_rtmp: bool = False
    handshake_timeout: float = 10.0
    idle_timeout: float = 10.0
    max_message_size: int = 16 << 20
    chunk_size: int = 4096
    ack_window: int = 2_500_000


class RtmpConnection(asyncio.Protocol):
    """Also the :class:`~kiln.media.ingest.rtmp.handler.RtmpSessionHandle` a handler receives."""

    def __init__(self, handler: PublishHandler, config: SessionConfig, loop: asyncio.AbstractEventLoop,
                 on_gone: Callable[[RtmpConnection], None],
                 track_task: Callable[[asyncio.Task[None]], None], pacer: ReadPacer | None = None) -> None:
        self._handler = handler
        self._config = config
        self._loop = loop
        self._on_gone = on_gone
        self._track_task = track_task
        self._transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.bytes_received = 0
        self._handshake = ServerHandshake()
        self._reader = ChunkReader(config.max_message_size)
        self._feed = self._reader.feed
        self._shaken = False                       # the handshake is done
        self._writer = ChunkWriter()
        self._flv = FlvConverter(config.enhanced_rtmp)
        self._app = ""
        self._tc_url = ""
        self._next_stream_id = 1
        self._sink: PublishSink | None = None
        self._request: RtmpPublish | None = None
        self._waiting = False                      # the handler's on_publish is running
        self._backlog: list[RtmpMessage] = []
        self._metadata: dict[str, Any] | None = None
        self._closed = False
        self._close_reason = ""
        self._ack_window = config.ack_window
        self._last_ack = 0
        self._last_data = 0.0                      # loop time at which data was last seen to arrive
        self._bytes_seen = 0                       # bytes_received at the last idle check
        self._timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._media_without_publish = 0
        self._pacer = pacer
        self._paced: socket.socket | None = None  # publishing: our duplicate of the socket, read on the pacer's tick

    # ---- RtmpSessionHandle -------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """Thread-safe: drop the connection; the publish (if any) ends with "closed: <reason>"."""
        try:
            self._loop.call_soon_threadsafe(self._shutdown, f"closed: {reason}")
        except RuntimeError:
            pass  # the loop is gone, and the connection with it

    def shutdown(self, reason: str) -> None:
        """Close now, on the loop thread (the server uses this when it stops)."""
        self._shutdown(reason)

    @property
    def publishing(self) -> bool:
        return self._sink is not None

    @property
    def request(self) -> RtmpPublish | None:
        return self._request

    # ---- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = (str(peer[0]), int(peer[1]))
        self._last_data = self._loop.time()
        self._timer = self._loop.call_later(self._config.handshake_timeout, self._handshake_expired)
        log.debug("rtmp connection opened peer=%s:%d", *self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._shutdown("disconnected")

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        # the idle check sees progress in this count (no clock read per read)
        received_bytes = self.bytes_received = self.bytes_received + len(data)
        try:
            if not self._shaken:
                reply = self._handshake.feed(data)
                if reply:
                    self._transport.write(reply)  # type: ignore[union-attr]
                if not self._handshake.done:
                    return
                self._handshake_complete()
                data = self._handshake.leftover
                if not data:
                    return
            received = self._feed(data)
            if received_bytes - self._last_ack >= self._ack_window:  # acknowledged once per window, not per read
                self._last_ack = received_bytes
                self._send(messages.CSID_CONTROL, messages.ACKNOWLEDGEMENT, messages.u32_payload(received_bytes))
            if not received:  # a read that ends inside a message (publishers often write header and body apart)
                return
            if self._waiting:
                self._backlog.extend(received)
            else:
                self._process(received)
        except (RtmpProtocolError, amf0.AmfError, CodecConfigError) as exc:
            self._shutdown(f"protocol error: {exc}")
        except Exception as exc:  # a bug must cost one connection, never the listener
            log.exception("rtmp session failed peer=%s:%d", *self.peer)
            self._shutdown(f"closed: internal error: {exc}")

    # ---- lifecycle ---------------------------------------------------------------------------
    def _handshake_complete(self) -> None:
        self._shaken = True
        if self._timer is not None:
            self._timer.cancel()
        log.debug("rtmp handshake done peer=%s:%d digest=%s", *self.peer, self._handshake.digest)
        self._schedule_idle_check()

    def _start_pacing(self) -> None:
        """Publishing: join the pacer (kiln.media.ingest.rtmp.pacer), which moves the socket onto its tick while
        many publish, where the platform allows."""
        if self._pacer is None or self._paced is not None or self._transport is None:
            return
        sock = self._transport.get_extra_info("socket")
        if sock is None or not hasattr(socket, "SO_RCVLOWAT"):
            return
        try:  # a duplicate descriptor: it can never name another connection's socket after the transport closes
            paced = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        except (OSError, ValueError):
            return
        try:
            paced.setblocking(False)
        except OSError:
            paced.close()
            return
        self._paced = paced
        self._pacer.add(id(self), self._poll, self._pace)

    def _pace(self, on: bool) -> None:
        """The pacer's switch: on, the socket is readable early only past :data:`PACED_LOWAT` and read on the
        tick; off, it is read on arrival again. What already waits in the kernel is read at once after a switch
        off (the transport and :meth:`_poll` read the same buffer on this thread, so nothing is reordered)."""
        paced = self._paced
        if paced is None or self._closed:
            return
        try:
            paced.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, PACED_LOWAT if on else 1)
        except OSError:
            return  # still read on readiness (and on the tick while on): slower or sooner, never lost
        if not on:
            self._loop.call_soon(self._poll)

    def _stop_pacing(self) -> None:
        paced, self._paced = self._paced, None
        if paced is None:
            return
        if self._pacer is not None:
            self._pacer.remove(id(self))
        if not self._closed:
            try:  # commands after an unpublish are read on readiness
                paced.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            except OSError:
                pass
        paced.close()

    def _poll(self) -> None:
        """The pacer's tick (and once after a switch off): whatever arrived since the last one. EOF and errors
        are left to the transport (the socket is readable for those at any low-water mark), so the connection
        ends the usual way.

        A read that ends inside a message is tried once more at once: a publisher that writes header and body
        apart with Nagle's algorithm on (ffmpeg) sends the body only when the header is ACKed, which reading
        it just did; on a near link the body is already here, and waiting for the next tick would double the
        added latency (bench: 20 ms tick, p50 31 ms without this retry)."""
        recv = self._paced.recv if self._paced is not None else None
        retried = False
        while recv is not None and not self._closed:
            try:
                data = recv(PACED_READ)
            except OSError:  # BlockingIOError: nothing yet; any other error reaches the transport too
                return
            if not data:
                return
            self.data_received(data)
            if self._paced is None:
                return
            if len(data) < PACED_READ:
                if retried or not self._reader.mid_message:
                    return
                retried = True

    def _handshake_expired(self) -> None:
        self._timer = None
        if not self._handshake.done:
            self._shutdown("closed: handshake timeout")

    def _schedule_idle_check(self) -> None:
        interval = max(0.05, min(1.0, self._config.idle_timeout / 4))
        self._timer = self._loop.call_later(interval, self._check_idle)

    def _check_idle(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self._loop.time()
        if self._waiting or self.bytes_received != self._bytes_seen:
            # data came since the last check, or reading is paused on purpose while the handler decides
            self._bytes_seen = self.bytes_received
            self._last_data = now
        elif now - self._last_data > self._config.idle_timeout:
            self._shutdown("timeout")
            return
        self._schedule_idle_check()

    def _shutdown(self, reason: str, graceful: bool = False) -> None:
        """Close once: end the publish with ``reason``, log one line, drop the socket."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        self._stop_pacing()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._end_publish(reason)
        level = logging.WARNING if reason.startswith("protocol error") else logging.INFO
        log.log(level, "rtmp connection closed peer=%s:%d app=%s reason=%s bytes_received=%d",
                self.peer[0], self.peer[1], self._app, reason, self.bytes_received)
        transport = self._transport
        if transport is not None:
            if graceful:
                transport.close()  # flush the last reply first
                self._abort_timer = self._loop.call_later(GRACEFUL_CLOSE_S, transport.abort)
            else:
                transport.abort()
        self._on_gone(self)

    def _end_publish(self, reason: str) -> None:
        sink = self._sink
        if sink is None:
            return
        self._sink = None
        self._stop_pacing()
        self._flv = FlvConverter(self._config.enhanced_rtmp)
        request = self._request
        if request is not None:
            log.info("rtmp publish ended app=%s stream=%s peer=%s:%d reason=%s", request.app, request.stream,
                     self.peer[0], self.peer[1], reason)
        try:
            sink.on_close(reason)
        except Exception:
            log.exception("rtmp sink on_close failed peer=%s:%d", *self.peer)

    # ---- messages ----------------------------------------------------------------------------
    def _send(self, csid: int, type_id: int, payload: bytes, stream_id: int = 0) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(self._writer.write(csid, type_id, 0, stream_id, payload))

    def _process(self, received: list[RtmpMessage]) -> None:
        sink = self._sink
        for index, msg in enumerate(received):
            if self._closed:
                return
            kind = msg.type_id
            if sink is not None and kind in (_VIDEO, _AUDIO):
                # the media path, inline: one converter call and one sink call per message
                flv = self._flv
                result = (flv.convert_video if kind == _VIDEO else flv.convert_audio)(msg.timestamp, msg.payload)
                if result is not None:
                    if type(result) is Packet:
                        sink.on_packet(result)
                    else:
                        sink.on_track(cast(Track, result))
                continue
            self._dispatch(msg)
            if self._waiting:  # a publish went to the handler: keep the rest for after its answer
                self._backlog = received[index + 1:] + self._backlog
                return
            sink = self._sink  # a command may have ended the publish

    def _dispatch(self, msg: RtmpMessage) -> None:
        kind = msg.type_id
        if kind in (_VIDEO, _AUDIO):  # the media path first
            sink = self._sink
            if sink is None:
                self._media_without_publish += 1
                if self._media_without_publish == 1:
                    log.info("rtmp media before publish ignored peer=%s:%d", *self.peer)
                return
            flv = self._flv
            result = (flv.convert_video if kind == _VIDEO else flv.convert_audio)(msg.timestamp, msg.payload)
            if result is None:
                return
            if type(result) is Packet:
                sink.on_packet(result)
            else:
                sink.on_track(cast(Track, result))
        elif kind == messages.COMMAND_AMF0:
            self._command(msg.payload, msg.stream_id)
        elif kind == messages.DATA_AMF0:
            self._data(msg.payload)
        elif kind in (messages.COMMAND_AMF3, messages.DATA_AMF3):
            # AMF3 command/data messages start with a format byte; their values are AMF0 in practice
            body = msg.payload[1:] if msg.payload[:1] == b"\x00" else msg.payload
            if kind == messages.COMMAND_AMF3:
                self._command(body, msg.stream_id)
            else:
                self._data(body)
        elif kind == messages.AGGREGATE:
            for sub in messages.split_aggregate(msg):
                self._dispatch(sub)
        elif kind == messages.USER_CONTROL:
            self._user_control(msg.payload)
        elif kind == messages.WINDOW_ACK_SIZE:
            window = messages.parse_u32(msg.payload, "Window Acknowledgement Size")
            if window > 0:
                self._ack_window = window
        # Acknowledgement, Set Peer Bandwidth and shared objects need nothing from a publish server

    def _user_control(self, payload: bytes | bytearray) -> None:
        if len(payload) < 2:
            raise RtmpProtocolError("User Control message shorter than 2 bytes")
        event = int.from_bytes(payload[:2], "big")
        if event == messages.UC_PING_REQUEST and len(payload) >= 6:
            self._send(messages.CSID_CONTROL, messages.USER_CONTROL,
                       messages.user_control_payload(messages.UC_PING_RESPONSE,
                                                     int.from_bytes(payload[2:6], "big")))

    def _data(self, payload: bytes | bytearray) -> None:
        values = amf0.decode_all(payload)
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            meta = _plain(values[1])
            if self._sink is not None:
                self._sink.on_metadata(meta)
            else:
                self._metadata = meta
        else:
            log.debug("rtmp data message ignored peer=%s:%d name=%s", *self.peer, values[0] if values else "")

    # ---- commands ----------------------------------------------------------------------------
    def _command(self, payload: bytes | bytearray, stream_id: int) -> None:
        values = amf0.decode_all(payload)
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command message without a command name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        obj = values[2] if len(values) > 2 else None
        args = values[3:]
        if name == "connect":
            self._connect(txn, obj)
        elif name == "createStream":
            stream = self._next_stream_id
            self._next_stream_id += 1
            self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0, commands.result(txn, float(stream)))
        elif name == "publish":
            self._publish(args, stream_id)
        elif name == "releaseStream":
            if txn:
                self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0, commands.result(txn))
        elif name == "FCPublish":
            stream_name = args[0] if args and isinstance(args[0], str) else ""
            self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0, commands.on_fc_publish(stream_name))
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            self._end_publish("unpublished")
        elif name in ("play", "play2"):
            # a player would otherwise wait for media until its own timeout: say no and hang up
            self._send(CSID_STREAM, messages.COMMAND_AMF0,
                       commands.on_status("error", "NetStream.Play.Failed", "this server accepts publishing only"),
                       stream_id)
            self._shutdown("closed: play is not supported", graceful=True)
        elif name in ("_result", "_error", "onStatus", "_checkbw", "getStreamLength", "onBWDone"):
            log.debug("rtmp command ignored peer=%s:%d name=%s", *self.peer, name)
        else:
            log.info("rtmp command not supported peer=%s:%d name=%s", *self.peer, name)
            if txn:
                self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0,
                           commands.error(txn, "NetConnection.Call.Failed", f"{name} is not supported"))

    def _connect(self, txn: float, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise RtmpProtocolError("connect without a command object")
        app, tc_url = obj.get("app"), obj.get("tcUrl")
        self._app = app if isinstance(app, str) else ""
        self._tc_url = tc_url if isinstance(tc_url, str) else ""
        encoding = obj.get("objectEncoding")
        encoding = encoding if isinstance(encoding, float) else 0.0
        enhanced = self._config.enhanced_rtmp and any(
            key in obj for key in ("fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap"))
        cfg = self._config
        self._send(messages.CSID_CONTROL, messages.WINDOW_ACK_SIZE, messages.u32_payload(cfg.ack_window))
        self._send(messages.CSID_CONTROL, messages.SET_PEER_BANDWIDTH,
                   messages.set_peer_bandwidth_payload(cfg.ack_window))
        self._send(messages.CSID_CONTROL, messages.SET_CHUNK_SIZE, messages.u32_payload(cfg.chunk_size))
        self._writer.set_chunk_size(cfg.chunk_size)
        self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0, commands.connect_result(txn, encoding, enhanced))
        flash_ver = obj.get("flashVer") or obj.get("flashver") or ""
        log.info("rtmp connect peer=%s:%d app=%s tc_url=%s client=%s", self.peer[0], self.peer[1],
                 redact_url(self._app), redact_url(self._tc_url), flash_ver)

    def _publish(self, args: list[Any], stream_id: int) -> None:
        if self._sink is not None:
            self._send(CSID_STREAM, messages.COMMAND_AMF0,
                       commands.on_status("error", "NetStream.Publish.BadName", "already publishing"), stream_id)
            return
        publish_name = args[0] if args and isinstance(args[0], str) else ""
        name = resolve_publish_name(self._app, self._tc_url, publish_name)
        request = RtmpPublish(app=name.app, stream=name.stream, query=name.query, tc_url=self._tc_url,
                                 host=name.host, peer=self.peer, session=self)
        log.info("rtmp publish requested app=%s stream=%s peer=%s:%d", name.app, name.stream, *self.peer)
        self._waiting = True
        if self._transport is not None:
            self._transport.pause_reading()
        task = self._loop.create_task(self._await_publish(request, stream_id))
        self._track_task(task)

    async def _await_publish(self, request: RtmpPublish, stream_id: int) -> None:
        try:
            sink = await self._handler.on_publish(request)
        except PublishRejected as exc:
            self._reject(request, stream_id, status_code(exc), exc.reason)
            return
        except Exception as exc:
            log.exception("rtmp publish handler failed app=%s stream=%s", request.app, request.stream)
            self._reject(request, stream_id, REJECTED, f"internal error: {exc}")
            return
        self._waiting = False
        if self._closed:  # the client left while the handler decided: the stream still gets its end
            log.info("rtmp publish ended app=%s stream=%s peer=%s:%d reason=%s", request.app, request.stream,
                     self.peer[0], self.peer[1], self._close_reason)
            try:
                sink.on_close(self._close_reason)
            except Exception:
                log.exception("rtmp sink on_close failed peer=%s:%d", *self.peer)
            return
        self._sink = sink
        self._request = request
        self._send(messages.CSID_CONTROL, messages.USER_CONTROL,
                   messages.user_control_payload(messages.UC_STREAM_BEGIN, stream_id))
        self._send(CSID_STREAM, messages.COMMAND_AMF0,
                   commands.on_status("status", "NetStream.Publish.Start", f"{request.stream} is now published",
                                      details=request.stream), stream_id)
        log.info("rtmp publish started app=%s stream=%s peer=%s:%d", request.app, request.stream, *self.peer)
        if self._metadata is not None:
            meta, self._metadata = self._metadata, None
            sink.on_metadata(meta)
        self._resume()

    def _reject(self, request: RtmpPublish, stream_id: int, code: str, reason: str) -> None:
        self._waiting = False
        log.info("rtmp publish rejected app=%s stream=%s peer=%s:%d reason=%s", request.app, request.stream,
                 self.peer[0], self.peer[1], reason)
        if self._closed:
            return
        self._send(CSID_STREAM, messages.COMMAND_AMF0, commands.on_status("error", code, reason), stream_id)
        self._shutdown(f"closed: publish rejected: {reason}", graceful=True)

    def _resume(self) -> None:
        """Replay what arrived with the publish command, then read again."""
        try:
            backlog, self._backlog = self._backlog, []
            self._process(backlog)
        except (RtmpProtocolError, amf0.AmfError, CodecConfigError) as exc:
            self._shutdown(f"protocol error: {exc}")
            return
        except Exception as exc:
            log.exception("rtmp session failed peer=%s:%d", *self.peer)
            self._shutdown(f"closed: internal error: {exc}")
            return
        if not self._waiting and not self._closed and self._transport is not None:
            self._last_data = self._loop.time()
            self._transport.resume_reading()
            if self._sink is not None:
                self._start_pacing()


def _plain(value: Any, depth: int = 0) -> Any:
    """AMF containers as plain dicts/lists (onMetaData goes to code that expects JSON-like data);
    AMF references can build cycles, so nesting is cut at the decoder's own depth limit."""
    if depth > amf0.MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    if value is amf0.UNDEFINED or value is amf0.UNSUPPORTED:
        return None
    if isinstance(value, amf0.AmfDate):
        return value.millis
    if isinstance(value, amf0.TypedObject):
        return _plain(value.fields, depth + 1)
    return value
