"""AMF0: byte layouts from the spec, round trips of every type, and bounded decoding of hostile input."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.media.formats import amf0
from kiln.media.formats.amf0 import UNDEFINED, UNSUPPORTED, AmfDate, AmfError, EcmaArray, TypedObject, XmlDocument


def test_connect_command_bytes() -> None:
    encoded = amf0.encode("connect", 1.0, {"app": "live"})
    assert encoded == (b"\x02\x00\x07connect" + b"\x00" + struct.pack(">d", 1.0)
                       + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09")
    assert amf0.decode_all(encoded) == ["connect", 1.0, {"app": "live"}]


def test_every_type_round_trips() -> None:
    values = [
        1.5, -0.0, float("inf"), True, False, "", "héllo", None, UNDEFINED, UNSUPPORTED,
        {"a": 1.0, "nested": {"b": [1.0, "x", None]}},
        EcmaArray(width=320.0, height=180.0, stereo=True),
        [1.0, [2.0, [3.0]], {}],
        AmfDate(1_700_000_000_000.0, 0),
        "L" * 70_000,                      # becomes a long string
        XmlDocument("<a>b</a>"),
        TypedObject("com.example.Thing", {"id": 7.0}),
    ]
    decoded = amf0.decode_all(amf0.encode(*values))
    assert decoded == values
    assert isinstance(decoded[11], EcmaArray) and isinstance(decoded[15], XmlDocument)
    assert decoded[8] is UNDEFINED and decoded[9] is UNSUPPORTED


def test_long_string_marker() -> None:
    assert amf0.encode("L" * 70_000)[:5] == b"\x0c" + struct.pack(">I", 70_000)
    assert amf0.encode("L" * 65_535)[:3] == b"\x02\xff\xff"


def test_ecma_array_count_is_only_a_hint() -> None:
    # onMetaData writers often put 0 (or a wrong count) in the ECMA array header
    data = b"\x08\x00\x00\x00\x00" + b"\x00\x01k\x00" + struct.pack(">d", 2.0) + b"\x00\x00\x09"
    assert amf0.decode(data) == ({"k": 2.0}, len(data))


def test_references_point_at_earlier_complex_values() -> None:
    data = b"\x0a\x00\x00\x00\x02" + b"\x03\x00\x01a\x05\x00\x00\x09" + b"\x07\x00\x01"
    outer, _ = amf0.decode(data)
    assert outer[0] == {"a": None} and outer[1] is outer[0]
    with pytest.raises(AmfError, match="reference 5"):
        amf0.decode(b"\x07\x00\x05")


def test_integers_encode_as_numbers() -> None:
    assert amf0.encode(3) == b"\x00" + struct.pack(">d", 3.0)
    with pytest.raises(AmfError):
        amf0.encode(10 ** 400)


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x00\x3f", "truncated"),
    (b"\x02\x00\x05abc", "truncated"),
    (b"\x03\x00\x01a", "truncated"),
    (b"\x03\x00\x00\x05", "empty property name"),
    (b"\x09", "object-end marker outside"),
    (b"\x11\x02", "AMF3"),
    (b"\x04", "0x04"),
    (b"\x0e", "0x0e"),
    (b"\x0a\xff\xff\xff\xff\x05", "strict array count"),
])
def test_malformed_values(data: bytes, reason: str) -> None:
    with pytest.raises(AmfError, match=reason):
        amf0.decode_all(data)


def test_an_empty_body_has_no_values_but_decode_needs_one() -> None:
    assert amf0.decode_all(b"") == []
    with pytest.raises(AmfError, match="truncated"):
        amf0.decode(b"")


def test_nesting_depth_is_bounded() -> None:
    bomb = b"\x0a\x00\x00\x00\x01" * 10_000 + b"\x05"
    with pytest.raises(AmfError, match="nesting"):
        amf0.decode_all(bomb)
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(AmfError, match="nesting"):
        amf0.encode(deep)


def test_cycles_cannot_be_encoded_forever() -> None:
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(AmfError):
        amf0.encode(cyclic)


def test_unencodable_values() -> None:
    for bad in (object(), b"bytes", {1: "non-string key"}, {"": 1.0}):
        with pytest.raises(AmfError):
            amf0.encode(bad)


amf_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=50)
    | st.just(UNDEFINED) | st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-32768, 32767)),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(min_size=1, max_size=10), children, max_size=5)
    | st.dictionaries(st.text(min_size=1, max_size=10), children, max_size=5).map(EcmaArray)
    | st.builds(TypedObject, st.text(max_size=10), st.dictionaries(st.text(min_size=1, max_size=10), children,
                                                                      max_size=3)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(amf_values, max_size=5))
def test_round_trip_property(values: list[object]) -> None:
    assert amf0.decode_all(amf0.encode(*values)) == values


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_amf_error(data: bytes) -> None:
    start = time.thread_time()  # CPU time: bounded work per input, whatever the machine's load
    try:
        amf0.decode_all(data)
    except AmfError:
        pass
    assert time.thread_time() - start < 0.5


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_commands_raise_only_amf_error(data: st.DataObject) -> None:
    base = bytearray(amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False,
                                                 "capabilities": 239.0, "objectEncoding": 0.0},
                                 EcmaArray(duration=0.0, encoder="Lavf"), [1.0, "x"]))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    try:
        amf0.decode_all(bytes(base))
    except AmfError:
        pass
