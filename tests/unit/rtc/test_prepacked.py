"""Frames cut into RTP payloads once (what the feed then sends to every viewer as is)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from aiortc.codecs.h264 import H264Encoder

from kiln.media.rtc.prepacked import Packetizer, Prepacked


def test_h264_is_cut_as_aiortc_would_and_timestamps_use_the_90k_clock() -> None:
    big = b"\x00\x00\x00\x01" + bytes([0x65]) + bytes(range(256)) * 12   # an IDR slice larger than one packet
    small = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x68\xce\x3c\x80"
    out = Packetizer("h264").pack(small + big, 1500, Fraction(1, 1000))
    assert out.timestamp == 135000
    assert out.payloads == H264Encoder._packetize(H264Encoder._split_bitstream(small + big))
    assert len(out.payloads) >= 3 and out.payloads[0][0] & 0x1F == 24  # STAP-A (SPS, PPS), then FU-A


def test_opus_is_one_payload_on_the_48k_clock_and_vp8_counts_pictures() -> None:
    assert Packetizer("opus").pack(b"\x01\x02", 960, Fraction(1, 48000)) == Prepacked([b"\x01\x02"], 960)
    vp8 = Packetizer("vp8")
    first, second = vp8.pack(b"\x10" * 10, 0, Fraction(1, 90000)), vp8.pack(b"\x10" * 10, 3000, Fraction(1, 90000))
    assert first.payloads != second.payloads  # the picture id moves on
    with pytest.raises(ValueError):
        Packetizer("h265")
