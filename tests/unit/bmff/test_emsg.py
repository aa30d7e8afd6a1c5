"""emsg version 1 as OME writes it for ID3 (rest-spec §11.2): byte layout and reading back."""

from __future__ import annotations

import struct

import pytest

from kiln.media.formats.bmff.emsg import build_emsg_v1
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.parse import Emsg, decode_emsg, parse_boxes

SCHEME = "https://aomedia.org/emsg/ID3"


def test_emsg_v1_bytes() -> None:
    data = build_emsg_v1(timescale=1000, presentation_time=0x0123456789, event_duration=0xFFFFFFFF, event_id=7,
                         scheme_id_uri=SCHEME, value="OvenMediaEngine", message_data=b"ID3tag")
    expected = (bytes.fromhex("00000053" "656d7367" "01000000"     # size 83, 'emsg', version 1, flags 0
                              "000003e8"                          # timescale 1000
                              "0000000123456789"                  # presentation_time, 64 bits
                              "ffffffff"                          # event_duration: unknown
                              "00000007")                         # id
                + b"https://aomedia.org/emsg/ID3\x00" + b"OvenMediaEngine\x00" + b"ID3tag")
    assert data == expected


def test_emsg_v1_reads_back() -> None:
    tag = bytes(range(256)) * 3
    data = build_emsg_v1(timescale=1000, presentation_time=(1 << 40) + 5, event_duration=0xFFFFFFFF,
                         event_id=0xFFFFFFFF, scheme_id_uri=SCHEME, value="", message_data=tag)
    [box] = parse_boxes(data)
    assert decode_emsg(box) == Emsg(1, 1000, (1 << 40) + 5, 0xFFFFFFFF, 0xFFFFFFFF, SCHEME, "", tag)


def test_emsg_v0_is_read_too() -> None:
    payload = b"\x00\x00\x00\x00" + b"urn:x\x00v\x00" + struct.pack(">IIII", 90000, 3000, 10, 2) + b"msg"
    [box] = parse_boxes(struct.pack(">I4s", 8 + len(payload), b"emsg") + payload)
    assert decode_emsg(box) == Emsg(0, 90000, 3000, 10, 2, "urn:x", "v", b"msg")


@pytest.mark.parametrize("changes", [
    {"scheme_id_uri": "a\0b"}, {"value": "\0"}, {"event_id": 1 << 32}, {"presentation_time": -1},
    {"presentation_time": 1 << 64}, {"timescale": -1},
])
def test_impossible_emsg_is_rejected(changes: dict[str, object]) -> None:
    args: dict[str, object] = {"timescale": 1000, "presentation_time": 0, "event_duration": 0, "event_id": 0,
                               "scheme_id_uri": SCHEME, "value": "v", "message_data": b""}
    with pytest.raises(BmffError):
        build_emsg_v1(**{**args, **changes})
