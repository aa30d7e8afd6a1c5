"""H.264 configuration parsing against real x264 bitstreams, with ffprobe/ffmpeg as the reference."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiln.media.formats.codecs import h264
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import (
    annexb_to_length_prefixed,
    convert_length_size,
    escape_rbsp,
    iter_length_prefixed,
    length_prefixed_to_annexb,
    split_annexb,
    unescape_rbsp,
)
from kiln.media.model import Codec
from tests.unit.codecs.media import encode_video, ffmpeg_dash_codecs, ffprobe_stream

# (width, height, pix_fmt, extra encoder options): one stream per SPS feature the parser must read
CASES = {
    "baseline": (320, 180, "yuv420p", (("profile", "baseline"),)),
    "main": (320, 180, "yuv420p", (("preset", "veryfast"), ("profile", "main"))),
    "high": (320, 180, "yuv420p", (("preset", "veryfast"),)),
    "high-cropped": (322, 182, "yuv420p", (("preset", "veryfast"),)),
    "high10": (320, 180, "yuv420p10le", (("preset", "veryfast"),)),
    "high422": (320, 180, "yuv422p", (("preset", "veryfast"),)),
    "high444": (320, 180, "yuv444p", (("preset", "veryfast"),)),
    "interlaced": (320, 180, "yuv420p", (("preset", "veryfast"), ("x264-params", "interlaced=1"))),
    "scaling-lists": (320, 180, "yuv420p", (("preset", "veryfast"), ("x264-params", "cqm=jvt"))),
    "level-4.1": (640, 360, "yuv420p", (("preset", "veryfast"), ("level", "4.1"))),
}


def _encoded(name: str):
    width, height, pix_fmt, options = CASES[name]
    return encode_video("libx264", width, height, pix_fmt, options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_describe_matches_ffprobe(name: str, tmp_path: Path) -> None:
    enc = _encoded(name)
    probe = ffprobe_stream(enc.mp4, tmp_path)
    track = describe_track(0, Codec.H264, enc.extradata, Fraction(1, 30))
    assert (track.width, track.height) == (probe["width"], probe["height"])
    assert track.profile == probe["profile"]
    level_idc = probe["level"]
    expected_level = f"{level_idc // 10}" if level_idc % 10 == 0 else f"{level_idc // 10}.{level_idc % 10}"
    assert track.level == expected_level
    assert track.codec_string == ffmpeg_dash_codecs(enc.mp4, tmp_path)


def test_sps_fields_of_each_feature() -> None:
    def sps(name: str) -> h264.H264Sps:
        return h264.parse_avcc(_encoded(name).extradata).first_sps()

    assert sps("high444").chroma_format_idc == 3
    assert sps("high422").chroma_format_idc == 2
    assert (sps("high10").bit_depth_luma, sps("high10").bit_depth_chroma) == (10, 10)
    assert sps("interlaced").frame_mbs_only is False
    assert sps("high").frame_mbs_only is True
    assert sps("high").fps == 30.0  # x264 writes VUI timing info
    assert sps("level-4.1").level_text == "4.1"


def test_scaling_lists_are_skipped_correctly() -> None:
    # with cqm=jvt the SPS carries seq_scaling_matrix_present_flag=1; every later field must still be right
    parsed = h264.parse_avcc(_encoded("scaling-lists").extradata).first_sps()
    raw = unescape_rbsp(h264.parse_avcc(_encoded("scaling-lists").extradata).sps[0][1:])
    assert raw[0] == 100
    assert (parsed.width, parsed.height, parsed.fps) == (320, 180, 30.0)


def test_avcc_round_trip_and_rebuild() -> None:
    for name in CASES:
        extradata = _encoded(name).extradata
        cfg = h264.parse_avcc(extradata)
        assert cfg.nal_length_size == 4
        assert cfg.to_bytes() == extradata, name
        assert h264.build_avcc(list(cfg.sps), list(cfg.pps), 4, list(cfg.sps_ext)) == extradata, name


def test_avcc_from_encoder_annexb_extradata_matches_the_muxer() -> None:
    # libx264 hands out Annex-B parameter sets; the MP4 muxer turns them into avcC. Kiln must agree.
    stream = av.CodecContext.create("libx264", "w")
    stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
    stream.time_base = Fraction(1, 30)
    stream.options = {"preset": "ultrafast"}
    stream.flags |= av.codec.context.Flags.global_header
    stream.open()
    annexb = bytes(stream.extradata)
    assert annexb.startswith(b"\x00\x00\x00\x01")
    assert h264.avcc_from_annexb(annexb) == _encoded("baseline").extradata


def test_codec_string_profile_and_level_names() -> None:
    assert h264.codec_string(100, 0, 31) == "avc1.64001f"
    assert h264.codec_string(66, 0xC0, 30) == "avc1.42c01e"
    assert h264.profile_name(66, 0x40) == "Constrained Baseline"
    assert h264.profile_name(66, 0) == "Baseline"
    assert h264.profile_name(110, 0x10) == "High 10 Intra"
    assert h264.profile_name(7) == "Profile 7"
    assert h264.level_text(31) == "3.1"
    assert h264.level_text(40) == "4"
    assert h264.level_text(9) == "1b"
    assert h264.level_text(11, 0x10, 66) == "1b"
    assert h264.level_text(11, 0x10, 100) == "1.1"


def test_length_prefixed_annexb_conversions_on_real_frames() -> None:
    enc = _encoded("high")
    for keyframe, data in enc.packets:
        annexb = length_prefixed_to_annexb(data)
        assert annexb.startswith(b"\x00\x00\x00\x01")
        assert annexb_to_length_prefixed(annexb) == data
        nals = [bytes(n) for n in iter_length_prefixed(data)]
        assert split_annexb(annexb) == nals
        two = b"".join(struct.pack(">H", len(n)) + n for n in nals)
        assert convert_length_size(two, 2) == data
        assert h264.is_keyframe(data) == keyframe


def test_split_annexb_handles_three_byte_start_codes_and_trailing_zeros() -> None:
    stream = b"\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce\x00\x00" + b"\x00\x00\x01\x65\x88\x80"
    assert split_annexb(stream) == [b"\x67\x42", b"\x68\xce", b"\x65\x88\x80"]
    assert split_annexb(b"no start code") == []


def test_one_byte_length_prefix_conversion() -> None:
    assert convert_length_size(b"\x02\x65\x88\x01\x06", 1) == b"\x00\x00\x00\x02\x65\x88\x00\x00\x00\x01\x06"


def test_emulation_prevention_round_trip() -> None:
    for rbsp in (b"\x00\x00\x00", b"\x00\x00\x01\x00\x00\x02", b"\x12\x00\x00\x03\x00", b"\x00\x00"):
        escaped = escape_rbsp(rbsp)
        assert b"\x00\x00\x00" not in escaped and b"\x00\x00\x01" not in escaped
        assert unescape_rbsp(escaped) == rbsp


@pytest.mark.parametrize("bad", [
    b"",
    b"\x01\x64\x00",                                    # truncated header
    b"\x02\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x01\x68",  # version 2
    b"\x01\x64\x00\x1f\xfe\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x01\x68",  # length size 3
    b"\x01\x64\x00\x1f\xff\xe1\x00\x40\x67",            # SPS length overruns
    b"\x01\x64\x00\x1f\xff\xe1\x00\x02\x68\x00\x00",    # a PPS in the SPS list
    b"\x01\x64\x00\x1f\xff\xe0\x00",                    # no SPS at all (describe needs one)
])
def test_malformed_avcc_raises_codec_config_error(bad: bytes) -> None:
    with pytest.raises(CodecConfigError):
        describe_track(0, Codec.H264, bad, Fraction(1, 1000))


def test_bad_length_prefix_is_rejected() -> None:
    with pytest.raises(CodecConfigError):
        list(iter_length_prefixed(b"\x00\x00\x00\x09\x65\x88"))
    with pytest.raises(CodecConfigError):
        convert_length_size(b"\x00\x00\x00\x00", 4)  # an empty NAL unit
    with pytest.raises(CodecConfigError):
        convert_length_size(b"\x01\x02", 3)
