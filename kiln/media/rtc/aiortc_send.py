"""What Kiln's own send path (:mod:`kiln.media.rtc.rtp_out`) takes from an aiortc peer connection.

aiortc still does per viewer what only a peer connection can: ICE (consent freshness included),
DTLS (the SRTP keys), and RTCP (SR/SDES/BYE from its sender's task; NACK, PLI/FIR and REMB handed to
Kiln here). Media no longer goes through its RTCRtpSender. What is read lives in aiortc's and
aioice's private attributes, so each is read through one accessor that fails loudly
(:class:`AiortcChanged`) when a version renames it, instead of sending nothing in silence.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pylibsrtp

from kiln.media.rtc.rtp_out import Negotiated, Protect, Route
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
    handshake has made them."""
    session = _read(dtls, "_tx_srtp")
    return None if session is None else protector(session)


def protector(session: Any) -> Protect:
    """pylibsrtp's ``protect`` without its per-call checks, allocation and the header + payload concatenation:
    both are written straight into the session's buffer and libsrtp protects them there (about a fifth of a
    viewer's cost per packet). A pylibsrtp without those internals gets its public ``protect``."""
    try:
        from pylibsrtp._binding import ffi, lib
        srtp, cdata = session._srtp, session._cdata
        call, ok = lib.srtp_protect, lib.srtp_err_status_ok
    except (ImportError, AttributeError):
        return lambda header, payload: session.protect(bytes(header) + payload)
    buffer = ffi.buffer(cdata)
    limit = len(buffer) - pylibsrtp.SRTP_MAX_TRAILER_LEN
    length = ffi.new("int *")

    def protect(header: bytes | bytearray, payload: bytes) -> bytes:
        end = len(header)
        total = end + len(payload)
        if total > limit:
            raise ValueError("packet is too long")
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
        self._ice = _read(dtls, "transport")
        _read(_read(self._ice, "_connection"), "_nominated")
        self._pair: Any = None
        self._route: Route | None = None

    def __call__(self) -> Route | None:
        pair = self._ice._connection._nominated.get(1)
        if pair is not self._pair:
            self._pair = pair
            self._route = _route_of(pair) if pair is not None else None
        return self._route


def _route_of(pair: Any) -> Route | None:
    """On Kiln's shared ports the socket is the port's; otherwise aioice's own."""
    transport = pair.protocol.transport
    if transport is None or transport.is_closing():
        return None
    if isinstance(transport, VirtualTransport):
        transport = _read(transport, "_port").transport
        if transport is None:
            return None
    address = (pair.remote_addr[0], pair.remote_addr[1])
    raw = getattr(transport.get_extra_info("socket"), "_sock", None)  # asyncio's TransportSocket wraps it
    if isinstance(raw, socket.socket):
        return raw, address  # non-blocking: a full buffer raises, and the viewer loses the packet
    return transport, address  # uvloop hides the socket: its transport sends at once too (it buffers when full)


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
