"""The aiortc seam: the first SSRC and payload type of a receiver are its track; packets from another SSRC or
with a payload type that was not negotiated are counted and dropped, never fed to the pipeline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.ingest.webrtc.tap import ReceiverTap
from kiln.media.model import Codec, Packet, Track
from tests.unit.ingest.webrtc.rtp_media import h264_frames


class Sink:
    def __init__(self) -> None:
        self.tracks: list[Track] = []
        self.packets: list[Packet] = []

    def on_track(self, track: Track) -> None:
        self.tracks.append(track)

    def on_packet(self, packet: Packet) -> None:
        self.packets.append(packet)


def _transceiver() -> Any:
    h264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102,
                                 parameters={"packetization-mode": "1", "profile-level-id": "42e01f"})
    rtx = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=103, parameters={"apt": 102})
    return SimpleNamespace(kind="video", receiver=None, _codecs=[h264, rtx])


def _packets(ssrc: int, payload_type: int = 102) -> list[RtpPacket]:
    out = []
    seq = 1000
    for n, frame in enumerate(h264_frames(3)):
        for i, payload in enumerate(frame.payloads):
            out.append(RtpPacket(payload_type=payload_type, marker=int(i == len(frame.payloads) - 1),
                                 sequence_number=seq, timestamp=n * 3000, ssrc=ssrc, payload=payload))
            seq += 1
    return out


def test_the_first_ssrc_is_the_track_and_a_second_one_is_dropped() -> None:
    sink = Sink()
    pipeline = IngestPipeline(sink, gate_s=0.0)
    tap = ReceiverTap(_transceiver(), pipeline)
    for packet in _packets(1111):
        tap.add(packet)
    for packet in _packets(2222):  # a second source in the same m-line (not negotiated simulcast)
        assert tap.add(packet) == (False, None)
    assert tap.codec is Codec.H264 and tap.ssrc == 1111
    assert [p.pts for p in sink.packets] == [0, 3000, 6000]
    assert tap.counters.foreign_ssrc == len(_packets(2222))
    assert tap.counters.packets == len(_packets(1111))


def test_payload_types_that_were_not_negotiated_are_dropped() -> None:
    sink = Sink()
    tap = ReceiverTap(_transceiver(), IngestPipeline(sink, gate_s=0.0))
    for packet in _packets(1111, payload_type=96):
        assert tap.add(packet) == (False, None)
    assert tap.track_id is None and not sink.packets
    assert tap.counters.unknown_codec == len(_packets(1111))
