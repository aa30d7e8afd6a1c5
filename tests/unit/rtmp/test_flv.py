"""FLV tag bodies -> Tracks and Packets, checked against PyAV's own FLV demuxer on the same bytes."""

from __future__ import annotations

import struct

import pytest

from kiln.media.formats.codecs import h264
from kiln.media.formats.codecs.nal import iter_length_prefixed, length_prefixed_to_annexb
from kiln.media.formats.flv import AUDIO_TRACK_ID, VIDEO_TRACK_ID, FlvConverter, TimestampUnwrapper
from kiln.media.formats.rtmp.errors import FlvError
from kiln.media.model import MS, Codec, MediaKind, Packet, Track
from tests.unit.codecs.media import encode_video
from tests.unit.rtmp.media import FlvTag, make_flv, reference_packets, sorted_tags


def convert(conv: FlvConverter, tags: list[FlvTag]) -> list[Track | Packet]:
    out: list[Track | Packet] = []
    for tag in tags:
        if tag.type_id == 9:
            result = conv.convert_video(tag.timestamp, tag.body)
        elif tag.type_id == 8:
            result = conv.convert_audio(tag.timestamp, tag.body)
        else:
            continue
        if result is not None:
            out.append(result)
    return out


def _compare_with_reference(flv: bytes, enhanced: bool = False) -> tuple[list[Track], list[Packet]]:
    results = convert(FlvConverter(enhanced), sorted_tags(flv))
    tracks = [r for r in results if isinstance(r, Track)]
    packets = [r for r in results if isinstance(r, Packet)]
    ref = reference_packets(flv)
    for track_id, is_video in ((VIDEO_TRACK_ID, True), (AUDIO_TRACK_ID, False)):
        ours = [(p.pts, p.dts, p.keyframe, p.data) for p in packets if p.track_id == track_id]
        theirs = [(r.pts, r.dts, r.keyframe, r.data) for r in ref if r.video is is_video]
        assert ours == theirs
    return tracks, packets


def test_h264_aac_tracks_and_packets_match_pyav() -> None:
    tracks, packets = _compare_with_reference(make_flv())
    video, audio = tracks
    assert (video.id, video.kind, video.codec, video.width, video.height) == (0, MediaKind.VIDEO, Codec.H264, 320, 180)
    assert (audio.id, audio.kind, audio.codec, audio.sample_rate, audio.channels) == (1, MediaKind.AUDIO, Codec.AAC,
                                                                                      48000, 2)
    assert all(p.time_base == MS for p in packets)
    first_video = next(p for p in packets if p.track_id == 0)
    first_audio = next(p for p in packets if p.track_id == 1)
    assert first_video.config == video.config and first_audio.config == audio.config
    assert sum(p.config is not None for p in packets) == 2  # only the first packet of each track carries it
    assert all(h264.is_keyframe(p.data) == p.keyframe for p in packets if p.track_id == 0)


def test_bframes_keep_composition_offsets() -> None:
    _, packets = _compare_with_reference(make_flv(bframes=2))
    video = [p for p in packets if p.track_id == 0]
    assert any(p.pts != p.dts for p in video)
    assert all(b.dts > a.dts for a, b in zip(video, video[1:], strict=False))


def test_negative_composition_time() -> None:
    conv = FlvConverter()
    tags = sorted_tags(make_flv())
    convert(conv, [t for t in tags if t.type_id == 9][:1])  # the sequence header
    frame = next(t for t in tags if t.type_id == 9 and t.body[1] == 1)
    body = frame.body[:2] + (-40 & 0xFFFFFF).to_bytes(3, "big") + frame.body[5:]
    packet = conv.convert_video(1000, body)
    assert isinstance(packet, Packet) and (packet.dts, packet.pts) == (1000, 960)


def test_timestamps_extend_past_the_32_bit_wrap() -> None:
    flv = make_flv()
    offset = 0xFFFFFFFF - 400  # the stream crosses 2^32 ms after 0.4 s
    tags = [FlvTag(t.type_id, (t.timestamp + offset) & 0xFFFFFFFF, t.body) for t in sorted_tags(flv)]
    packets = [r for r in convert(FlvConverter(), tags) if isinstance(r, Packet)]
    ref = reference_packets(flv)
    assert [p.dts for p in packets if p.track_id == 0] == [r.dts + offset for r in ref if r.video]
    assert max(p.dts for p in packets) > 1 << 32


