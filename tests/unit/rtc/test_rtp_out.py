"""Kiln's per-viewer RTP out: the header a browser parses, SRTP it can remove, NACKs from the cache."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx
from pylibsrtp import Policy, Session

from kiln.media.rtc.aiortc_send import LockedSession, protector
from kiln.media.rtc.rtp_out import (
    ABS_SEND_TIME_URI,
    MID_URI,
    UDP_SEGMENT,
    CachedPacket,
    Negotiated,
    PacketCache,
    Segmentation,
    TrackOut,
    send_packets,
)

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
    return TrackOut(negotiated, protector(LockedSession(sender)), clock_origin=1000, first_seq=500), Browser(key)


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
    out = TrackOut(Negotiated(ssrc=1, payload_type=96), protector(LockedSession(strict)), clock_origin=0, first_seq=10)
    wire = Wire()
    out.start(0)
    assert out.send([b"a"], 0, 0, 0, (wire, ADDRESS)) == 1
    out.next_seq = 10  # the same index again: libsrtp refuses it
    out.start(0)
    assert out.send([b"a"], 0, 0, 0, (wire, ADDRESS)) == -1 and out.dropped == 1


def test_the_direct_protect_makes_what_pylibsrtp_makes() -> None:
    key = os.urandom(30)
    direct = protector(LockedSession(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))))
    public = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    header = bytearray(bytes.fromhex("80660001000000640000beef"))
    assert direct(header, b"payload" * 100) == public.protect(bytes(header) + b"payload" * 100)


def test_rtp_protected_on_send_threads_and_rtcp_on_the_loop_share_the_session_safely() -> None:
    """Feed threads protect RTP (the direct path, or pylibsrtp's own, which has one buffer per session) while
    aiortc protects its SRs with the same libsrtp session on the loop: every packet must decrypt, none garbled
    by another thread."""
    key = os.urandom(30)
    locked = LockedSession(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)))
    direct = protector(locked)
    rtp: dict[int, list[bytes]] = {0x11: [], 0x22: []}
    rtcp: list[bytes] = []

    def send_rtp(ssrc: int) -> None:
        header = bytearray(bytes.fromhex("806600000000006400000000"))
        header[8:12] = ssrc.to_bytes(4, "big")
        for seq in range(2000):
            header[2:4] = seq.to_bytes(2, "big")
            payload = bytes([seq & 0xFF]) * 1000
            rtp[ssrc].append(direct(header, payload) if ssrc == 0x11 else locked.protect(bytes(header) + payload))

    threads = [threading.Thread(target=send_rtp, args=(ssrc,)) for ssrc in rtp]
    for thread in threads:
        thread.start()
    sr = bytes.fromhex("80c8000600000011") + bytes(20)  # a sender report
    while any(t.is_alive() for t in threads) or len(rtcp) < 300:
        rtcp.append(locked.protect_rtcp(sr))
    for thread in threads:
        thread.join()
    receiver = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    for packets in rtp.values():
        assert [receiver.unprotect(p)[12] for p in packets] == [seq & 0xFF for seq in range(2000)]
    assert all(receiver.unprotect_rtcp(p) == sr for p in rtcp)


class GsoWire:
    """A socket with ``sendmsg``: records each call as the datagrams the kernel would cut from it."""

    def __init__(self, refuse: int | None = None, full_after: int | None = None) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []
        self.refuse = refuse          # errno sendmsg with segmentation fails with (a kernel without it)
        self.full_after = full_after  # datagrams taken before the socket is full

    def _take(self, kind: str, datagrams: list[bytes]) -> None:
        taken = sum(len(d) for _, d in self.calls)
        if self.full_after is not None and taken + len(datagrams) > self.full_after:
            raise BlockingIOError(errno.EAGAIN, "full")
        self.calls.append((kind, datagrams))

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
        self._take("sendto", [data])
        return len(data)

    def sendmsg(self, buffers: list[bytes], ancdata: list[tuple[int, int, bytes]], flags: int,
                address: tuple[str, int], /) -> int:
        ((level, kind, value),) = ancdata
        assert (level, kind) == (socket.SOL_UDP, UDP_SEGMENT) and flags == 0
        if self.refuse is not None:
            raise OSError(self.refuse, "refused")
        size = struct.unpack("=H", value)[0]
        data = b"".join(buffers)
        datagrams = [data[i:i + size] for i in range(0, len(data), size)]
        assert datagrams == buffers  # what the receiver gets is what was protected, packet by packet
        self._take("gso", datagrams)
        return len(data)


@pytest.fixture
def segmentation() -> Iterator[None]:
    yield
    Segmentation.enabled = True  # a test that turned it off does not leave it off


def test_runs_of_one_size_go_in_one_offloaded_send_and_the_rest_one_by_one(segmentation: None) -> None:
    packets = [b"s" * 40, *(b"f" * 1200 for _ in range(40)), b"l" * 300, b"o" * 90, b"o" * 90]
    wire = GsoWire()
    assert send_packets(wire, packets, ADDRESS) == len(packets)
    assert [(kind, len(d)) for kind, d in wire.calls] == [("sendto", 1), ("gso", 32), ("gso", 9), ("gso", 2)]
    assert [d for _, datagrams in wire.calls for d in datagrams] == packets  # order kept


def test_a_kernel_that_refuses_offload_gets_one_datagram_per_packet_from_then_on(segmentation: None) -> None:
    packets = [b"f" * 1200] * 3 + [b"l" * 10]
    wire = GsoWire(refuse=errno.EIO)
    assert send_packets(wire, packets, ADDRESS) == 4 and not Segmentation.enabled
    assert [kind for kind, _ in wire.calls] == ["sendto"] * 4


def test_a_full_socket_stops_the_frame_where_it_refused(segmentation: None) -> None:
    packets = [b"a" * 40, *(b"f" * 1200 for _ in range(5))]
    assert send_packets(GsoWire(full_after=3), packets, ADDRESS) == 1  # the run of five did not fit
    out, browser = _pair()
    wire = GsoWire(full_after=3)
    out.start(0)
    assert out.send([b"x" * 40, *(b"y" * 1200 for _ in range(4))], 0, 0, 0, (wire, ADDRESS)) == -1
    assert out.dropped == 1 and out.next_seq == 501  # the viewer's numbering goes on after the one sent
