"""Frames cut into RTP payloads once (what the feed then sends to every viewer as is)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from aiortc.codecs.h264 import H264Encoder, H264PayloadDescriptor

from kiln.media.rtc.prepacked import Packetizer, Prepacked


def test_h264_is_cut_as_aiortc_would_with_fu_a_fragments_of_one_size_and_the_90k_clock() -> None:
    big = b"\x00\x00\x00\x01" + bytes([0x65]) + bytes(range(256)) * 12   # an IDR slice larger than one packet
    small = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x68\xce\x3c\x80"
    out = Packetizer("h264").pack(small + big, 1500, Fraction(1, 1000))
    assert out.timestamp == 135000
    aiortc = H264Encoder._packetize(H264Encoder._split_bitstream(small + big))
    assert len(out.payloads) == len(aiortc) >= 3 and out.payloads[0] == aiortc[0]  # STAP-A (SPS, PPS) as aiortc
    fragments = out.payloads[1:]
    assert {len(f) for f in fragments[:-1]} == {len(fragments[0])} and len(fragments[-1]) <= len(fragments[0])
    assert [f[1] & 0xC0 for f in fragments] == [0x80] + [0] * (len(fragments) - 2) + [0x40]  # start, end bits
    assert all(f[0] == 0x60 | 28 and f[1] & 0x1F == 5 for f in fragments)  # FU-A of the IDR's type and NRI
    assert b"".join(f[2:] for f in fragments) == big[5:]
    depacketized = b"".join(H264PayloadDescriptor.parse(f)[1] for f in fragments)
    assert depacketized == b"\x00\x00\x00\x01" + big[4:]  # what aiortc's receiver rebuilds


def test_opus_is_one_payload_on_the_48k_clock_and_vp8_counts_pictures() -> None:
    assert Packetizer("opus").pack(b"\x01\x02", 960, Fraction(1, 48000)) == Prepacked([b"\x01\x02"], 960)
    vp8 = Packetizer("vp8")
    first, second = vp8.pack(b"\x10" * 10, 0, Fraction(1, 90000)), vp8.pack(b"\x10" * 10, 3000, Fraction(1, 90000))
    assert first.payloads != second.payloads  # the picture id moves on
    with pytest.raises(ValueError):
        Packetizer("h265")
