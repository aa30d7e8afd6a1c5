"""What Kiln's own send path (:mod:`kiln.media.rtc.rtp_out`) takes from an aiortc peer connection.

aiortc still does per viewer what only a peer connection can: ICE (consent freshness included),
DTLS (the SRTP keys), and RTCP (SR/SDES/BYE from its sender's task; NACK, PLI/FIR and REMB handed to
Kiln here). Media no longer goes through its RTCRtpSender. What is read lives in aiortc's and
aioice's private attributes, so each is read through one accessor that fails loudly
(:class:`AiortcChanged`) when a version renames it, instead of sending nothing in silence.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pylibsrtp

from kiln.media.rtc.rtp_out import Address, Negotiated, Protect, Route
from kiln.media.rtc.udp_mux import VirtualTransport

_MISSING = object()
_SR_FIELDS = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp", "_RTCRtpSender__packet_count",
              "_RTCRtpSender__octet_count")


class AiortcChanged(RuntimeError):
    """aiortc no longer has an attribute Kiln's send path reads: it needs updating for this version."""


def _read(obj: Any, name: str) -> Any:
    value = getattr(obj, name, _MISSING)
    if value is _MISSING:
        raise AiortcChanged(f"aiortc's {type(obj).__name__} has no {name} any more: Kiln's WebRTC send path "
                            "needs updating for this aiortc version")
    return value


def srtp_protect(dtls: Any) -> Protect | None:
    """The SRTP protect function of a DTLS transport's keys (RTCDtlsTransport._tx_srtp); None before the
    handshake has made them. Kiln protects RTP on a feed's send thread while aiortc protects RTCP (its SRs) on
    the loop with the same libsrtp session, which is not thread-safe: both go through one lock
    (:class:`LockedSession` takes the session's place in the transport)."""
    session = _read(dtls, "_tx_srtp")
    if session is None:
        return None
    if not isinstance(session, LockedSession):
        session = dtls._tx_srtp = LockedSession(session)
    return protector(session)


class LockedSession:
    """A pylibsrtp session used from two threads: every protect holds ``lock`` (libsrtp keeps per-stream state
    and a stream list it grows at a new SSRC; pylibsrtp one buffer per session)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.lock = threading.Lock()

    def protect(self, packet: bytes) -> bytes:
        with self.lock:
            return bytes(self.session.protect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        with self.lock:
            return bytes(self.session.protect_rtcp(packet))


def protector(locked: LockedSession) -> Protect:
    """pylibsrtp's ``protect`` without its per-call checks, allocation and the header + payload concatenation:
    both are written straight into a buffer of this protector's own and libsrtp protects them there (about a
    fifth of a viewer's cost per packet). A pylibsrtp without those internals gets its public ``protect``."""
    session, lock = locked.session, locked.lock
    try:
        from pylibsrtp._binding import ffi, lib
        srtp = session._srtp
        call, ok = lib.srtp_protect, lib.srtp_err_status_ok
    except (ImportError, AttributeError):
        return lambda header, payload: locked.protect(bytes(header) + payload)
    cdata = ffi.new("char[]", 1500)
    buffer = ffi.buffer(cdata)
    limit = len(buffer) - pylibsrtp.SRTP_MAX_TRAILER_LEN
    length = ffi.new("int *")

    def protect(header: bytes | bytearray, payload: bytes) -> bytes:
        end = len(header)
        total = end + len(payload)
        if total > limit:
            raise ValueError("packet is too long")
        with lock:
            buffer[0:end] = header
            buffer[end:total] = payload
            length[0] = total
            status = call(srtp[0], cdata, length)
            if status != ok:
                raise pylibsrtp.Error(f"srtp_protect failed with status {status}")
            return bytes(buffer[0:length[0]])

    return protect


