"""H.265 configuration parsing against real x265 bitstreams, with ffprobe as the reference."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiln.media.formats.codecs import h265
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import iter_length_prefixed
from kiln.media.model import Codec
from tests.unit.codecs.media import encode_video, ffprobe_stream

CASES = {
    "main": (320, 180, "yuv420p", ()),
    "main-cropped": (318, 178, "yuv420p", ()),
    "main10": (320, 180, "yuv420p10le", ()),
    "rext444": (320, 180, "yuv444p", ()),
    "level-3.1": (1280, 720, "yuv420p", (("x265-params", "log-level=error:level-idc=31"),)),
}
# ISO 14496-15 Annex E strings, worked out by hand from the x265 headers: profile, reversed
# compatibility flags (Main sets flags 1 and 2 -> 6), tier+level, and constraint bytes
# (progressive_source + frame_only = 0x90; RExt adds its format constraint flags)
EXPECTED_CODEC_STRINGS = {
    "main": "hvc1.1.6.L60.90",
    "main-cropped": "hvc1.1.6.L60.90",
    "main10": "hvc1.2.4.L60.90",
    "rext444": "hvc1.4.10.L60.9E.8",
    "level-3.1": "hvc1.1.6.L93.90",
}


def _encoded(name: str):
    width, height, pix_fmt, options = CASES[name]
    return encode_video("libx265", width, height, pix_fmt, options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_describe_matches_ffprobe(name: str, tmp_path: Path) -> None:
    enc = _encoded(name)
    probe = ffprobe_stream(enc.mp4, tmp_path)
    track = describe_track(0, Codec.H265, enc.extradata, Fraction(1, 90000))
    assert (track.width, track.height) == (probe["width"], probe["height"])
    assert track.profile == probe["profile"]
    level = probe["level"] / 30
    assert track.level == (f"{level:g}")
    assert track.codec_string == EXPECTED_CODEC_STRINGS[name]


def test_sps_fields() -> None:
    sps = h265.parse_hvcc(_encoded("main10").extradata).first_sps()
    assert (sps.bit_depth_luma, sps.bit_depth_chroma, sps.chroma_format_idc) == (10, 10, 1)
    assert h265.parse_hvcc(_encoded("rext444").extradata).first_sps().chroma_format_idc == 3
    ptl = h265.parse_hvcc(_encoded("level-3.1").extradata).ptl
    assert (ptl.level_idc, ptl.tier, ptl.profile_idc) == (93, 0, 1)


def test_hvcc_round_trip_and_rebuild() -> None:
    for name in CASES:
        extradata = _encoded(name).extradata
        cfg = h265.parse_hvcc(extradata)
        assert cfg.to_bytes() == extradata, name
        rebuilt = h265.parse_hvcc(h265.build_hvcc(cfg.nals_of(h265.NAL_VPS), cfg.nals_of(h265.NAL_SPS),
                                                  cfg.nals_of(h265.NAL_PPS)))
        assert rebuilt.ptl == cfg.ptl
        assert (rebuilt.chroma_format_idc, rebuilt.bit_depth_luma, rebuilt.nal_length_size) == \
            (cfg.chroma_format_idc, cfg.bit_depth_luma, 4)
        assert rebuilt.nals_of(h265.NAL_SPS) == cfg.nals_of(h265.NAL_SPS)


def test_hvcc_from_encoder_annexb_extradata() -> None:
    ctx = av.CodecContext.create("libx265", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 320, 180, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.open()
    built = h265.parse_hvcc(h265.hvcc_from_annexb(bytes(ctx.extradata)))
    muxed = h265.parse_hvcc(_encoded("main").extradata)
    assert built.ptl == muxed.ptl
    for kind in (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS):
        assert built.nals_of(kind) == muxed.nals_of(kind)


def test_keyframes_are_irap_pictures() -> None:
    enc = _encoded("main")
    flags = [h265.is_keyframe(data) for _, data in enc.packets]
    assert flags[0] is True
    assert flags == [keyframe for keyframe, _ in enc.packets]
    types = {h265.nal_type(n) for _, data in enc.packets for n in iter_length_prefixed(data)}
    assert types & set(range(16, 24))


def test_level_text_and_profile_names() -> None:
    ptl = h265.ProfileTierLevel(0, 1, 2, 0x20000000, 0, 153)
    assert (ptl.level_text, ptl.profile_name) == ("5.1", "Main 10")
    assert ptl.codec_string == "hvc1.2.4.H153"
    assert h265.ProfileTierLevel(1, 0, 0, 0x40000000, 0, 120).profile_name == "Main"  # from compat flags
    assert h265.ProfileTierLevel(1, 0, 1, 0x40000000, 0, 120).codec_string == "hvc1.A1.2.L120"


@pytest.mark.parametrize("bad", [
    b"",
    b"\x01" + bytes(21),                       # 22 bytes: one short of the header
    b"\x00" + bytes(22),                       # version 0
    b"\x01" + bytes(21) + b"\x01\x21\x00\x01\x00\x30\x42",  # SPS length overruns
    b"\x01" + bytes(21) + b"\x01\x21\x00\x01\x00\x02\x40\x01",  # a VPS in the SPS array
    b"\x01" + bytes(21) + b"\x00",             # no SPS
])
def test_malformed_hvcc_raises_codec_config_error(bad: bytes) -> None:
    with pytest.raises(CodecConfigError):
        describe_track(0, Codec.H265, bad, Fraction(1, 1000))
