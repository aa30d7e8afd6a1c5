"""Box framing: sizes, FullBox version/flags, and the 64-bit largesize form."""

from __future__ import annotations

import struct

import pytest

from kiln.media.formats.bmff import boxes
from kiln.media.formats.bmff.boxes import box, box_header, full_box
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.parse import parse_boxes


def test_box_is_size_type_payloads() -> None:
    assert box(b"free", b"ab", b"", b"cde") == b"\x00\x00\x00\x0dfreeabcde"
    assert box(b"skip") == b"\x00\x00\x00\x08skip"


def test_full_box_packs_version_and_24_bit_flags() -> None:
    assert full_box(b"tfhd", 1, 0x020000, b"\x00\x00\x00\x07") == (
        b"\x00\x00\x00\x10tfhd" b"\x01\x02\x00\x00" b"\x00\x00\x00\x07")


@pytest.mark.parametrize(("version", "flags"), [(256, 0), (-1, 0), (0, 1 << 24), (0, -1)])
def test_full_box_rejects_out_of_range_version_or_flags(version: int, flags: int) -> None:
    with pytest.raises(BmffError):
        full_box(b"trun", version, flags)


@pytest.mark.parametrize("box_type", [b"abc", b"abcde", b""])
def test_box_type_must_be_four_bytes(box_type: bytes) -> None:
    with pytest.raises(BmffError):
        box(box_type, b"x")


def test_header_switches_to_largesize_past_32_bits() -> None:
    assert box_header(b"mdat", 0xFFFFFFFF - 8) == struct.pack(">I4s", 0xFFFFFFFF, b"mdat")
    large = box_header(b"mdat", 0xFFFFFFFF - 7)
    assert large == struct.pack(">I4sQ", 1, b"mdat", 0xFFFFFFFF - 7 + 16)


def test_largesize_box_round_trips_through_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boxes, "MAX_COMPACT_SIZE", 10)  # force the 64-bit form on a small box
    data = box(b"free", b"0123456789") + box(b"skip", b"z")
    assert data[:16] == struct.pack(">I4sQ", 1, b"free", 26)
    parsed = parse_boxes(data)
    assert [(b.type, b.offset, b.size, b.header_size, b.payload) for b in parsed] == [
        ("free", 0, 26, 16, b"0123456789"), ("skip", 26, 9, 8, b"z")]