class RouteFinder:
    """The socket and remote address ICE selected for a DTLS transport (what aioice's ``send`` would use), or
    None while there is none (not connected, closed). Asked per frame: cheap while the selected pair stays
    the same (the ICE connection is read each time, so a restart that replaces it is followed)."""

    def __init__(self, dtls: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._ice = _read(dtls, "transport")
        _read(_read(self._ice, "_connection"), "_nominated")
        self._pair: Any = None
        self._route: Route | None = None

    def __call__(self) -> Route | None:
        pair = self._ice._connection._nominated.get(1)
        if pair is not self._pair:
            self._pair = pair
            self._route = _route_of(pair, self._loop) if pair is not None else None
        return self._route


def _route_of(pair: Any, loop: asyncio.AbstractEventLoop) -> Route | None:
    """The socket to ``sendto`` from any thread (Kiln's feeds send from their own threads): on Kiln's shared
    ports the port's send socket; otherwise aioice's own socket, or (uvloop hides it) its transport reached
    through the loop."""
    transport = pair.protocol.transport
    if transport is None or transport.is_closing():
        return None
    address = (pair.remote_addr[0], pair.remote_addr[1])
    if isinstance(transport, VirtualTransport):
        sock = _read(_read(transport, "_port"), "send_socket")
        return None if sock is None else (sock, address)  # non-blocking: a full buffer raises, the packet is lost
    raw = getattr(transport.get_extra_info("socket"), "_sock", None)  # asyncio's TransportSocket wraps it
    if isinstance(raw, socket.socket):
        return raw, address
    return LoopSend(loop, transport), address


class LoopSend:
    """A transport only its loop may use, as a socket a thread sends on: each datagram goes to the loop (a hop
    per packet; only sessions off Kiln's shared ports, under uvloop, are sent this way)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: Any) -> None:
        self.loop = loop
        self.transport = transport

    def sendto(self, data: bytes, address: Address, /) -> int:
        try:
            self.loop.call_soon_threadsafe(self.transport.sendto, data, address)
        except RuntimeError as exc:  # the loop is closed
            raise OSError(str(exc)) from None
        return len(data)


def negotiated(transceiver: Any) -> Negotiated:
    """The sending track's SSRCs, payload types, mid and header extensions, as negotiated."""
    codecs = _read(transceiver, "_codecs")
    if not codecs:
        raise ValueError("the transceiver has no negotiated codec")
    first = codecs[0]
    rtx = next((c.payloadType for c in codecs if c.mimeType.lower().endswith("/rtx")
                and str(c.parameters.get("apt")) == str(first.payloadType)), None)
    extensions = tuple((e.uri, e.id) for e in _read(transceiver, "_headerExtensions"))
    sender = transceiver.sender
    return Negotiated(ssrc=_read(sender, "_ssrc"), payload_type=first.payloadType, mid=transceiver.mid or "",
                      extensions=extensions, rtx_payload_type=rtx, rtx_ssrc=_read(sender, "_rtx_ssrc"))


class SenderReport:
    """Feeds aiortc's RTCP task (it sends SR + SDES every ~1 s) what Kiln sent, so its SR maps RTP time to
    wall-clock time for the browser's audio/video sync."""

    def __init__(self, sender: Any) -> None:
        for name in _SR_FIELDS:
            _read(sender, name)
        self.sender = sender

    def update(self, ntp_time: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        s = self.sender
        s._RTCRtpSender__ntp_timestamp = ntp_time
        s._RTCRtpSender__rtp_timestamp = rtp_timestamp
        s._RTCRtpSender__packet_count = packets
        s._RTCRtpSender__octet_count = octets


def intercept_rtcp(sender: Any, handle: Callable[[Any], bool]) -> None:
    """RTCP routed to ``sender`` goes to ``handle`` first; what it does not take (returns False) goes on to
    aiortc's handler (receiver reports: RTT, stats)."""
    original: Callable[[Any], Awaitable[None]] = _read(sender, "_handle_rtcp_packet")

    async def handle_rtcp(packet: Any) -> None:
        if not handle(packet):
            await original(packet)

    sender._handle_rtcp_packet = handle_rtcp
