"""Per-viewer RTP out of payloads cut once per rendition: only what must differ per viewer.

aiortc's RTCRtpSender runs a task per viewer, builds an ``RtpPacket`` object per packet, serializes it
and sends it through DTLS transport → ICE connection → UDP mux (about 1 % of a core per viewer).
Here a viewer's track is a header template (its SSRC, payload type, header extensions), a sequence
offset and a clock origin: per packet Kiln writes sequence number, timestamp and marker into the
template (``struct.pack_into``), SRTP-protects with the session's own key (pylibsrtp, from DTLS) and
``sendto``s on the shared UDP socket to the address ICE selected. A socket that would block costs that
viewer the packet (never a wait). Sequence numbers stay continuous for the viewer across a resync or a
rendition change (the offset moves, the counter does not), so its receiver sees no gap to NACK.

A frame's packets are protected first, then sent: a run of packets of one size (FU-A fragments of a
NAL, :mod:`kiln.media.rtc.prepacked`) goes to the kernel in one ``sendmsg`` with UDP segmentation
offload (``UDP_SEGMENT``, Linux), which cuts it into the same datagrams: one system call and one
pass through the UDP stack per run instead of per packet (the kernel was most of a viewer's cost). A
kernel or interface that refuses it turns it off for the process (logged once); packets then go one
``sendto`` each, as on a socket without ``sendmsg``.

A viewer's sequence number is ``rendition seq + offset``, so a NACK is answered from the rendition's
:class:`PacketCache` (RTX when negotiated) for packets sent since the last (re)start.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pylibsrtp

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
CACHE_SIZE = 2048            # packets per track: ~4 s of a 2.5 Mbit/s 720p video, far past any NACK's use
_SEQ = 0xFFFF
_HEADER = struct.Struct("!BHI")  # marker|pt, seq, timestamp at offset 1
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)   # Linux >= 4.18 (Python 3.11 does not name it)
GSO_MAX_SEGMENTS = 32        # datagrams per offloaded send: 32 x ~1.3 KB stays well under 64 KB
_SEGMENT_SIZE = struct.Struct("=H")
_GSO_REFUSED = (errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP)

log = logging.getLogger(__name__)

Address = tuple[str, int]


class Socket(Protocol):
    def sendto(self, data: bytes, address: Address, /) -> int: ...


class Segmentation:
    """UDP segmentation offload, on while the kernel takes it (Linux), off for the process at its first refusal."""

    enabled = sys.platform == "linux"

    @classmethod
    def refused(cls, exc: OSError) -> None:
        if cls.enabled:
            cls.enabled = False
            log.warning("webrtc udp segmentation offload refused error=%s; sending one datagram per packet", exc)


def send_packets(sock: Socket, packets: Sequence[bytes], address: Address) -> int:
    """Send ``packets`` in order; how many went out before the socket refused one (``len(packets)`` for all).
    Runs of one size (the last of a run may be shorter) go in one segmentation-offload ``sendmsg``."""
    sendmsg: Callable[..., int] | None = getattr(sock, "sendmsg", None) if Segmentation.enabled else None
    i, n = 0, len(packets)
    while i < n:
        size = len(packets[i])
        j = i + 1
        if sendmsg is not None:
            limit = min(n, i + GSO_MAX_SEGMENTS)
            while j < limit and len(packets[j]) == size:
                j += 1
            if j < limit and len(packets[j]) < size:
                j += 1
        try:
            if sendmsg is not None and j - i > 1:
                sendmsg(packets[i:j], [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))], 0, address)
            else:
                sock.sendto(packets[i], address)
        except OSError as exc:
            if j - i > 1 and exc.errno in _GSO_REFUSED:
                Segmentation.refused(exc)
                sendmsg = None
                continue  # the same packets again, one datagram each
            return i
        i = j
    return n


Route = tuple[Socket, Address]
Protect = Callable[[bytes | bytearray, bytes], bytes]   # (RTP header, payload) -> SRTP packet


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the SDP exchange fixed for one sending track."""

    ssrc: int
    payload_type: int
    mid: str = ""
    extensions: tuple[tuple[str, int], ...] = ()   # (uri, id) the peer accepted
    rtx_payload_type: int | None = None
    rtx_ssrc: int = 0


@dataclass(frozen=True, slots=True)
class CachedPacket:
    seq: int          # the rendition's sequence number
    payload: bytes
    marker: bool
    timestamp: int    # the codec clock, before a viewer's origin


