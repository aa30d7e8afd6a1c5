"""``SrtSender``: a live-mode SRT caller for pushes (media-spec §7: SRT pushes are callers only).

``send`` cuts data into messages of at most 1316 bytes (7 TS packets) so TS packets never straddle
two messages. ``close`` does not just drop the socket: the receiver holds the last packets in its
TSBPD buffer for the latency, and closing immediately makes it discard them (peers.md §3.4). So
close waits until libsrt's send buffer is empty (every packet acknowledged), then lingers for the
peer's latency plus a margin, then closes.

``connect`` does not block in libsrt: a blocking ``srt_connect`` cannot be interrupted (it holds the socket's
control lock, so even ``srt_close`` from another thread waits for it), and a push stopped while its destination
does not answer would hold its thread, and the actor joining it, for the whole connection timeout. The socket
connects with ``SRTO_RCVSYN`` off and the caller waits on a libsrt epoll in short slices, asking ``stopped``
between them (:class:`ConnectStopped`).

One thread uses a sender at a time; ``close`` may be called again from anywhere and does nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from kiln.media.net import lookup
from kiln.media.net.srt import abi, libsrt
from kiln.media.net.srt.abi import SockOpt, SockStatus, TransType
from kiln.media.net.srt.epoll import EPOLL_ERR, EPOLL_OUT, SrtEpoll
from kiln.media.net.srt.errors import SYSTEM_REJECT_REASONS, ErrorCode, SrtError
from kiln.media.net.srt.socket import SrtSocket
from kiln.media.net.srt.stats import SrtStats
from kiln.media.net.srt.url import SrtUrl, SrtUrlError, parse_srt_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 5000  # OME's push defaults
SEND_TIMEOUT_MS = 2000
LINGER_MARGIN_MS = 100
DRAIN_POLL_S = 0.005
STOP_POLL_MS = 50  # how often a connect under way asks whether it was stopped: a stop ends it within this
REJECT_TIMEOUT = SYSTEM_REJECT_REASONS.index("connection timeout")  # SRT_REJ_TIMEOUT: nobody answered


class ConnectStopped(SrtError):
    """The connect was given up because the caller's ``stopped`` said so; no other address is tried."""


def message_size(payload_size: int) -> int:
    """Largest whole number of TS packets that fits the payload size, capped at 1316 bytes."""
    usable = min(payload_size, abi.LIVE_PAYLOAD_SIZE)
    packets = usable // abi.TS_PACKET_SIZE
    return packets * abi.TS_PACKET_SIZE if packets else max(usable, 1)


