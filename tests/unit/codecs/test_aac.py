"""AudioSpecificConfig and ADTS against real AAC from PyAV's encoder and FFmpeg's ADTS muxer."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiln.media.formats.codecs import aac
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.model import Codec
from tests.unit.codecs.media import encode_aac, ffmpeg_dash_codecs, ffprobe_stream

LAYOUTS = [(48000, "stereo"), (44100, "mono"), (8000, "5.1"), (96000, "7.1"), (22050, "stereo")]


def _bits(*fields: tuple[int, int]) -> bytes:
    """Pack (value, width) fields MSB-first and pad to a byte: how the spec draws the syntax."""
    value, width = 0, 0
    for v, w in fields:
        value = (value << w) | v
        width += w
    pad = -width % 8
    return (value << pad).to_bytes((width + pad) // 8, "big")


@pytest.mark.parametrize(("rate", "layout"), LAYOUTS)
def test_describe_matches_ffprobe(rate: int, layout: str, tmp_path: Path) -> None:
    enc = encode_aac(rate, layout)
    probe = ffprobe_stream(enc.mp4, tmp_path)
    track = describe_track(1, Codec.AAC, enc.extradata, Fraction(1, rate))
    assert track.sample_rate == int(probe["sample_rate"])
    assert track.channels == probe["channels"]
    assert track.samples_per_frame == 1024
    assert track.profile == probe["profile"] == "LC"
    assert track.codec_string == ffmpeg_dash_codecs(enc.mp4, tmp_path) == "mp4a.40.2"


def test_build_asc_round_trips() -> None:
    for rate, layout in LAYOUTS:
        asc = aac.parse_asc(encode_aac(rate, layout).extradata)
        rebuilt = aac.parse_asc(aac.build_asc(asc.object_type, asc.sample_rate, asc.channel_config))
        assert (rebuilt.object_type, rebuilt.sample_rate, rebuilt.channels) == \
            (asc.object_type, asc.sample_rate, asc.channels)
    assert aac.build_asc(2, 48000, 2) == b"\x11\x90"
    assert aac.build_asc(2, 44100, 2) == b"\x12\x10"


def test_escaped_object_type_and_explicit_frequency() -> None:
    asc = aac.parse_asc(aac.build_asc(42, 12345, 1))  # AOT 42 needs the escape; 12345 Hz needs 24 bits
    assert (asc.object_type, asc.sample_rate, asc.channels) == (42, 12345, 1)
    assert asc.codec_string == "mp4a.40.42"


def test_960_sample_frames() -> None:
    asc = aac.parse_asc(aac.build_asc(2, 48000, 2, frame_length=960))
    assert asc.samples_per_frame == 960


def test_explicit_he_aac_and_he_aac_v2() -> None:
    # AOT 5 (SBR), core rate 24 kHz (index 6), stereo, extension rate 48 kHz (index 3), core AOT 2, GA config
    he = aac.parse_asc(_bits((5, 5), (6, 4), (2, 4), (3, 4), (2, 5), (0, 3)))
    assert (he.sample_rate, he.output_sample_rate, he.samples_per_frame, he.channels) == (24000, 48000, 2048, 2)
    assert (he.codec_string, he.profile_name) == ("mp4a.40.5", "HE-AAC")
    # AOT 29 (PS): mono core decodes to stereo
    v2 = aac.parse_asc(_bits((29, 5), (6, 4), (1, 4), (3, 4), (2, 5), (0, 3)))
    assert (v2.output_channels, v2.codec_string, v2.profile_name) == (2, "mp4a.40.29", "HE-AACv2")


def test_backward_compatible_sbr_signalling() -> None:
    # LC at 24 kHz, then syncExtensionType 0x2b7, extension AOT 5, sbrPresentFlag 1, extension rate 48 kHz
    data = _bits((2, 5), (6, 4), (2, 4), (0, 3), (0x2B7, 11), (5, 5), (1, 1), (3, 4))
    asc = aac.parse_asc(data)
    assert asc.sbr and asc.output_sample_rate == 48000 and asc.codec_string == "mp4a.40.2"
    # PyAV's native encoder signals "no SBR" the same way; that must not turn SBR on
    assert not aac.parse_asc(encode_aac().extradata).sbr


def test_program_config_element_channels() -> None:
    # channelConfiguration 0 with a PCE: 1 front SCE + 1 front CPE + 1 back CPE + 1 LFE = 6 channels
    pce = [(0, 4), (1, 2), (3, 4), (2, 4), (0, 4), (1, 4), (1, 2), (0, 3), (0, 4), (0, 1), (0, 1), (0, 1),
           (0, 1), (0, 4), (1, 1), (1, 4), (1, 1), (2, 4), (3, 4)]
    asc = aac.parse_asc(_bits((2, 5), (3, 4), (0, 4), (0, 3), *pce))
    assert asc.channels == 6


def test_adts_matches_ffmpeg_adts_muxer() -> None:
    enc = encode_aac(44100, "stereo")
    buf = io.BytesIO()
    with av.open(io.BytesIO(enc.mp4), format="mp4") as src, av.open(buf, "w", format="adts") as out:
        ost = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.size:
                packet.stream = ost
                out.mux(packet)
    frames = list(aac.iter_adts_frames(buf.getvalue()))
    assert [bytes(payload) for _, payload in frames] == [data for _, data in enc.packets]
    asc = aac.parse_asc(enc.extradata)
    for header, payload in frames:
        assert (header.sample_rate, header.channel_config, header.object_type) == (44100, 2, 2)
        assert aac.parse_asc(header.audio_specific_config()).channels == asc.channels
        ours = aac.build_adts_header(asc, len(payload))
        assert aac.parse_adts_header(ours) == aac.AdtsHeader(2, 4, 2, len(payload) + 7, 7, 1)


def test_iter_adts_stops_at_a_partial_frame() -> None:
    asc = aac.parse_asc(b"\x11\x90")
    frame = aac.build_adts_header(asc, 3) + b"abc"
    assert len(list(aac.iter_adts_frames(frame + frame[:5]))) == 1


@pytest.mark.parametrize("bad", [
    b"", b"\x10", b"\x00\x00",                  # AOT 0
    b"\x17\x80",                                # sampling index 14 (reserved)
    b"\x11\xf8",                                # channelConfiguration 15 (reserved)
    _bits((2, 5), (15, 4), (0, 24), (2, 4)),    # explicit frequency 0
])
def test_malformed_asc(bad: bytes) -> None:
    with pytest.raises(CodecConfigError):
        describe_track(1, Codec.AAC, bad, Fraction(1, 1000))


@pytest.mark.parametrize("bad", [b"\xff\xf1", b"\x00" * 7, b"\xff\xf7\x50\x80\x00\x1f\xfc",
                                 b"\xff\xf1\x7c\x80\x01\x1f\xfc", b"\xff\xf1\x50\x80\x00\x1f\xfc"])
def test_malformed_adts(bad: bytes) -> None:
    with pytest.raises(CodecConfigError):
        aac.parse_adts_header(bad)


def test_adts_cannot_carry_what_it_has_no_field_for() -> None:
    with pytest.raises(CodecConfigError):
        aac.build_adts_header(aac.parse_asc(aac.build_asc(2, 12345, 2)), 10)
    with pytest.raises(CodecConfigError):
        aac.build_adts_header(aac.parse_asc(b"\x11\x90"), 9000)