class PacketCache:
    """The last ``size`` packets of one rendition track by sequence number, for NACKs."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._ring: list[CachedPacket | None] = [None] * size

    def put(self, packet: CachedPacket) -> None:
        self._ring[packet.seq % self.size] = packet

    def get(self, seq: int) -> CachedPacket | None:
        found = self._ring[seq % self.size]
        return found if found is not None and found.seq == seq else None


def header_template(ssrc: int, payload_type: int, mid: str, extensions: tuple[tuple[str, int], ...]
                    ) -> tuple[bytearray, int | None]:
    """A 12-byte RTP header plus one-byte-form extensions (mid, abs-send-time when negotiated), and the
    offset of abs-send-time's 3 bytes in it (None when not negotiated)."""
    ids = dict(extensions)
    elements = b""
    abs_at: int | None = None
    if mid and MID_URI in ids:
        value = mid.encode()
        elements += bytes([(ids[MID_URI] << 4) | (len(value) - 1)]) + value
    if ABS_SEND_TIME_URI in ids:
        abs_at = 12 + 4 + len(elements) + 1
        elements += bytes([(ids[ABS_SEND_TIME_URI] << 4) | 2]) + b"\0\0\0"
    header = bytearray(struct.pack("!BBHII", 0x80, payload_type & 0x7F, 0, 0, ssrc))
    if elements:
        elements += b"\0" * (-len(elements) % 4)
        header[0] |= 0x10
        header += struct.pack("!HH", 0xBEDE, len(elements) // 4) + elements
    return header, abs_at


class TrackOut:
    """One viewer's one sending track: SSRC, sequence and clock, continuous across (re)starts.

    ``offset`` is None until a start point (a keyframe for video); ``start`` maps the rendition's
    sequence numbers onto the viewer's next ones."""

    def __init__(self, negotiated: Negotiated, protect: Protect, clock_origin: int | None = None,
                 first_seq: int | None = None) -> None:
        self.negotiated = negotiated
        self.protect = protect
        self.origin = random.getrandbits(32) if clock_origin is None else clock_origin
        self.next_seq = random.getrandbits(15) if first_seq is None else first_seq  # low half: no early wrap
        self.offset: int | None = None
        self.since = self.next_seq       # the viewer's first sequence number under the current offset
        self.header, self.abs_at = header_template(negotiated.ssrc, negotiated.payload_type, negotiated.mid,
                                                   negotiated.extensions)
        self.rtx_header: bytearray | None = None
        self.rtx_seq = random.getrandbits(15)
        if negotiated.rtx_payload_type is not None:
            self.rtx_header, _ = header_template(negotiated.rtx_ssrc, negotiated.rtx_payload_type, negotiated.mid,
                                                 negotiated.extensions)
        self.packets = 0
        self.octets = 0
        self.last_timestamp = 0      # RTP timestamp of the last frame sent (RTCP SR)
        self.dropped = 0             # packets the socket would not take
        self.retransmitted = 0

    def start(self, rendition_seq: int) -> None:
        """From the packet ``rendition_seq`` on, continuing the viewer's own numbering."""
        self.offset = (self.next_seq - rendition_seq) & _SEQ
        self.since = self.next_seq

    def send(self, payloads: list[bytes], first_seq: int, timestamp: int, abs_time: int, route: Route) -> int:
        """One frame's packets; the bytes of payload sent, or -1 when the socket would not take one (the
        rest of the frame is not sent: the caller resyncs the viewer at a keyframe)."""
        assert self.offset is not None
        sock, address = route
        header = self.header
        ts = (timestamp + self.origin) & 0xFFFFFFFF
        if self.abs_at is not None:
            header[self.abs_at:self.abs_at + 3] = (abs_time & 0xFFFFFF).to_bytes(3, "big")
        pt = self.negotiated.payload_type
        last = len(payloads) - 1
        first = seq = (first_seq + self.offset) & _SEQ
        protect = self.protect
        packets = []
        for i, payload in enumerate(payloads):
            _HEADER.pack_into(header, 1, pt | 0x80 if i == last else pt, seq, ts)
            try:
                packets.append(protect(header, payload))
            except pylibsrtp.Error:  # SRTP refused: lost, as a packet the socket would not take
                break
            seq = (seq + 1) & _SEQ
        out = send_packets(sock, packets, address)  # EAGAIN (the shared socket is full), no route: the rest lost
        if out < len(payloads):
            self.dropped += 1
            self.next_seq = (first + out) & _SEQ  # the viewer's numbering goes on from the first packet not sent
            return -1
        sent = sum(map(len, payloads))
        self.next_seq = seq
        self.packets += len(payloads)
        self.octets += sent
        self.last_timestamp = ts
        return sent

    def rendition_seq(self, viewer_seq: int) -> int | None:
        """The rendition packet a NACKed viewer sequence number stands for; None when it was sent before the
        current offset (a resync or rendition change) or was never sent."""
        if self.offset is None:
            return None
        if (viewer_seq - self.since) & _SEQ >= (self.next_seq - self.since) & _SEQ:
            return None
        return (viewer_seq - self.offset) & _SEQ

    def resend(self, viewer_seq: int, packet: CachedPacket, route: Route) -> bool:
        """Answer a NACK: the packet again, wrapped in RTX (RFC 4588) when the peer negotiated it."""
        sock, address = route
        ts = (packet.timestamp + self.origin) & 0xFFFFFFFF
        if self.rtx_header is not None and self.negotiated.rtx_payload_type is not None:
            header = self.rtx_header
            pt, seq = self.negotiated.rtx_payload_type, self.rtx_seq
            self.rtx_seq = (self.rtx_seq + 1) & _SEQ
            body = struct.pack("!H", viewer_seq) + packet.payload
        else:
            header, pt, seq, body = self.header, self.negotiated.payload_type, viewer_seq, packet.payload
        _HEADER.pack_into(header, 1, pt | 0x80 if packet.marker else pt, seq, ts)
        try:
            sock.sendto(self.protect(header, body), address)
        except OSError:
            self.dropped += 1
            return False
        except pylibsrtp.Error:  # a session that refuses to protect an index twice (aiortc's allows it)
            return False
        self.retransmitted += 1
        return True
