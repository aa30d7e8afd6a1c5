"""Kiln's per-viewer RTP out: the header a browser parses, SRTP it can remove, NACKs from the cache."""

from __future__ import annotations

import os

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx
from pylibsrtp import Policy, Session

from kiln.media.rtc.aiortc_send import protector
from kiln.media.rtc.rtp_out import ABS_SEND_TIME_URI, MID_URI, CachedPacket, Negotiated, PacketCache, TrackOut

ADDRESS = ("192.0.2.7", 40000)
EXTENSIONS = ((MID_URI, 4), (ABS_SEND_TIME_URI, 2))


class Wire:
    """What the shared UDP socket was asked to send; ``full`` makes it refuse as a full non-blocking socket does."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.full = False

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
        if self.full:
            raise BlockingIOError
        self.sent.append((data, address))
        return len(data)


class Browser:
    """The receiving end: removes SRTP with the same key and parses RTP as aiortc's receiver does."""

    def __init__(self, key: bytes) -> None:
        self.srtp = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(RTCRtpSendParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=i, uri=uri) for uri, i in EXTENSIONS]))

    def read(self, wire: Wire) -> list[RtpPacket]:
        packets = [RtpPacket.parse(self.srtp.unprotect(data), self.extensions) for data, _ in wire.sent]
        wire.sent.clear()
        return packets


def _pair(rtx: bool = False) -> tuple[TrackOut, Browser]:
    key = os.urandom(30)
    policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc's DTLS transport makes its sending session: NACKs resend an index
    sender = Session(policy)
    negotiated = Negotiated(ssrc=0x11223344, payload_type=102, mid="0", extensions=EXTENSIONS,
                            rtx_payload_type=103 if rtx else None, rtx_ssrc=0x55667788)
    return TrackOut(negotiated, protector(sender), clock_origin=1000, first_seq=500), Browser(key)


def test_the_header_carries_the_viewers_ssrc_sequence_clock_marker_and_extensions() -> None:
    out, browser = _pair()
    wire = Wire()
    out.start(rendition_seq=70)
    assert out.send([b"a" * 1100, b"b" * 1100, b"c" * 10], 70, 9000, abs_time=0x123456, route=(wire, ADDRESS)) == 2210
    packets = browser.read(wire)
    assert [p.sequence_number for p in packets] == [500, 501, 502]
    assert {p.ssrc for p in packets} == {0x11223344} and {p.payload_type for p in packets} == {102}
    assert [p.marker for p in packets] == [0, 0, 1]
    assert {p.timestamp for p in packets} == {10000}
    assert [p.payload for p in packets] == [b"a" * 1100, b"b" * 1100, b"c" * 10]
    assert all(p.extensions.mid == "0" and p.extensions.abs_send_time == 0x123456 for p in packets)
    out.send([b"d"], 73, 12000, abs_time=1, route=(wire, ADDRESS))
    (next_packet,) = browser.read(wire)
    assert next_packet.sequence_number == 503 and next_packet.timestamp == 13000 and next_packet.marker == 1
    assert out.packets == 4 and out.octets == 2211 and out.last_timestamp == 13000


def test_a_restart_keeps_the_viewers_numbering_continuous() -> None:
    out, browser = _pair()
    wire = Wire()
    out.start(10)
    out.send([b"a", b"b"], 10, 0, 0, (wire, ADDRESS))
    out.start(9000)           # another rendition's (or a later keyframe's) numbering
    out.send([b"c"], 9000, 3000, 0, (wire, ADDRESS))
    assert [p.sequence_number for p in browser.read(wire)] == [500, 501, 502]


def test_a_nack_is_answered_from_the_cache_and_not_across_a_restart() -> None:
    out, browser = _pair()
    wire, cache = Wire(), PacketCache(64)
    out.start(40)
    for seq, payload in ((40, b"x1"), (41, b"x2")):
        cache.put(CachedPacket(seq, payload, seq == 41, 3000))
    out.send([b"x1", b"x2"], 40, 3000, 0, (wire, ADDRESS))
    del wire.sent[1]                             # lost on the way: the browser NACKs 501
    (first,) = browser.read(wire)
    assert out.rendition_seq(501) == 41
    assert out.resend(501, cache.get(41), (wire, ADDRESS))  # type: ignore[arg-type]
    (again,) = browser.read(wire)
    assert (again.sequence_number, again.payload, again.marker, again.timestamp) == (501, b"x2", 1, first.timestamp)
    assert out.rendition_seq(502) is None        # never sent
    out.start(7)
    assert out.rendition_seq(501) is None        # sent under the previous offset: another packet now
    assert cache.get(41 + 64) is None and cache.get(41) is not None


def test_with_rtx_a_resend_is_wrapped_with_its_original_sequence_number() -> None:
    out, browser = _pair(rtx=True)
    wire = Wire()
    out.start(0)
    out.send([b"payload"], 0, 0, 0, (wire, ADDRESS))
    browser.read(wire)
    assert out.resend(500, CachedPacket(0, b"payload", True, 0), (wire, ADDRESS))
    (rtx,) = browser.read(wire)
    assert rtx.payload_type == 103 and rtx.ssrc == 0x55667788
    assert unwrap_rtx(rtx, payload_type=102, ssrc=0x11223344).sequence_number == 500
    assert unwrap_rtx(rtx, payload_type=102, ssrc=0x11223344).payload == b"payload"


def test_a_socket_that_will_not_take_a_packet_costs_the_frame_not_a_wait() -> None:
    out, browser = _pair()
    wire = Wire()
    out.start(0)
    wire.full = True
    assert out.send([b"a", b"b"], 0, 0, 0, (wire, ADDRESS)) == -1
    assert out.dropped == 1 and out.next_seq == 500 and not wire.sent


def test_a_packet_srtp_refuses_is_lost_not_an_exception_in_the_send_loop() -> None:
    key = os.urandom(30)
    strict = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))  # no repeated index allowed
    out = TrackOut(Negotiated(ssrc=1, payload_type=96), protector(strict), clock_origin=0, first_seq=10)
    wire = Wire()
    out.start(0)
    assert out.send([b"a"], 0, 0, 0, (wire, ADDRESS)) == 1
    out.next_seq = 10  # the same index again: libsrtp refuses it
    out.start(0)
    assert out.send([b"a"], 0, 0, 0, (wire, ADDRESS)) == -1 and out.dropped == 1


def test_the_direct_protect_makes_what_pylibsrtp_makes() -> None:
    key = os.urandom(30)
    direct = protector(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)))
    public = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    header = bytearray(bytes.fromhex("80660001000000640000beef"))
    assert direct(header, b"payload" * 100) == public.protect(bytes(header) + b"payload" * 100)