def test_unwrapper_follows_small_steps_back_and_forth() -> None:
    clock = TimestampUnwrapper()
    assert [clock(t) for t in (0xFFFFFFF0, 0xFFFFFFFA, 5, 0xFFFFFFFE, 20)] == \
        [0xFFFFFFF0, 0xFFFFFFFA, 0x100000005, 0xFFFFFFFE, 0x100000014]


def test_hevc_needs_enhanced_rtmp() -> None:
    flv = make_flv("libx265", bframes=2)
    with pytest.raises(FlvError, match="Enhanced RTMP is disabled"):
        convert(FlvConverter(enhanced=False), sorted_tags(flv))
    tracks, packets = _compare_with_reference(flv, enhanced=True)
    assert (tracks[0].codec, tracks[0].width, tracks[0].codec_string) == (Codec.H265, 320, "hvc1.1.6.L60.90")
    assert any(p.pts != p.dts for p in packets if p.track_id == 0)


def test_enhanced_coded_frames_x_and_modex() -> None:
    conv = FlvConverter(enhanced=True)
    tags = sorted_tags(make_flv("libx265", bframes=2))
    start = next(t for t in tags if t.type_id == 9 and t.body[0] & 0x0F == 0)
    frame = next(t for t in tags if t.type_id == 9 and t.body[0] & 0x0F == 1)
    assert isinstance(conv.convert_video(0, start.body), Track)
    data = frame.body[8:]  # after header byte, FourCC, SI24
    x_body = bytes([0x93]) + b"hvc1" + data  # CodedFramesX: keyframe, no composition time
    packet = conv.convert_video(40, x_body)
    assert isinstance(packet, Packet) and (packet.pts, packet.dts, packet.data) == (40, 40, data)
    # ModEx (type 7) wrapping a TimestampOffsetNano (3 bytes) in front of CodedFrames
    modex = bytes([0x97, 2]) + b"\x00\x01\x00" + bytes([0x01]) + b"hvc1" + b"\x00\x00\x21" + data
    packet = conv.convert_video(80, modex)
    assert isinstance(packet, Packet) and (packet.dts, packet.pts, packet.keyframe) == (80, 113, True)


def test_enhanced_avc1_fourcc() -> None:
    conv = FlvConverter(enhanced=True)
    tags = sorted_tags(make_flv())
    header = next(t for t in tags if t.type_id == 9)
    track = conv.convert_video(0, bytes([0x90]) + b"avc1" + header.body[5:])
    assert isinstance(track, Track) and track.codec is Codec.H264


def test_repeated_sequence_header_is_not_a_new_track() -> None:
    conv = FlvConverter()
    tags = sorted_tags(make_flv())
    header = next(t for t in tags if t.type_id == 9)
    frames = [t for t in tags if t.type_id == 9 and t.body[1] == 1]
    assert isinstance(conv.convert_video(0, header.body), Track)
    assert conv.convert_video(0, header.body) is None
    first = conv.convert_video(frames[0].timestamp, frames[0].body)
    assert isinstance(first, Packet) and first.config is not None
    assert conv.convert_video(frames[1].timestamp, frames[1].body).config is None  # type: ignore[union-attr]
    # a changed configuration (the encoder switched to 640x360) is a new Track; the next packet carries it
    bigger = encode_video("libx264", 640, 360).extradata
    track = conv.convert_video(100, bytes([0x17, 0, 0, 0, 0]) + bigger)
    assert isinstance(track, Track) and (track.width, track.height, track.config) == (640, 360, bigger)
    second = conv.convert_video(frames[2].timestamp, frames[2].body)
    assert isinstance(second, Packet) and second.config == bigger


