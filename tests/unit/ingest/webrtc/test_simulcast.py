"""Simulcast through WHIP: the offer's layers are accepted in the answer, each SSRC becomes a track."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtp import RtpPacket

from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.ingest.webrtc.simulcast import RID_URI, RRID_URI, accept_layers, offered_layers
from kiln.media.ingest.webrtc.tap import LayerNacks, ReceiverTap
from tests.unit.ingest.webrtc.test_tap import Sink, _packets, _transceiver

# the video m-section Chromium offers with three sendEncodings (trimmed to what matters here)
OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendonly", "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 102 103", "a=mid:1", "a=sendonly",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    f"a=extmap:10 {RID_URI}",
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "a=rtpmap:102 H264/90000", "a=rtpmap:103 rtx/90000",
    "a=rid:h send", "a=rid:m send", "a=rid:l send", "a=simulcast:send h;m;l", ""])
ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly", "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 102 103", "a=mid:1", "a=recvonly",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=rtpmap:102 H264/90000", ""])


def test_the_offers_layers_are_read_and_accepted_on_their_m_section() -> None:
    layers = offered_layers(OFFER)
    assert list(layers) == ["1"] and layers["1"].rids == ("h", "m", "l") and layers["1"].rid_extension == 10
    assert layers["1"].rrid_extension == 11
    answer = accept_layers(ANSWER, layers)
    audio, video = answer.split("m=video")
    assert "a=rid" not in audio and "a=simulcast" not in audio
    assert video.splitlines()[-6:] == [f"a=extmap:10 {RID_URI}", f"a=extmap:11 {RRID_URI}", "a=rid:h recv",
                                       "a=rid:m recv", "a=rid:l recv", "a=simulcast:recv h;m;l"]
    assert answer.endswith("\r\n") and "\n\n" not in answer.replace("\r\n", "\n")


def test_paused_alternative_and_unknown_rids_and_offers_without_simulcast() -> None:
    offer = OFFER.replace("a=simulcast:send h;m;l", "a=simulcast:send h,x;~m;l;z")
    assert offered_layers(offer)["1"].rids == ("h", "l")  # ~m paused, x an alternative, z has no a=rid
    assert offered_layers(OFFER.replace("a=simulcast:send h;m;l", "a=simulcast:send h;~m;~l")) == {}  # one layer
    assert offered_layers(OFFER.replace("a=simulcast:send", "a=simulcast:recv")) == {}
    plain = OFFER.replace("a=simulcast:send h;m;l\r\n", "")
    assert offered_layers(plain) == {} and accept_layers(ANSWER, {}) == ANSWER


def test_each_negotiated_layer_is_a_track_and_ssrcs_beyond_them_are_dropped() -> None:
    sink = Sink()
    pipeline = IngestPipeline(sink, gate_s=0.0, expected_tracks=2)
    tap = ReceiverTap(_transceiver(), pipeline, layers=2)
    high = _packets(2222)
    for packet in high:
        packet.sequence_number += 20000
    for a, b in zip(_packets(1111), high, strict=True):  # the layers' packets interleave
        tap.add(a)
        tap.add(b)
    for packet in _packets(3333):
        assert tap.add(packet) == (False, None)
    assert tap.ssrcs == {1111: 0, 2222: 1} and tap.counters.foreign_ssrc == len(_packets(3333))
    assert sorted(p.track_id for p in sink.packets) == [0, 0, 0, 1, 1, 1]
    assert len(sink.tracks) == 2


def test_nacks_follow_each_layers_own_sequence() -> None:
    nacks = LayerNacks()
    low, high = _packets(1111), _packets(2222)
    for packet in high:
        packet.sequence_number += 20000  # each SSRC has its own sequence: one generator would see gaps
    for packet in low[:2] + high[:2]:  # no loss in either
        assert nacks.add(packet) is False
    assert nacks.add(low[3]) is True and nacks.missing == {low[2].sequence_number}
    assert nacks.add(high[2]) is False and nacks.missing == set()  # the missing set of the SSRC just added


class FakeReceiver:
    """The aiortc receiver's names the tap takes over (aiortc 1.16), recording what reaches aiortc's handler."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__jitter_buffer = None
        self._RTCRtpReceiver__nack_generator = None
        self._RTCRtpReceiver__rtx_ssrc: dict[int, int] = {}
        self.handled: list[int] = []

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        self.handled.append(packet.ssrc)

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        pass

    async def _send_rtcp_nack(self, media_ssrc: int, lost: list[int]) -> None:
        pass


def _rtp(ssrc: int, payload_type: int, *, rid: str | None = None, rrid: str | None = None) -> RtpPacket:
    packet = RtpPacket(payload_type=payload_type, sequence_number=1, timestamp=0, ssrc=ssrc, payload=b"\x00\x01ab")
    packet.extensions.rtp_stream_id, packet.extensions.repaired_rtp_stream_id = rid, rrid
    return packet


def test_a_layer_s_retransmissions_are_matched_to_it_by_the_rid_they_repair() -> None:
    async def main() -> None:
        transceiver = _transceiver()
        receiver = transceiver.receiver = FakeReceiver()
        tap = ReceiverTap(transceiver, IngestPipeline(Sink(), gate_s=0.0, expected_tracks=2), layers=2)
        tap.install()
        rtx_map = receiver._RTCRtpReceiver__rtx_ssrc
        handle = receiver._handle_rtp_packet
        await handle(_rtp(9001, 103, rrid="h"), arrival_time_ms=0)  # before layer h is known: not matched
        assert rtx_map == {} and tap.counters.rtx == 0
        await handle(_rtp(1111, 102, rid="h"), arrival_time_ms=0)
        await handle(_rtp(2222, 102, rid="l"), arrival_time_ms=0)
        await handle(_rtp(3333, 102, rid="x"), arrival_time_ms=0)  # more rids than layers: not learned
        assert tap.rids == {"h": 1111, "l": 2222}
        await handle(_rtp(9001, 103, rrid="h"), arrival_time_ms=0)
        await handle(_rtp(9002, 103, rrid="l"), arrival_time_ms=0)
        await handle(_rtp(9003, 103, rrid="x"), arrival_time_ms=0)  # repairs no known layer
        await handle(_rtp(9004, 103), arrival_time_ms=0)            # says nothing
        assert rtx_map == {9001: 1111, 9002: 2222} and tap.counters.rtx == 2
        # every packet still goes to aiortc, which unwraps the matched RTX with the layer's SSRC
        assert receiver.handled == [9001, 1111, 2222, 3333, 9001, 9002, 9003, 9004]

    asyncio.run(main())
