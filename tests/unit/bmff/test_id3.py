"""ID3v2.4 tags byte for byte as rest-spec §11.1 describes them, and reading them back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiln.media.formats.id3 import (
    Id3Error,
    Id3Frame,
    PrivateFrame,
    RawFrame,
    TextFrame,
    UserTextFrame,
    build_id3v24_tag,
    parse_id3v24_tag,
    synchsafe,
    unsynchsafe,
)

HEADER = b"ID3\x04\x00\x00"


def test_txxx_tag_bytes() -> None:
    expected = HEADER + bytes.fromhex("00000015") + b"TXXX" + bytes.fromhex("0000000b0000") + b"\x03desc\x00value"
    assert build_id3v24_tag([Id3Frame.txxx("desc", "value")]) == expected


def test_text_frame_bytes_are_utf8_with_no_terminator() -> None:
    expected = HEADER + bytes.fromhex("00000011") + b"TIT2" + bytes.fromhex("000000070000") + b"\x03h\xc3\xa9llo"
    assert build_id3v24_tag([Id3Frame.text("TIT2", "héllo")]) == expected


def test_text_frame_id_is_written_as_given() -> None:
    assert build_id3v24_tag([Id3Frame.text("Tabc", "x")])[10:14] == b"Tabc"


def test_priv_frame_with_synchsafe_sizes_of_128_and_more() -> None:
    data = bytes(range(200))
    # payload 11 + 1 + 200 = 212 = 1 * 128 + 84 -> 00 00 01 54; tag 10 + 212 = 222 = 1 * 128 + 94 -> 00 00 01 5e
    expected = (HEADER + bytes.fromhex("0000015e") + b"PRIV" + bytes.fromhex("000001540000")
                + b"com.example\x00" + data)
    assert build_id3v24_tag([Id3Frame.priv("com.example", data)]) == expected


def test_frames_are_concatenated_in_order_under_one_header() -> None:
    frames = [Id3Frame.txxx("desc", "value"), Id3Frame.text("TIT2", "héllo"),
              Id3Frame.priv("com.example", bytes(range(200)))]
    tag = build_id3v24_tag(frames)
    # 21 + 17 + 222 = 260 = 2 * 128 + 4 -> 00 00 02 04
    assert tag[:10] == HEADER + bytes.fromhex("00000204")
    assert tag[10:] == b"".join(build_id3v24_tag([f])[10:] for f in frames)
    assert parse_id3v24_tag(tag) == frames


def test_large_frame_uses_three_synchsafe_bytes() -> None:
    tag = build_id3v24_tag([Id3Frame.txxx("long", "a" * 20000)])
    # payload 1 + 4 + 1 + 20000 = 20006 = (1 * 128 + 28) * 128 + 38 -> 00 01 1c 26; tag 20016 -> 00 01 1c 30
    assert tag[:20] == HEADER + bytes.fromhex("00011c30") + b"TXXX" + bytes.fromhex("00011c260000")
    assert len(tag) == 10 + 20016


def test_synchsafe_limits() -> None:
    assert synchsafe(0) == 0 and synchsafe(127) == 0x7F and synchsafe(128) == 0x100
    assert synchsafe((1 << 28) - 1) == 0x7F7F7F7F
    assert unsynchsafe(0x7F7F7F7F) == (1 << 28) - 1
    with pytest.raises(Id3Error):
        synchsafe(1 << 28)
    with pytest.raises(Id3Error):
        unsynchsafe(0x80)


@pytest.mark.parametrize("frame", [Id3Frame.text("TIT", "x"), Id3Frame.text("TIT22", "x"),
                                   Id3Frame.text("TÉST", "x"), Id3Frame.text("", "x")])
def test_frame_ids_that_are_not_four_bytes_are_refused(frame: Id3Frame) -> None:
    with pytest.raises(Id3Error, match="4 bytes"):
        build_id3v24_tag([frame])


def test_an_empty_tag_is_refused() -> None:
    with pytest.raises(Id3Error):
        build_id3v24_tag([])


def test_parse_skips_padding_and_extended_header_and_keeps_unknown_frames() -> None:
    body = (b"COMM" + bytes.fromhex("000000030000") + b"abc"
            + b"TIT2" + bytes.fromhex("000000024000") + b"\x03x"          # status flag only: still text
            + b"TIT3" + bytes.fromhex("000000020001") + b"\x03y")         # data-length flag: kept raw
    extended = bytes.fromhex("00000006" "0100")
    tag = b"ID3\x04\x00\x40" + bytes.fromhex("0000002f") + extended + body + bytes(4)
    assert len(extended + body) + 4 == 0x2F
    assert parse_id3v24_tag(tag) == [RawFrame("COMM", b"abc"), TextFrame("TIT2", "x"),
                                     RawFrame("TIT3", b"\x03y", 1)]


def test_parse_reads_utf16_and_latin1_text() -> None:
    utf16 = b"\x01" + "dé".encode("utf-16") + b"\x00\x00" + "ü".encode("utf-16")
    latin1 = b"\x00caf\xe9"
    body = (b"TXXX" + bytes([0, 0, 0, len(utf16), 0, 0]) + utf16
            + b"TALB" + bytes([0, 0, 0, len(latin1), 0, 0]) + latin1)
    tag = HEADER + bytes([0, 0, 0, len(body)]) + body
    assert parse_id3v24_tag(tag) == [UserTextFrame("dé", "ü"), TextFrame("TALB", "café")]


@pytest.mark.parametrize("data", [
    b"ID3\x03\x00\x00\x00\x00\x00\x00",                                   # ID3v2.3
    b"ID2\x04\x00\x00\x00\x00\x00\x00",
    b"ID3\x04\x00",
    HEADER + bytes.fromhex("00000020"),                                  # size past the data
    HEADER + bytes.fromhex("00000080"),                                  # not synchsafe
    HEADER + bytes.fromhex("0000000b") + b"TXXX" + bytes.fromhex("000000050000") + b"\x03a",  # frame too long
    HEADER + bytes.fromhex("0000000e") + b"TXXX" + bytes.fromhex("000000040000") + b"\x03abc",  # no NUL
    HEADER + bytes.fromhex("0000000c") + b"TIT2" + bytes.fromhex("000000020000") + b"\x07a",  # bad encoding
    HEADER + bytes.fromhex("0000000c") + b"TIT2" + bytes.fromhex("000000020000") + b"\x03\xff",  # bad UTF-8
    HEADER + bytes.fromhex("00000004") + b"abcd",                          # garbage where frames should be
    b"ID3\x04\x00\x80" + bytes(4),                                        # tag-wide unsynchronisation
])
def test_parse_rejects_malformed_tags(data: bytes) -> None:
    with pytest.raises(Id3Error):
        parse_id3v24_tag(data)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_no_nul = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)
_text_ids = st.text("ABCDEFGHIJKLMNOPQRSTUVWYZ0123456789", min_size=3, max_size=3).map(lambda s: "T" + s)
_frames = st.lists(st.one_of(
    st.builds(UserTextFrame, _no_nul, _text),
    st.builds(TextFrame, _text_ids, _text),
    st.builds(PrivateFrame, _no_nul, st.binary(max_size=300)),
), min_size=1, max_size=6)


@given(_frames)
def test_build_then_parse_round_trips(frames: list[Id3Frame]) -> None:
    assert parse_id3v24_tag(build_id3v24_tag(frames)) == frames


@given(st.binary(max_size=200))
def test_parse_of_random_bytes_only_raises_id3_error(data: bytes) -> None:
    for candidate in (data, HEADER + bytes([0, 0, 0, min(len(data), 127)]) + data):
        try:
            parse_id3v24_tag(candidate)
        except Id3Error:
            pass
