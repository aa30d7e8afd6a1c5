"""describe_track's Track fields, and property tests: random and mutated configurations never raise
anything but CodecConfigError, and parsing stays fast."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.media.formats.codecs import aac, h264, h265
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import (
    annexb_to_length_prefixed,
    convert_length_size,
    split_annexb,
    to_length_prefixed,
    unescape_rbsp,
)
from kiln.media.formats.codecs.opus import parse_opus_head
from kiln.media.model import Codec, MediaKind
from tests.unit.codecs.media import encode_aac, encode_video

MS = Fraction(1, 1000)


def test_video_track_fields() -> None:
    track = describe_track(0, Codec.H264, encode_video("libx264", options=(("preset", "veryfast"),)).extradata, MS)
    assert (track.id, track.kind, track.codec, track.time_base) == (0, MediaKind.VIDEO, Codec.H264, MS)
    assert (track.width, track.height, track.profile, track.codec_string[:7]) == (320, 180, "High", "avc1.64")
    assert (track.sample_rate, track.channels) == (0, 0)


def test_audio_track_fields() -> None:
    track = describe_track(1, Codec.AAC, encode_aac(48000, "stereo").extradata, MS)
    assert (track.kind, track.sample_rate, track.channels, track.samples_per_frame) == (MediaKind.AUDIO, 48000, 2, 1024)
    assert track.config == encode_aac(48000, "stereo").extradata
    assert (track.width, track.height) == (0, 0)


def test_opus_and_codecs_without_parser() -> None:
    head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    track = describe_track(1, Codec.OPUS, head, Fraction(1, 48000))
    assert (track.sample_rate, track.channels, track.codec_string) == (48000, 2, "opus")
    assert parse_opus_head(head).pre_skip == 312
    bare = describe_track(0, Codec.VP8, b"", MS)
    assert (bare.kind, bare.width, bare.codec_string) == (MediaKind.VIDEO, 0, "")
    with pytest.raises(CodecConfigError):
        describe_track(1, Codec.OPUS, b"OpusTags" + bytes(11), MS)


def _valid_configs() -> list[tuple[Codec, bytes]]:
    return [
        (Codec.H264, encode_video("libx264", options=(("preset", "veryfast"),)).extradata),
        (Codec.H264, encode_video("libx264", pix_fmt="yuv444p", options=(("x264-params", "cqm=jvt"),)).extradata),
        (Codec.H265, encode_video("libx265").extradata),
        (Codec.H265, encode_video("libx265", pix_fmt="yuv420p10le").extradata),
        (Codec.AAC, encode_aac(48000, "stereo").extradata),
        (Codec.AAC, encode_aac(8000, "5.1").extradata),
    ]


_PARSERS = {
    Codec.H264: lambda d: h264.parse_avcc(d).first_sps(),
    Codec.H265: lambda d: h265.parse_hvcc(d).first_sps(),
    Codec.AAC: aac.parse_asc,
    Codec.OPUS: parse_opus_head,
}


def _only_codec_errors(codec: Codec, data: bytes) -> None:
    """The parser itself (not describe_track's safety net) must raise nothing but CodecConfigError, in bounded CPU
    time (this thread's: a loaded machine's preemption is not the parser's; 1.1 s wall was seen at load 12)."""
    start = time.thread_time()
    for fn in (_PARSERS[codec], lambda d: describe_track(0, codec, d, MS)):
        try:
            fn(data)
        except CodecConfigError:
            pass
    assert time.thread_time() - start < 0.5, "parsing a small config took too long"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([Codec.H264, Codec.H265, Codec.AAC, Codec.OPUS]), st.binary(max_size=300))
def test_random_configs_raise_only_codec_config_error(codec: Codec, data: bytes) -> None:
    _only_codec_errors(codec, data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_configs_raise_only_codec_config_error(data: st.DataObject) -> None:
    codec, config = data.draw(st.sampled_from(_valid_configs()))
    mutated = bytearray(config)
    for _ in range(data.draw(st.integers(1, 8))):
        action = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if not mutated:
            break
        pos = data.draw(st.integers(0, len(mutated) - 1))
        if action == "flip":
            mutated[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set":
            mutated[pos] = data.draw(st.integers(0, 255))
        elif action == "truncate":
            del mutated[pos:]
        elif action == "insert":
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del mutated[pos]
    _only_codec_errors(codec, bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_sps_and_bitstream_helpers_raise_only_codec_config_error(data: bytes) -> None:
    for fn in (h264.parse_sps, h265.parse_sps, aac.parse_asc, aac.parse_adts_header,
               lambda d: convert_length_size(d, 4), lambda d: convert_length_size(d, 2),
               lambda d: list(aac.iter_adts_frames(d)), lambda d: h264.avcc_from_annexb(d),
               lambda d: h265.hvcc_from_annexb(d), parse_opus_head):
        try:
            fn(data)
        except CodecConfigError:
            pass
    # these never fail: they only split or copy
    annexb_to_length_prefixed(data)
    split_annexb(data)
    unescape_rbsp(data)


def test_huge_exp_golomb_and_sizes_are_rejected_quickly() -> None:
    # an SPS whose pic_width_in_mbs_minus1 is the largest 32-bit ue(v): the size check must catch it
    sps = bytes([0x67, 66, 0, 30, 0b11110101]) + b"\x00\x00\x00\x01\xff\xff\xff\xff\xff"
    with pytest.raises(CodecConfigError):
        h264.parse_sps(sps)
    with pytest.raises(CodecConfigError):
        h264.parse_sps(bytes([0x67, 66, 0, 30]) + bytes(40))  # all-zero: an Exp-Golomb code with no end


_ANNEXB_PIECES = st.sampled_from([b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00", b"\x00\x00", b"\x65\x88", b"\x01"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ANNEXB_PIECES, st.binary(max_size=12)), max_size=10))
def test_annexb_conversion_matches_splitting_then_prefixing(pieces: list[bytes]) -> None:
    """The one-copy conversion gives the bytes of the two-step one, start codes and zero runs anywhere."""
    data = b"".join(pieces)
    assert annexb_to_length_prefixed(data) == to_length_prefixed(split_annexb(data))
