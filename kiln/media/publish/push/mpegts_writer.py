"""Push as MPEG-TS over UDP or TCP (``mpegts`` protocol, ``udp://`` or ``tcp://`` destination).

UDP, like OME, keeps sending to a port nobody listens on: datagrams of 7 TS packets go out as soon
as each media packet is muxed. TCP is bounded by the connection and send timeouts, so a destination
that stops reading is an error, not a stall.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from kiln.events.redact import redact_push_destination
from kiln.media.model import Packet, Track
from kiln.media.publish.push.net import (
    Connecting,
    PushError,
    Timeouts,
    failing_as_push_error,
    host_port,
    resolve,
    shutdown,
    tcp_socket,
)
from kiln.media.publish.push.tsmux import TS_DATAGRAM, TsMuxer, TsSink

log = logging.getLogger(__name__)


def udp_sink(destination: str, timeouts: Timeouts, connecting: Connecting) -> TsSink:
    host, port = host_port(destination)
    family, kind, proto, _, addr = resolve(host, port, socket.SOCK_DGRAM)
    sock = socket.socket(family, kind, proto)
    try:
        sock.connect(addr)
    except OSError:
        sock.close()
        raise
    return TsSink(_udp_sender(sock, destination), sock.close, TS_DATAGRAM, lambda: shutdown(sock))


def tcp_sink(destination: str, timeouts: Timeouts, connecting: Connecting) -> TsSink:
    host, port = host_port(destination)
    family, kind, proto, _, addr = resolve(host, port, socket.SOCK_STREAM)
    sock = tcp_socket(family, kind, proto)
    sock.settimeout(timeouts.connect_ms / 1000)
    try:
        # a stop shuts the socket down: a connect to a destination that never answers fails at once, instead of
        # holding the session's thread (and the actor that joins it) for the connection timeout
        connecting.opened(lambda: shutdown(sock))
        sock.connect(addr)
    except (OSError, PushError):
        sock.close()
        raise
    sock.settimeout(timeouts.send_ms / 1000)
    return TsSink(_sendall_with_timeout(sock, timeouts.send_ms), sock.close, None, lambda: shutdown(sock))


Connect = Callable[[str, Timeouts, Connecting], TsSink]
TRANSPORTS: dict[str, Connect] = {"udp": udp_sink, "tcp": tcp_sink}


class TsPushWriter:
    """Pushes MPEG-TS into the sink ``connect`` opens: the writer of the ``mpegts`` and ``srt`` protocols, which
    differ only in how their sink connects. ``connect`` hands its :class:`Connecting` what ends a connection under
    way, so that :meth:`abort` (the session's stop) does not wait for a destination that does not answer."""

    def __init__(self, destination: str, tracks: list[Track], timeouts: Timeouts, connect: Connect) -> None:
        self.destination = destination
        self.timeouts = timeouts
        self._connect = connect
        self._connecting = Connecting()
        self._mux = TsMuxer(destination, tracks)

    @property
    def bytes_sent(self) -> int:
        return self._mux.bytes_sent

    def open(self) -> None:
        try:
            with failing_as_push_error(self.close):
                self._mux.open(self._connect(self.destination, self.timeouts, self._connecting))
        except PushError as exc:
            if self._connecting.aborted:  # the abort made the connect fail, however it failed: the stop is why
                raise PushError("stopped while connecting") from exc
            raise

    def write(self, packet: Packet, offset: int) -> None:
        self._mux.write(packet, offset)

    def flush(self) -> None:
        """The muxer sends whole datagrams as they fill: nothing is held here."""

    def abort(self) -> None:
        self._connecting.abort()
        self._mux.abort()

    def close(self) -> None:
        self._mux.close()


class MpegtsWriter(TsPushWriter):
    def __init__(self, destination: str, tracks: list[Track], timeouts: Timeouts) -> None:
        super().__init__(destination, tracks, timeouts, _by_scheme)


def _by_scheme(destination: str, timeouts: Timeouts, connecting: Connecting) -> TsSink:
    scheme = urlsplit(destination).scheme.lower()
    transport = TRANSPORTS.get(scheme)
    if transport is None:
        raise PushError(f"MPEG-TS cannot be pushed over {scheme or 'a URL without a scheme'}")
    return transport(destination, timeouts, connecting)


def _udp_sender(sock: socket.socket, destination: str) -> Callable[[bytes], None]:
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
                log.info("push udp destination unreachable, still sending destination=%s",
                         redact_push_destination(destination))
    return send


def _sendall_with_timeout(sock: socket.socket, send_ms: int) -> Callable[[bytes], None]:
    def send(data: bytes) -> None:
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            raise PushError(f"timed out after {send_ms} ms sending: the destination stopped reading") from exc
    return send
