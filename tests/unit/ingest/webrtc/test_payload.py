"""RTP payload formats: H.264 (single NAL, STAP-A, FU-A), VP8, Opus TOC, against aiortc's packetizers."""

from __future__ import annotations

import struct

import av
import pytest

from kiln.media.formats.codecs.h264 import build_avcc, parse_avcc
from kiln.media.formats.codecs.nal import to_length_prefixed
from kiln.media.formats.codecs.opus import parse_opus_head
from kiln.media.ingest.webrtc.payload import (
    RtpPayloadError,
    h264_access_unit,
    h264_nals,
    opus_head,
    opus_samples,
    vp8_frame,
)
from tests.unit.ingest.webrtc.rtp_media import h264_frames, vp8_frames


def test_h264_frames_reassemble_into_access_units_ffmpeg_decodes() -> None:
    frames = h264_frames(6)
    first = h264_access_unit(frames[0].payloads)
    assert first.keyframe and first.sps is not None and first.pps is not None
    avcc = build_avcc([first.sps], [first.pps])
    assert parse_avcc(avcc).first_sps().width == 320
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = avcc
    decoded = 0
    for frame in frames:
        au = h264_access_unit(frame.payloads)
        for picture in decoder.decode(av.Packet(to_length_prefixed(au.nals))):
            assert (picture.width, picture.height) == (320, 180)
            decoded += 1
    decoded += len(decoder.decode(None))
    assert decoded == 6


def test_h264_fu_a_sequences_that_cannot_be_a_nal_are_refused() -> None:
    payloads = h264_frames(1)[0].payloads
    fu = [p for p in payloads if p[0] & 0x1F == 28]
    assert len(fu) > 2
    with pytest.raises(RtpPayloadError, match="without its start"):
        h264_nals(fu[1:])
    with pytest.raises(RtpPayloadError, match="without its end"):
        h264_nals(fu[:-1])
    with pytest.raises(RtpPayloadError, match="before the previous"):
        h264_nals([fu[0], fu[0]])
    with pytest.raises(RtpPayloadError, match="interrupted"):
        h264_nals([fu[0], b"\x41\x00"])


@pytest.mark.parametrize("payload, message", [
    (b"", "empty"),
    (b"\x7c\x85", "truncated"),                 # FU-A with no data
    (b"\x18\x00", "truncated"),                 # STAP-A size cut
    (b"\x18\x00\x09\x67", "truncated"),         # STAP-A unit longer than the packet
    (b"\x18", "no unit"),
    (b"\x19\x00\x01\x41", "not supported"),     # STAP-B
    (b"\x1d\x80\x41", "not supported"),         # FU-B
])
def test_h264_malformed_payloads_raise_a_payload_error(payload: bytes, message: str) -> None:
    with pytest.raises(RtpPayloadError, match=message):
        h264_nals([payload])


def test_stap_a_units_are_split() -> None:
    sps, pps = b"\x67\x42\xc0\x1f", b"\x68\xce\x3c\x80"
    payload = b"\x18" + struct.pack("!H", len(sps)) + sps + struct.pack("!H", len(pps)) + pps
    assert h264_nals([payload, b"\x65\x88\x84"]) == [sps, pps, b"\x65\x88\x84"]


def test_vp8_frames_decode_and_keyframes_carry_their_size() -> None:
    frames = vp8_frames(4)
    first = vp8_frame(frames[0].payloads)
    assert first.keyframe and (first.width, first.height) == (320, 180)
    decoder = av.CodecContext.create("vp8", "r")
    decoded = 0
    for i, frame in enumerate(frames):
        vp8 = vp8_frame(frame.payloads)
        assert vp8.keyframe == (i == 0)
        decoded += len(decoder.decode(av.Packet(vp8.data)))
    assert decoded == 4


def test_vp8_frame_not_starting_partition_zero_is_refused() -> None:
    payloads = vp8_frames(1)[0].payloads
    with pytest.raises(RtpPayloadError, match="partition 0"):
        vp8_frame(payloads[1:])
    with pytest.raises(RtpPayloadError):
        vp8_frame([b""])
    with pytest.raises(RtpPayloadError, match="start code"):
        vp8_frame([b"\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"])


@pytest.mark.parametrize("packet, samples", [
    (bytes([0xFC]) + b"\x00", 960),        # config 31 (CELT 20 ms), one frame
    (bytes([0x78]) + b"\x00", 960),        # config 15 (hybrid 20 ms)
    (bytes([3 << 3 | 3]) + b"\x02", 2 * 2880),  # config 3 (SILK 60 ms), code 3 with 2 frames
    (bytes([16 << 3 | 1]) + b"\x00", 2 * 120),  # config 16 (CELT 2.5 ms), code 1: two frames
    (b"", 0),
])
def test_opus_packet_durations_come_from_the_toc(packet: bytes, samples: int) -> None:
    assert opus_samples(packet) == samples


def test_opus_head_is_what_the_codec_parser_reads() -> None:
    assert parse_opus_head(opus_head(2)).channels == 2
    assert parse_opus_head(opus_head(1)).channels == 1