def split_messages(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


class SrtSender:
    def __init__(self, sock: SrtSocket, url: SrtUrl, address: tuple[str, int], send_timeout_ms: int) -> None:
        self._sock = sock
        self.url = url
        self.address = address
        self.send_timeout_ms = send_timeout_ms
        self.message_size = message_size(sock.get_int(SockOpt.PAYLOADSIZE) or abi.LIVE_PAYLOAD_SIZE)
        self.peer_latency_ms = sock.get_int(SockOpt.PEERLATENCY)
        self.bytes_sent = 0
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def connect(cls, url: str, *, connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
                send_timeout_ms: int = SEND_TIMEOUT_MS, stopped: Callable[[], bool] | None = None) -> SrtSender:
        """Connect as a caller. Both the keyword timeouts and the URL's own (``connect_timeout`` in ms,
        ``timeout`` in µs) apply, so the smaller wins, as with OME's interrupt callback around FFmpeg.
        ``stopped`` (asked from this thread every ``STOP_POLL_MS``) gives the connect up: ConnectStopped."""
        try:
            parsed = parse_srt_url(url)
        except SrtUrlError as exc:
            raise SrtError(f"bad SRT URL: {exc}", code=ErrorCode.EINVPARAM) from None
        if parsed.option(SockOpt.TRANSTYPE) == TransType.FILE:
            raise SrtError("bad SRT URL: transtype=file is not supported for a live push", code=ErrorCode.EINVPARAM)
        if connect_timeout_ms <= 0 or send_timeout_ms <= 0:
            raise ValueError(f"timeouts must be positive: connect={connect_timeout_ms} ms send={send_timeout_ms} ms")
        connect_ms = min(t for t in (connect_timeout_ms, parsed.connect_timeout_ms, parsed.io_timeout_ms) if t)
        send_ms = min(t for t in (send_timeout_ms, parsed.io_timeout_ms) if t)
        deadline = time.monotonic() + connect_ms / 1000
        last: SrtError | None = None
        for ip in _resolve(parsed.host, parsed.port):
            remaining = max(int((deadline - time.monotonic()) * 1000), 1)
            sock = SrtSocket()
            try:
                _prepare(sock, parsed, remaining)
                _connect(sock, ip, parsed.port, remaining, stopped or _never)
                sock.set_int(SockOpt.SNDTIMEO, send_ms)
            except ConnectStopped:
                sock.close()
                log.info("srt push connect stopped url=%s address=%s:%d", parsed.display, ip, parsed.port)
                raise
            except SrtError as exc:
                sock.close()
                last = _explain_connect(exc, ip, parsed.port, connect_ms)
                log.info("srt push connect failed url=%s address=%s:%d error=%s", parsed.display, ip, parsed.port, last)
                if time.monotonic() >= deadline:
                    break
                continue
            try:
                sender = cls(sock, parsed, (ip, parsed.port), send_ms)
            except SrtError as exc:  # the peer hung up right after the handshake
                sock.close()
                raise _explain_connect(exc, ip, parsed.port, connect_ms) from None
            log.info("srt push connected url=%s address=%s:%d peer_latency_ms=%d", parsed.display, ip, parsed.port,
                     sender.peer_latency_ms)
            return sender
        assert last is not None
        raise last

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SrtSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, data: bytes) -> int:
        """Send ``data`` as live messages of at most ``message_size`` bytes; returns bytes sent."""
        if self._closed:
            raise SrtError("send: the SRT connection is closed", code=ErrorCode.ENOCONN)
        for chunk in split_messages(data, self.message_size):
            try:
                self._sock.send(chunk)
            except SrtError as exc:
                raise _explain_send(exc, self.send_timeout_ms) from None
            self.bytes_sent += len(chunk)
        return len(data)

    def stats(self) -> SrtStats:
        return self._sock.stats()

    def close(self) -> None:
        """Drain and linger (see the module doc), then close; errors on the way are only logged."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self.bytes_sent and self._sock.state == SockStatus.CONNECTED:
                self._drain()
                if self._sock.state == SockStatus.CONNECTED:
                    time.sleep((self.peer_latency_ms + LINGER_MARGIN_MS) / 1000)
        except SrtError as exc:
            log.debug("srt push drain stopped url=%s error=%s", self.url.display, exc)
        finally:
            self._sock.close()
            log.info("srt push closed url=%s bytes=%d", self.url.display, self.bytes_sent)

    def _drain(self) -> None:
        deadline = time.monotonic() + self.send_timeout_ms / 1000
        while time.monotonic() < deadline:
            if self._sock.get_int(SockOpt.SNDDATA) <= 0 or self._sock.state != SockStatus.CONNECTED:
                return
            time.sleep(DRAIN_POLL_S)
        log.warning("srt push send buffer not drained url=%s waited_ms=%d", self.url.display, self.send_timeout_ms)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = lookup.getaddrinfo(host, port, socket.SOCK_DGRAM)  # a push's stop does not wait for it
    except socket.gaierror as exc:
        raise SrtError(f"cannot resolve {host}: {exc.strerror}", code=ErrorCode.ENOSERVER) from None
    # IPv4 first: SRT listeners mostly bind IPv4, and an unanswered IPv6 attempt would use up the
    # whole connect timeout (libsrt ignores ICMP "port unreachable" and waits).
    addresses: list[str] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for fam, _, _, _, addr in infos:
            host_address = str(addr[0])  # (host, port) for IPv4, (host, port, flow, scope) for IPv6
            if fam == family and host_address not in addresses:
                addresses.append(host_address)
    if not addresses:
        raise SrtError(f"cannot resolve {host}: no IPv4 or IPv6 address", code=ErrorCode.ENOSERVER)
    return addresses


def _never() -> bool:
    return False


def _connect(sock: SrtSocket, ip: str, port: int, timeout_ms: int, stopped: Callable[[], bool]) -> None:
    """Connect without blocking in libsrt (see the module doc): the failures are those of a blocking connect,
    ENOSERVER when nobody answered within ``timeout_ms`` (libsrt's SRTO_CONNTIMEO, set by ``_prepare``), ECONNREJ
    with the peer's reason."""
    if stopped():
        raise ConnectStopped(f"connect {ip}:{port}: stopped", code=ErrorCode.ECONNSETUP)
    sock.set_bool(SockOpt.RCVSYN, False)
    with SrtEpoll(max_events=1) as epoll:
        epoll.add(sock.handle, EPOLL_OUT | EPOLL_ERR)
        sock.connect(ip, port)
        # libsrt reports its own timeout (EPOLL_ERR); the deadline here only bounds a report that never came
        deadline = time.monotonic() + timeout_ms / 1000 + 1.0
        while not epoll.wait(STOP_POLL_MS):
            if stopped():
                raise ConnectStopped(f"connect {ip}:{port}: stopped", code=ErrorCode.ECONNSETUP)
            if time.monotonic() >= deadline:
                break
    if sock.state != SockStatus.CONNECTED:
        reason = libsrt.getrejectreason(sock.handle)
        if sock.state in (SockStatus.CONNECTING, SockStatus.OPENED) or reason == REJECT_TIMEOUT:
            raise SrtError(f"connect {ip}:{port}: connection setup failure: connection timed out",
                           code=ErrorCode.ENOSERVER)
        raise SrtError(f"connect {ip}:{port}: connection setup failure: connection rejected (reject reason: "
                       f"{libsrt.reject_text(reason)})", code=ErrorCode.ECONNREJ, reject_reason=reason)
    sock.set_bool(SockOpt.RCVSYN, True)  # as a blocking caller had it: the sender's calls block (with timeouts)


def _prepare(sock: SrtSocket, url: SrtUrl, connect_ms: int) -> None:
    sock.set_int(SockOpt.TRANSTYPE, TransType.LIVE)  # first: it resets other options to the mode's presets
    sock.set_bool(SockOpt.SENDER, True)
    for spec, value in url.options:
        if spec.opt in (SockOpt.TRANSTYPE, SockOpt.CONNTIMEO):
            continue
        sock.set_option(spec, value)
    sock.set_int(SockOpt.CONNTIMEO, connect_ms)


def _explain_connect(exc: SrtError, host: str, port: int, timeout_ms: int) -> SrtError:
    where = f"{host}:{port}"
    if exc.code == ErrorCode.ENOSERVER:
        text = f"connect to {where}: no answer within {timeout_ms} ms (nobody listening, or unreachable)"
    elif exc.code == ErrorCode.ECONNREJ:
        reason = libsrt.reject_text(exc.reject_reason) if exc.reject_reason is not None else "unknown"
        text = f"connect to {where}: rejected by the peer: {reason}"
    else:
        text = f"connect to {where}: {exc.strerror}"
    return SrtError(text, code=exc.code, sys_errno=exc.sys_errno, reject_reason=exc.reject_reason)


def _explain_send(exc: SrtError, timeout_ms: int) -> SrtError:
    if exc.code in (ErrorCode.ETIMEOUT, ErrorCode.EASYNCSND):
        text = f"send timed out after {timeout_ms} ms (the destination is not keeping up)"
    elif exc.code in (ErrorCode.ECONNLOST, ErrorCode.ENOCONN):
        text = f"send failed: the destination closed the connection ({exc.strerror})"
    else:
        text = f"send failed: {exc.strerror}"
    return SrtError(text, code=exc.code, sys_errno=exc.sys_errno)
