"""FLV tags built for RTMP pushes read back through Kiln's own RTMP ingest converter."""

from __future__ import annotations

from fractions import Fraction

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
