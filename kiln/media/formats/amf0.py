"""AMF0 (Adobe "Action Message Format -- AMF 0", 2006): RTMP command and data message values.

Commands (connect, publish, ...) and onMetaData arrive as AMF0 from untrusted peers, so decoding
is bounded: nesting depth is capped, every count is checked against the bytes left, and anything
malformed raises :class:`AmfError` (a ValueError) rather than IndexError or RecursionError.
References (marker 0x07) share a container instead of repeating it, so a few bytes could stand for
an exponentially large tree, which every later walk (onMetaData to JSON, logging) would expand: a
reference to a container still open (a cycle) is refused, and the decoded tree, references
expanded, may hold at most ``MAX_EXPANSION`` values more than the message has bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 32
MAX_EXPANSION = 1 << 16

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
MOVIECLIP = 0x04
NULL = 0x05
UNDEFINED_MARKER = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
UNSUPPORTED_MARKER = 0x0D
RECORDSET = 0x0E
XML_DOCUMENT = 0x0F
TYPED_OBJECT = 0x10
AVMPLUS = 0x11

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class AmfError(ValueError):
    """Malformed or unsupported AMF0 data."""


class _Marker:
    """A value with no payload (undefined, unsupported); one instance each, compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNDEFINED = _Marker("UNDEFINED")
UNSUPPORTED = _Marker("UNSUPPORTED")


class EcmaArray(dict[str, Any]):
    """An AMF0 ECMA array: a dict that encodes with the ECMA array marker (onMetaData uses it)."""


class XmlDocument(str):
    """An AMF0 XML document: a str that encodes with the XML marker."""


@dataclass(frozen=True, slots=True)
class AmfDate:
    millis: float            # milliseconds since the epoch, UTC
    timezone: int = 0        # reserved by the spec; kept for round trips


@dataclass(slots=True)
class TypedObject:
    class_name: str
    fields: dict[str, Any] = field(default_factory=dict)


