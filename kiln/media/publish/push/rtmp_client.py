"""RTMP(S) publishing client: the FLV bytes of PyAV's muxer go out as RTMP messages on a Python socket.

FFmpeg's own ``rtmp://`` output is opened by PyAV's ``avio_open`` with the GIL held and no I/O
timeout, so a destination that accepts and never answers froze the whole process. Here each phase
is bounded: TCP connect, handshake and the publish commands by the connection timeout, each send by
the send timeout; a refusal (``_error``, a failed ``onStatus``, a closed connection) is a
:class:`PushError` that says which step the destination refused.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kiln.media.formats import amf0
from kiln.media.formats.rtmp import messages
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.errors import RtmpProtocolError
from kiln.media.publish.push.net import PushError, resolve, tcp_socket

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}
CHUNK_SIZE = 4096
HANDSHAKE_SIZE = 1536
FLASH_VER = "FMLE/3.0 (compatible; Kiln)"
CSID_FOR_TYPE = {messages.AUDIO: 4, messages.DATA_AMF0: 5, messages.VIDEO: 6}
_T0 = time.monotonic()


@dataclass(frozen=True)
class RtmpTarget:
    scheme: str
    host: str
    port: int
    app: str
    stream: str
    tc_url: str


def parse_target(destination: str) -> RtmpTarget:
    """Split ``rtmp://host[:port]/app[/more]/key`` as FFmpeg does: the last path part is the stream."""
    parts = urlsplit(destination)
    scheme = parts.scheme.lower()
    if not parts.hostname:
        raise PushError(f"no host in {destination}")
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 1935)
    except ValueError as exc:
        raise PushError(f"bad port in {destination}") from exc
    path = parts.path.lstrip("/")
    app, _, stream = path.rpartition("/") if "/" in path else (path, "", "")
    if parts.query:
        stream += "?" + parts.query
    if not app:
        raise PushError(f"no application in {destination}")
    if not stream:
        raise PushError(f"no stream key in {destination}")
    netloc = parts.netloc.rpartition("@")[2]
    return RtmpTarget(scheme, parts.hostname, port, app, stream, f"{scheme}://{netloc}/{app}")