def test_frames_before_the_sequence_header_are_dropped() -> None:
    conv = FlvConverter()
    tags = sorted_tags(make_flv())
    frame = next(t for t in tags if t.type_id == 9 and t.body[1] == 1)
    audio = next(t for t in tags if t.type_id == 8 and t.body[1] == 1)
    assert conv.convert_video(frame.timestamp, frame.body) is None
    assert conv.convert_audio(audio.timestamp, audio.body) is None


def test_two_byte_nal_lengths_and_annexb_payloads_become_four_byte_lengths() -> None:
    tags = sorted_tags(make_flv())
    header = next(t for t in tags if t.type_id == 9)
    frame = next(t for t in tags if t.type_id == 9 and t.body[1] == 1)
    avcc = bytearray(header.body[5:])
    avcc[4] = 0xFC | 1  # lengthSizeMinusOne = 1
    conv = FlvConverter()
    track = conv.convert_video(0, header.body[:5] + bytes(avcc))
    # the frames are re-prefixed with 4-byte lengths: the record players get (fMP4 avcC, pushes) says 4
    assert isinstance(track, Track) and track.config == header.body[5:]
    assert conv.convert_video(0, header.body[:5] + bytes(avcc)) is None  # the same header again: nothing new
    nals = [bytes(n) for n in iter_length_prefixed(frame.body[5:])]
    two = b"".join(struct.pack(">H", len(n)) + n for n in nals)
    packet = conv.convert_video(frame.timestamp, frame.body[:5] + two)
    assert isinstance(packet, Packet) and packet.data == frame.body[5:] and packet.config == header.body[5:]
    conv = FlvConverter()
    conv.convert_video(0, header.body)
    packet = conv.convert_video(frame.timestamp, frame.body[:5] + length_prefixed_to_annexb(frame.body[5:]))
    assert isinstance(packet, Packet) and packet.data == frame.body[5:]


@pytest.mark.parametrize(("body", "reason"), [
    (bytes([0x2F, 0x01]) + b"mp3 frame", "MP3"),
    (bytes([0xB6]) + b"speex", "Speex"),
    (bytes([0x9F]) + b"Opus" + b"\x00", "Opus"),
])
def test_unsupported_audio_codecs_have_a_clear_reason(body: bytes, reason: str) -> None:
    with pytest.raises(FlvError, match=reason):
        FlvConverter(enhanced=True).convert_audio(0, body)


@pytest.mark.parametrize(("body", "reason"), [
    (bytes([0x12, 0, 0, 0, 0]), "Sorenson"),
    (bytes([0x14, 0, 0, 0, 0]), "VP6"),
    (bytes([0x17, 0x00, 0, 0, 0, 0x00]), "bad H264 sequence header"),
    (bytes([0x17, 0x07, 0, 0, 0]), "packet type 7"),
    (bytes([0x17, 0x01]), "too short"),
    (bytes([0x90]) + b"av01", "av01"),
    (bytes([0x96, 0x00]) + b"hvc1", "multitrack"),
    (bytes([0x97, 0xFF]), "ModEx"),
])
def test_bad_or_unsupported_video(body: bytes, reason: str) -> None:
    with pytest.raises(FlvError, match=reason):
        FlvConverter(enhanced=True).convert_video(0, body)


def test_corrupt_nal_lengths_are_a_protocol_error() -> None:
    tags = sorted_tags(make_flv())
    conv = FlvConverter()
    conv.convert_video(0, next(t for t in tags if t.type_id == 9).body)
    with pytest.raises(FlvError, match="not a valid length-prefixed"):
        conv.convert_video(0, bytes([0x27, 0x01, 0, 0, 0]) + b"\x00\x00\x10\x00\x65")


def test_commands_and_sequence_ends_carry_nothing() -> None:
    conv = FlvConverter(enhanced=True)
    assert conv.convert_video(0, bytes([0x57, 0x00])) is None          # legacy command frame
    assert conv.convert_video(0, bytes([0x17, 0x02, 0, 0, 0])) is None  # AVC end of sequence
    assert conv.convert_video(0, bytes([0x92]) + b"hvc1") is None       # SequenceEnd
    assert conv.convert_video(0, b"") is None
    assert conv.convert_audio(0, b"") is None
