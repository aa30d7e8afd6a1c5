"""AvConverter and the framing of H.264 samples: an MP4 file's samples are 4-byte length-prefixed NAL units, and one
whose first NAL unit is 256-511 bytes long begins 00 00 01, as an Annex-B start code does. Taken for Annex-B it was
cut at every 00 00 01 it held: a scheduled channel's file items (read by PyAV) reached players as undecodable
frames (hls.js: PIPELINE_ERROR_DECODE on the first such frame, fatal)."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.formats.codecs import h264, nal
from kiln.media.ingest.demux.convert import AvConverter
from kiln.media.model import Codec
from tests.unit.codecs.media import encode_video

TB = Fraction(1, 90000)


def avcc_extradata() -> bytes:
    extradata: bytes = encode_video("libx264", 320, 180, "yuv420p", (("preset", "veryfast"),)).extradata
    return extradata


def slice_nal(size: int) -> bytes:
    """A non-IDR slice NAL unit of ``size`` bytes (its header, then bytes with no start-code pattern)."""
    return bytes([0x41]) + bytes((7 + i % 200) for i in range(size - 1))


def test_a_length_prefixed_sample_that_starts_like_a_start_code_passes_unchanged() -> None:
    converter = AvConverter()
    converter.add_track(0, Codec.H264, TB, avcc_extradata())
    sample = nal.to_length_prefixed([slice_nal(300), slice_nal(40)])
    assert sample.startswith(b"\x00\x00\x01\x2c")  # 300 bytes: looks like a start code
    track, packets = converter.convert_data(0, sample, 0, 0, 3000, False)
    assert track is not None and [p.data for p in packets] == [sample]


def test_annexb_samples_are_still_converted() -> None:
    """A track whose container gives Annex-B (MPEG-TS, RTSP: no avcC) is converted; so is an Annex-B sample
    on a length-prefixed track (it is not a whole length-prefixed sequence)."""
    units = [slice_nal(300), slice_nal(40)]
    annexb = b"".join(b"\x00\x00\x00\x01" + u for u in units)
    config = h264.parse_avcc(avcc_extradata())
    annexb_extradata = b"".join(b"\x00\x00\x00\x01" + s for s in [*config.sps, *config.pps])
    for extradata in (annexb_extradata, avcc_extradata()):
        converter = AvConverter()
        converter.add_track(0, Codec.H264, TB, extradata)
        _, packets = converter.convert_data(0, annexb, 0, 0, 3000, False)
        assert [p.data for p in packets] == [nal.to_length_prefixed(units)]