class RtmpPublisher:
    """One publishing connection. ``send_flv`` takes FLV bytes in any slicing; not thread-safe except
    for ``abort`` (which another thread may call to unblock a send)."""

    def __init__(self, sock: socket.socket, target: RtmpTarget, send_timeout_ms: int) -> None:
        self.sock = sock
        self.target = target
        self.send_timeout_ms = send_timeout_ms
        self.reader = ChunkReader()
        self.writer = ChunkWriter()
        self.stream_id = 0
        self.bytes_sent = 0
        self._ack_window = 0
        self._acked = 0

    @classmethod
    def connect(cls, destination: str, connect_timeout_ms: int, send_timeout_ms: int,
                opened: Callable[[socket.socket], None] | None = None) -> RtmpPublisher:
        """Connect, shake hands and publish, within ``connect_timeout_ms``. ``opened`` is handed the socket before
        it connects (and again once TLS wraps it), so that another thread can abort the set-up (``shutdown``); it
        may raise to give up at once."""
        target = parse_target(destination)
        family, kind, proto, _, addr = resolve(target.host, target.port, socket.SOCK_STREAM)
        deadline = time.monotonic() + connect_timeout_ms / 1000
        sock = tcp_socket(family, kind, proto)
        try:
            if opened is not None:
                opened(sock)
            sock.settimeout(connect_timeout_ms / 1000)
            try:
                sock.connect(addr)
                if target.scheme == "rtmps":
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
                    if opened is not None:
                        opened(sock)
            except TimeoutError as exc:
                raise PushError(f"timed out after {connect_timeout_ms} ms connecting to {target.host}") from exc
            publisher = cls(sock, target, send_timeout_ms)
            publisher._handshake(deadline)
            publisher._publish(deadline)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(send_timeout_ms / 1000)
        return publisher

    # -- connection set-up --
    def _recv(self, size: int, deadline: float, step: str) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PushError(f"timed out waiting for the destination to {step}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(size)
        except TimeoutError as exc:
            raise PushError(f"timed out waiting for the destination to {step}") from exc
        if not data:
            raise PushError(f"the destination closed the connection instead of letting it {step}")
        return data

    def _recv_exact(self, size: int, deadline: float, step: str) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            buf += self._recv(size - len(buf), deadline, step)
        return bytes(buf)

    def _handshake(self, deadline: float) -> None:
        step = "complete the RTMP handshake"
        uptime = int((time.monotonic() - _T0) * 1000) & 0xFFFFFFFF
        c1 = struct.pack(">II", uptime, 0) + os.urandom(HANDSHAKE_SIZE - 8)
        self.sock.sendall(b"\x03" + c1)
        s0s1 = self._recv_exact(1 + HANDSHAKE_SIZE, deadline, step)
        if s0s1[0] != 3:
            raise PushError(f"the destination is not an RTMP server (handshake version {s0s1[0]})")
        self.sock.sendall(s0s1[1:])  # C2 echoes S1
        self._recv_exact(HANDSHAKE_SIZE, deadline, step)

    def _publish(self, deadline: float) -> None:
        t = self.target
        self._send(messages.CSID_CONTROL, messages.SET_CHUNK_SIZE, 0, 0, messages.u32_payload(CHUNK_SIZE))
        self.writer.set_chunk_size(CHUNK_SIZE)
        self._command(0, "connect", 1, {"app": t.app, "type": "nonprivate", "flashVer": FLASH_VER, "tcUrl": t.tc_url})
        self._wait_result(1, deadline, f"accept application '{t.app}'")
        self._command(0, "releaseStream", 2, None, t.stream)
        self._command(0, "FCPublish", 3, None, t.stream)
        self._command(0, "createStream", 4, None)
        reply = self._wait_result(4, deadline, "create a stream")
        sid = reply[3] if len(reply) > 3 else None
        self.stream_id = int(sid) if isinstance(sid, int | float) and not isinstance(sid, bool) else 1
        self._command(self.stream_id, "publish", 5, None, t.stream, "live")
        self._wait_publish_start(deadline)

    def _command(self, stream_id: int, *values: Any) -> None:
        self._send(messages.CSID_COMMAND, messages.COMMAND_AMF0, 0, stream_id, amf0.encode(*values))

    def _messages(self, deadline: float, step: str) -> list[messages.RtmpMessage]:
        try:
            return self._handle_control(self.reader.feed(self._recv(65536, deadline, step)))
        except RtmpProtocolError as exc:
            raise PushError(f"the destination sent bad RTMP data: {exc}") from exc

    def _wait_result(self, transaction: int, deadline: float, step: str) -> list[Any]:
        while True:
            for command in self._commands(self._messages(deadline, step)):
                if len(command) > 1 and command[1] == transaction:
                    if command[0] == "_result":
                        return command
                    raise PushError(f"the destination refused to {step}: {_status_text(command)}")
                _raise_on_failed_status(command, step)

    def _wait_publish_start(self, deadline: float) -> None:
        step = f"publish stream '{self.target.stream}' in application '{self.target.app}'"
        while True:
            for command in self._commands(self._messages(deadline, step)):
                if command and command[0] == "_error" and len(command) > 1 and command[1] == 5:
                    raise PushError(f"the destination refused to {step}: {_status_text(command)}")
                info = _info(command)
                if command and command[0] == "onStatus" and info.get("code") == "NetStream.Publish.Start":
                    return
                _raise_on_failed_status(command, step)

    @staticmethod
    def _commands(received: list[messages.RtmpMessage]) -> list[list[Any]]:
        out = []
        for message in received:
            if message.type_id == messages.COMMAND_AMF0:
                try:
                    out.append(amf0.decode_all(message.payload))
                except amf0.AmfError:
                    continue
        return out

    def _handle_control(self, received: list[messages.RtmpMessage]) -> list[messages.RtmpMessage]:
        for message in received:
            if message.type_id == messages.WINDOW_ACK_SIZE and len(message.payload) >= 4:
                self._ack_window = messages.parse_u32(message.payload, "window acknowledgement size")
            elif (message.type_id == messages.USER_CONTROL and len(message.payload) >= 6
                  and struct.unpack_from(">H", message.payload)[0] == messages.UC_PING_REQUEST):
                stamp = struct.unpack_from(">I", message.payload, 2)[0]
                self._send(messages.CSID_CONTROL, messages.USER_CONTROL, 0, 0,
                           messages.user_control_payload(messages.UC_PING_RESPONSE, stamp))
        if self._ack_window and self.reader.bytes_received - self._acked >= self._ack_window:
            self._acked = self.reader.bytes_received
            self._send(messages.CSID_CONTROL, messages.ACKNOWLEDGEMENT, 0, 0, messages.u32_payload(self._acked))
        return received

    # -- media --
    def _send(self, csid: int, type_id: int, timestamp: int, stream_id: int, payload: bytes) -> None:
        self._sendall(self.writer.write(csid, type_id, timestamp, stream_id, payload))

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise PushError(f"timed out after {self.send_timeout_ms} ms sending: the destination stopped reading"
                            ) from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PushError("the destination closed the connection") from exc

    def _poll_incoming(self) -> None:
        """Answer pings and acknowledgements, and notice a destination that closed or failed the stream."""
        while select.select([self.sock], [], [], 0)[0]:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return
            except OSError as exc:
                raise PushError("the destination closed the connection") from exc
            if not data:
                raise PushError("the destination closed the connection")
            try:
                received = self._handle_control(self.reader.feed(data))
            except RtmpProtocolError as exc:
                raise PushError(f"the destination sent bad RTMP data: {exc}") from exc
            for command in self._commands(received):
                _raise_on_failed_status(command, "keep the stream")

    def send_tags(self, tags: list[tuple[int, int, bytes]]) -> None:
        """Send (message type, timestamp ms, body) tags as RTMP messages in one socket write."""
        self._poll_incoming()
        data = b"".join(self.writer.write(CSID_FOR_TYPE[tag_type], tag_type, timestamp, self.stream_id, body)
                        for tag_type, timestamp, body in tags)
        self._sendall(data)
        self.bytes_sent += len(data)

    def abort(self) -> None:
        """Unblock a send in progress (from another thread): the session is being stopped."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Say goodbye politely if the destination still reads, then close."""
        try:
            self.sock.settimeout(0.2)
            self._command(0, "FCUnpublish", 6, None, self.target.stream)
            self._command(0, "deleteStream", 7, None, self.stream_id)
        except (OSError, PushError):
            pass
        finally:
            self.sock.close()


def _info(command: list[Any]) -> dict[str, Any]:
    info = command[3] if len(command) > 3 else None
    return info if isinstance(info, dict) else {}


def _status_text(command: list[Any]) -> str:
    info = _info(command)
    text = " ".join(str(info[k]) for k in ("code", "description") if info.get(k))
    return text or str(command[0])


def _raise_on_failed_status(command: list[Any], step: str) -> None:
    if command and command[0] == "onStatus" and _info(command).get("level") == "error":
        raise PushError(f"the destination refused to {step}: {_status_text(command)}")
