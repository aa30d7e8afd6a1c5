"""Muxing selected tracks to a push destination (media-spec §7).

Kiln owns every connection, so it counts the exact bytes sent, bounds every network wait by the
app's connection and send timeouts, and sees a destination that refuses (connection refused, an
RTMP ``_error``, SRT rejection, a send timeout) as an error with a reason. UDP, like OME, keeps
sending to a port nobody listens on. RTMP/RTMPS: FLV tags built straight from the packets
(:mod:`kiln.media.publish.push.flvtags`) and sent by Kiln's RTMP client (:mod:`kiln.media.publish.push.rtmp_client`;
FFmpeg's own ``rtmp://`` output blocks with the GIL held and no timeout). MPEG-TS over UDP, TCP and
SRT: PyAV muxes into a Python sink; UDP goes out as 1316-byte datagrams (7 TS packets) as soon as
each media packet is muxed.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import av

from kiln.media.formats.rtmp import messages
from kiln.media.model import Packet, Track
from kiln.media.publish.avbridge import Templates, to_av_packet
from kiln.media.publish.push import flvtags
from kiln.media.publish.push.net import PushError, host_port, resolve, tcp_socket
from kiln.media.publish.push.rtmp_client import RtmpPublisher

log = logging.getLogger(__name__)

TS_DATAGRAM = 1316

__all__ = ["PushError", "PushWriter", "Timeouts"]


@dataclass
class Timeouts:
    connect_ms: int = 5000
    send_ms: int = 2000


class _SocketSink:
    """File-like sink PyAV writes TS bytes into; sends them through a socket or SRT."""

    def __init__(self, send: Any, close: Any, datagram: int | None, abort: Any = None) -> None:
        self._send = send
        self._close = close
        self.abort = abort or (lambda: None)
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
        self._rtmp: RtmpPublisher | None = None
        self._configs: dict[int, bytes] = {}
        self._by_id = {t.id: t for t in tracks}

    @property
    def bytes_sent(self) -> int:
        if self._rtmp is not None:
            return self._rtmp.bytes_sent
        return self._sink.bytes_sent if self._sink is not None else 0

    def abort(self) -> None:
        """Unblock a send in progress (called from another thread when the session stops)."""
        if self._rtmp is not None:
            self._rtmp.abort()
        sink = self._sink
        if sink is not None:
            sink.abort()

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
        """RTMP needs no muxer: tags are built from the packets (kiln.media.publish.push.flvtags)."""
        self._rtmp = RtmpPublisher.connect(self.destination, self.timeouts.connect_ms, self.timeouts.send_ms)
        headers = [(t, 0, body) for t, body in filter(None, (flvtags.sequence_header(tr) for tr in self.tracks))]
        self._rtmp.send_tags([(messages.DATA_AMF0, 0, flvtags.metadata(self.tracks)), *headers])
        self._configs = {tr.id: tr.config for tr in self.tracks}

    def _open_ts(self) -> None:
        scheme = urlsplit(self.destination).scheme.lower()
        host, port = host_port(self.destination)
        if scheme == "udp":
            family, kind, proto, _, addr = resolve(host, port, socket.SOCK_DGRAM)
            sock = socket.socket(family, kind, proto)
            sock.connect(addr)
            self._sink = _SocketSink(_udp_sender(sock, self.destination), sock.close, TS_DATAGRAM,
                                     lambda: _shutdown(sock))
        else:
            family, kind, proto, _, addr = resolve(host, port, socket.SOCK_STREAM)
            sock = tcp_socket(family, kind, proto)
            sock.settimeout(self.timeouts.connect_ms / 1000)
            try:
                sock.connect(addr)
            except OSError:
                sock.close()
                raise
            sock.settimeout(self.timeouts.send_ms / 1000)
            self._sink = _SocketSink(_sendall_with_timeout(sock, self.timeouts.send_ms), sock.close, None,
                                     lambda: _shutdown(sock))
        self._open_ts_muxer()

    def _open_srt(self) -> None:
        from kiln.media.net.srt.sender import SrtSender

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
        if self._rtmp is not None:
            self._write_rtmp(packet, offset)
            return
        stream = self._streams.get(packet.track_id)
        if stream is None:
            return
        try:
            self._container.mux(to_av_packet(packet, stream, offset))
        except (OSError, av.error.FFmpegError) as exc:
            raise PushError(_describe(exc)) from exc

    def _write_rtmp(self, packet: Packet, offset: int) -> None:
        track = self._by_id.get(packet.track_id)
        if track is None or self._rtmp is None:
            return
        tags = []
        if packet.config and packet.config != self._configs.get(track.id):  # new decoder configuration
            self._configs[track.id] = packet.config
            header = flvtags.sequence_header(replace(track, config=packet.config))
            if header is not None:
                tags.append((header[0], max(0, flvtags.ms(packet.dts - offset, packet.time_base)), header[1]))
        tag = flvtags.media_tag(track, packet, offset)
        if tag is not None:
            tags.append(tag)
        if tags:
            self._rtmp.send_tags(tags)

    def close(self) -> None:
        if self._rtmp is not None:
            try:
                self._rtmp.close()
            except (OSError, PushError) as exc:
                log.debug("push rtmp close error destination=%s error=%s", self.destination, exc)
            self._rtmp = None
        try:
            if self._container is not None:
                self._container.close()
        except (OSError, PushError, av.error.FFmpegError) as exc:  # the trailer may meet a closed destination
            log.debug("push writer close error destination=%s error=%s", self.destination, exc)
        finally:
            self._container = None
            if self._sink is not None:
                try:
                    self._sink.flush_tail()
                except (OSError, PushError):
                    pass
                try:
                    self._sink.close()
                except OSError:
                    pass
            self.templates.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _udp_sender(sock: socket.socket, destination: str) -> Any:
    """Datagrams go out whether or not anyone listens, as in OME: an ICMP port-unreachable (seen as
    ECONNREFUSED on a connected socket) is logged once, not turned into an error/retry storm."""
    told = False

    def send(data: bytes) -> None:
        nonlocal told
        try:
            sock.send(data)
        except ConnectionRefusedError:
            if not told:
                told = True
                log.info("push udp destination unreachable, still sending destination=%s", destination)
    return send


def _sendall_with_timeout(sock: socket.socket, send_ms: int) -> Any:
    def send(data: bytes) -> None:
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            raise PushError(f"timed out after {send_ms} ms sending: the destination stopped reading") from exc
    return send


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the destination"
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return "timed out talking to the destination"
    if isinstance(exc, BrokenPipeError | ConnectionResetError):
        return "the destination closed the connection"
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip() or type(exc).__name__
