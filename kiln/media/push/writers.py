"""Muxing selected tracks to a push destination (media-spec §7).

RTMP/RTMPS: FLV through PyAV straight to ``rtmp(s)://…``. MPEG-TS over UDP or TCP and over SRT:
PyAV muxes into a Python sink that owns the socket, so Kiln counts the exact bytes sent, sends
UDP as 1316-byte datagrams (7 TS packets) as soon as each media packet is muxed, and sees a
destination that refuses (connection refused, ICMP port unreachable on a connected UDP socket,
SRT rejection) as an error with a reason.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av

from kiln.media.avbridge import Templates, to_av_packet
from kiln.media.model import Packet, Track

log = logging.getLogger(__name__)

TS_DATAGRAM = 1316
FLV_TAG_OVERHEAD = 15  # tag header (11) + previous-tag-size (4)


class PushError(Exception):
    """A destination problem, with a reason users can act on."""


@dataclass
class Timeouts:
    connect_ms: int = 5000
    send_ms: int = 2000


class _SocketSink:
    """File-like sink PyAV writes TS bytes into; sends them through a socket or SRT."""

    def __init__(self, send: Any, close: Any, datagram: int | None) -> None:
        self._send = send
        self._close = close
        self._datagram = datagram
        self._pending = bytearray()
        self.bytes_sent = 0

    def write(self, data: bytes) -> int:
        if self._datagram is None:
            self._send(bytes(data))
            self.bytes_sent += len(data)
            return len(data)
        self._pending += data
        size = self._datagram
        whole = len(self._pending) - len(self._pending) % size
        for i in range(0, whole, size):
            self._send(bytes(self._pending[i:i + size]))
        del self._pending[:whole]
        self.bytes_sent += whole
        return len(data)

    def flush_tail(self) -> None:
        if self._pending:
            self._send(bytes(self._pending))
            self.bytes_sent += len(self._pending)
            self._pending.clear()

    def close(self) -> None:
        self._close()


def _host_port(url: str, default_port: int | None = None) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise PushError(f"no host in {url}")
    port = parts.port or default_port
    if port is None:
        raise PushError(f"no port in {url}")
    return parts.hostname, port


def _resolve(host: str, port: int, kind: int) -> tuple[Any, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise PushError(f"cannot resolve {host}: {exc.strerror}") from exc
    return infos[0]


class PushWriter:
    """Opens the destination, muxes packets, reports bytes; one per push session (one thread)."""

    def __init__(self, protocol: str, destination: str, tracks: list[Track], timeouts: Timeouts) -> None:
        self.protocol = protocol
        self.destination = destination
        self.tracks = tracks
        self.timeouts = timeouts
        self.templates = Templates(tracks)
        self._sink: _SocketSink | None = None
        self._container: Any = None
        self._streams: dict[int, Any] = {}
        self.payload_bytes = 0
        self._started = False

    @property
    def bytes_sent(self) -> int:
        if self._sink is not None:
            return self._sink.bytes_sent
        return self.payload_bytes

    def open(self) -> None:
        try:
            if self.protocol == "rtmp":
                self._open_rtmp()
            elif self.protocol == "mpegts":
                self._open_ts()
            else:
                self._open_srt()
        except PushError:
            self.close()
            raise
        except (OSError, av.error.FFmpegError) as exc:
            self.close()
            raise PushError(_describe(exc)) from exc

    def _open_rtmp(self) -> None:
        timeouts = (self.timeouts.connect_ms / 1000, self.timeouts.send_ms / 1000)
        self._container = av.open(self.destination, "w", format="flv", timeout=timeouts,
                                  options={"flvflags": "no_duration_filesize"})
        self._add_streams()

    def _open_ts(self) -> None:
        scheme = urlsplit(self.destination).scheme.lower()
        host, port = _host_port(self.destination)
        if scheme == "udp":
            family, kind, proto, _, addr = _resolve(host, port, socket.SOCK_DGRAM)
            sock = socket.socket(family, kind, proto)
            sock.connect(addr)  # a connected UDP socket hears ICMP port-unreachable as ECONNREFUSED
            self._sink = _SocketSink(sock.send, sock.close, TS_DATAGRAM)
        else:
            family, kind, proto, _, addr = _resolve(host, port, socket.SOCK_STREAM)
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.timeouts.connect_ms / 1000)
            try:
                sock.connect(addr)
            except OSError:
                sock.close()
                raise
            sock.settimeout(self.timeouts.send_ms / 1000)
            self._sink = _SocketSink(sock.sendall, sock.close, None)
        self._open_ts_muxer()

    def _open_srt(self) -> None:
        from kiln.media.srt.sender import SrtSender

        sender = SrtSender.connect(self.destination, connect_timeout_ms=self.timeouts.connect_ms,
                                   send_timeout_ms=self.timeouts.send_ms)
        self._sink = _SocketSink(sender.send, sender.close, TS_DATAGRAM)
        self._open_ts_muxer()

    def _open_ts_muxer(self) -> None:
        assert self._sink is not None
        self._container = av.open(self._sink, "w", format="mpegts", buffer_size=TS_DATAGRAM * 4,
                                  options={"flush_packets": "1"})
        self._add_streams()

    def _add_streams(self) -> None:
        for track in self.tracks:
            self._streams[track.id] = self._container.add_stream_from_template(self.templates.by_track_id[track.id])

    def write(self, packet: Packet, offset: int) -> None:
        stream = self._streams.get(packet.track_id)
        if stream is None:
            return
        try:
            self._container.mux(to_av_packet(packet, stream, offset))
        except (OSError, av.error.FFmpegError) as exc:
            raise PushError(_describe(exc)) from exc
        self.payload_bytes += len(packet.data) + (FLV_TAG_OVERHEAD if self.protocol == "rtmp" else 0)

    def close(self) -> None:
        try:
            if self._container is not None:
                self._container.close()
        except (OSError, av.error.FFmpegError) as exc:
            log.debug("push writer close error destination=%s error=%s", self.destination, exc)
        finally:
            self._container = None
            if self._sink is not None:
                try:
                    self._sink.flush_tail()
                except OSError:
                    pass
                try:
                    self._sink.close()
                except OSError:
                    pass
            self.templates.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the destination"
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return "timed out talking to the destination"
    if isinstance(exc, BrokenPipeError | ConnectionResetError):
        return "the destination closed the connection"
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip() or type(exc).__name__