class _Decoder:
    __slots__ = ("data", "pos", "refs", "sizes", "count", "limit")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int) -> None:
        self.data = bytes(data)
        self.pos = pos
        self.refs: list[Any] = []
        self.sizes: list[int | None] = []   # per referencable container: its tree size, None while open
        self.count = 0                      # values decoded so far, each reference counted as what it expands to
        self.limit = len(self.data) + MAX_EXPANSION

    def _open(self, container: Any) -> int:
        self.refs.append(container)
        self.sizes.append(None)
        return len(self.refs) - 1

    def _close(self, index: int, count_before: int) -> None:
        self.sizes[index] = self.count - count_before + 1

    def _reference(self, index: int) -> Any:
        if index >= len(self.refs):
            raise AmfError(f"AMF0 reference {index} to an object not yet seen")
        size = self.sizes[index]
        if size is None:
            raise AmfError(f"AMF0 reference {index} to an object that contains it (a cycle)")
        self.count += size - 1
        if self.count > self.limit:
            raise AmfError(f"AMF0 references expand to more than {self.limit} values")
        return self.refs[index]

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise AmfError(f"AMF0 data truncated at offset {self.pos} (wanted {n} bytes)")

    def _utf8(self, n: int) -> str:
        self._need(n)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def _short_string(self) -> str:
        self._need(2)
        (n,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return self._utf8(n)

    def _properties(self, target: dict[str, Any], depth: int) -> None:
        while True:
            key = self._short_string()
            self._need(1)
            if key == "":
                if self.data[self.pos] != OBJECT_END:
                    raise AmfError(f"AMF0 empty property name not followed by object-end at offset {self.pos}")
                self.pos += 1
                return
            target[key] = self.value(depth + 1)

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise AmfError(f"AMF0 nesting deeper than {MAX_DEPTH}")
        self.count += 1
        self._need(1)
        marker = self.data[self.pos]
        self.pos += 1
        if marker == NUMBER:
            self._need(8)
            (number,) = _DOUBLE.unpack_from(self.data, self.pos)
            self.pos += 8
            return number
        if marker == BOOLEAN:
            self._need(1)
            self.pos += 1
            return self.data[self.pos - 1] != 0
        if marker == STRING:
            return self._short_string()
        if marker == OBJECT:
            obj: dict[str, Any] = {}
            index, before = self._open(obj), self.count
            self._properties(obj, depth)
            self._close(index, before)
            return obj
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == REFERENCE:
            self._need(2)
            (ref,) = _U16.unpack_from(self.data, self.pos)
            self.pos += 2
            return self._reference(ref)
        if marker == ECMA_ARRAY:
            self._need(4)
            self.pos += 4  # the count is only a hint; the object-end marker terminates the array
            arr = EcmaArray()
            index, before = self._open(arr), self.count
            self._properties(arr, depth)
            self._close(index, before)
            return arr
        if marker == STRICT_ARRAY:
            self._need(4)
            (count,) = _U32.unpack_from(self.data, self.pos)
            self.pos += 4
            if count > len(self.data) - self.pos:  # every element takes at least one byte
                raise AmfError(f"AMF0 strict array count {count} exceeds the data")
            items: list[Any] = []
            index, before = self._open(items), self.count
            for _ in range(count):
                items.append(self.value(depth + 1))
            self._close(index, before)
            return items
        if marker == DATE:
            self._need(10)
            millis, tz = _DATE.unpack_from(self.data, self.pos)
            self.pos += 10
            return AmfDate(millis, tz)
        if marker in (LONG_STRING, XML_DOCUMENT):
            self._need(4)
            (n,) = _U32.unpack_from(self.data, self.pos)
            self.pos += 4
            text = self._utf8(n)
            return XmlDocument(text) if marker == XML_DOCUMENT else text
        if marker == UNSUPPORTED_MARKER:
            return UNSUPPORTED
        if marker == TYPED_OBJECT:
            typed = TypedObject(self._short_string())
            index, before = self._open(typed), self.count
            self._properties(typed.fields, depth)
            self._close(index, before)
            return typed
        if marker == OBJECT_END:
            raise AmfError(f"AMF0 object-end marker outside an object at offset {self.pos - 1}")
        if marker == AVMPLUS:
            raise AmfError("AMF0 switch to AMF3 (avmplus-object) is not supported")
        raise AmfError(f"AMF0 marker 0x{marker:02x} is not supported (offset {self.pos - 1})")


def decode(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
    """One value from ``data`` at ``offset``; returns (value, offset after it).

    Decoded values are Any: they are whatever the peer sent (number, string, object, array, ...),
    and each command handler checks the shape it expects."""
    dec = _Decoder(data, offset)
    return dec.value(), dec.pos


def decode_all(data: bytes | bytearray | memoryview) -> list[Any]:
    """Every value in a command or data message body (references are scoped to the message)."""
    dec = _Decoder(data, 0)
    values = []
    while dec.pos < len(dec.data):
        values.append(dec.value())
    return values


def _encode_key(key: object, out: bytearray) -> None:
    if not isinstance(key, str):
        raise AmfError(f"AMF0 object keys must be strings, not {type(key).__name__}")
    raw = key.encode("utf-8")
    if not raw or len(raw) > 0xFFFF:
        raise AmfError("AMF0 object keys must be 1..65535 bytes")
    out += _U16.pack(len(raw)) + raw


def _encode_properties(props: Mapping[str, object], out: bytearray, depth: int) -> None:
    for key, val in props.items():
        _encode_key(key, out)
        _encode(val, out, depth + 1)
    out += b"\x00\x00\x09"


def _encode(value: object, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AmfError(f"AMF0 nesting deeper than {MAX_DEPTH} (or a cycle)")
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif value is UNSUPPORTED:
        out.append(UNSUPPORTED_MARKER)
    elif isinstance(value, bool):
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError as exc:
            raise AmfError(f"integer {value} does not fit an AMF0 number") from exc
        out.append(NUMBER)
        out += _DOUBLE.pack(number)
    elif isinstance(value, XmlDocument):
        raw = value.encode("utf-8")
        out.append(XML_DOCUMENT)
        out += _U32.pack(len(raw)) + raw
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw)) + raw
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw)) + raw
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_properties(value, out, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(value, out, depth)
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += _DATE.pack(value.millis, value.timezone)
    elif isinstance(value, TypedObject):
        raw = value.class_name.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise AmfError("AMF0 typed object class name longer than 65535 bytes")
        out.append(TYPED_OBJECT)
        out += _U16.pack(len(raw)) + raw
        _encode_properties(value.fields, out, depth)
    else:
        raise AmfError(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: object) -> bytes:
    """The AMF0 encoding of ``values`` in order (a command is name, transaction id, object, args...)."""
    out = bytearray()
    for value in values:
        _encode(value, out, 0)
    return bytes(out)
