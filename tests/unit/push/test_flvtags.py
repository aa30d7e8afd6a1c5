"""FLV tags built for RTMP pushes read back through Kiln's own RTMP ingest converter."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from kiln.media.formats.codecs.aac import build_asc
from kiln.media.formats.flv import FlvConverter
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.push import flvtags
from tests.unit.transcode.clip import make_clip

TB = Fraction(1, 90000)


def test_sequence_headers_and_frames_round_trip_through_the_ingest_parser() -> None:
    clip = make_clip(320, 180, seconds=0.5)
    video = clip.video
    audio = Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), build_asc(2, 48000, 2))
    converter = FlvConverter()
    _, body = flvtags.sequence_header(video)
    described = converter.convert_video(0, body)
    assert isinstance(described, Track) and described.config == video.config and described.width == 320
    _, abody = flvtags.sequence_header(audio)
    assert converter.convert_audio(0, abody).config == audio.config
    first = next(p for p in clip.packets if p.track_id == video.id)
    shifted = Packet(video.id, first.pts + 33 + 100, first.dts + 100, first.time_base, first.data, keyframe=True)
    _, ts, tag = flvtags.media_tag(video, shifted, offset=100)
    back = converter.convert_video(ts, tag)
    assert isinstance(back, Packet) and back.data == first.data and back.keyframe
    assert (back.dts, back.pts - back.dts) == (first.dts * first.time_base * 1000, 33)
    aac = Packet(1, 96000, 96000, Fraction(1, 48000), b"\x21\x10raw")
    _, ats, atag = flvtags.media_tag(audio, aac, offset=48000)
    assert ats == 1000 and converter.convert_audio(ats, atag).data == b"\x21\x10raw"
    assert flvtags.sequence_header(Track(2, MediaKind.AUDIO, Codec.OPUS, TB, b"OpusHead")) is None


@given(st.integers(-(10**12), 10**12), st.sampled_from([Fraction(1, 1000), TB, Fraction(1, 48000),
                                                         Fraction(1, 44100), Fraction(1001, 30000), Fraction(3, 7)]))
def test_ms_is_the_fraction_result_truncated_toward_zero(value: int, time_base: Fraction) -> None:
    assert flvtags.ms(value, time_base) == int(value * time_base / Fraction(1, 1000))


def test_frames_with_and_without_composition_offset_carry_it_in_the_tag_head() -> None:
    video = Track(0, MediaKind.VIDEO, Codec.H264, TB, b"\x01avcC")
    plain = flvtags.media_tag(video, Packet(0, 9000, 9000, TB, b"frame", keyframe=True), offset=0)
    assert plain == (9, 100, bytes([0x17, 1, 0, 0, 0]) + b"frame")
    reordered = flvtags.media_tag(video, Packet(0, 9000 + 6006, 9000, TB, b"frame"), offset=4500)
    assert reordered == (9, 50, bytes([0x27, 1, 0, 0, 66]) + b"frame")
    negative = flvtags.media_tag(video, Packet(0, 9000 - 90, 9000, TB, b"frame"), offset=0)
    assert negative is not None and negative[2][2:5] == (-1).to_bytes(3, "big", signed=True)
