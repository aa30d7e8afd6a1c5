"""ID3v2.4 tags for timed metadata (``sendEvent``), byte-for-byte as OME builds them (rest-spec §11.1).

Header ``ID3`` 04 00, flags 00, synchsafe size; frames with a 4-byte id, synchsafe size and flags 00 00;
text is UTF-8 (encoding byte 0x03) with no terminator. One deliberate difference: OME writes a frame id
as given with no length check, which yields a corrupt tag for ids that are not 4 bytes long; Kiln refuses
them with :class:`Id3Error` instead, and likewise a plain text frame whose id is not a text frame's
(``TXXX`` or an id not starting with ``T``), which readers would parse as a frame it is not.
Strings are otherwise written as given (a NUL inside a TXXX
description or PRIV owner is written too, as OME does; readers will split there).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field

UTF8 = 0x03
MAX_SYNCHSAFE = (1 << 28) - 1
_HEADER = struct.Struct(">3sBBBI")     # "ID3", version, revision, flags, synchsafe size
_FRAME_HEADER = struct.Struct(">4sIH")  # id, synchsafe size, flags
_ENCODINGS = {0x00: ("latin-1", b"\0"), 0x01: ("utf-16", b"\0\0"), 0x02: ("utf-16-be", b"\0\0"),
              0x03: ("utf-8", b"\0")}


class Id3Error(ValueError):
    """A frame or tag that cannot be written, or bytes that are not an ID3v2.4 tag Kiln can read."""


def synchsafe(value: int) -> int:
    """``value`` as a 32-bit synchsafe integer (7 bits per byte, top bit clear)."""
    if not 0 <= value <= MAX_SYNCHSAFE:
        raise Id3Error(f"{value} does not fit a synchsafe integer (max {MAX_SYNCHSAFE})")
    return (value & 0x7F) | (value & 0x3F80) << 1 | (value & 0x1FC000) << 2 | (value & 0xFE00000) << 3


def unsynchsafe(value: int) -> int:
    if value & 0x80808080:
        raise Id3Error(f"{value:#010x} is not a synchsafe integer")
    return (value & 0x7F) | (value & 0x7F00) >> 1 | (value & 0x7F0000) >> 2 | (value & 0x7F000000) >> 3


class Id3Frame(ABC):
    """Base of the frame types; the factories are what callers use (``Id3Frame.txxx(...)``)."""

    frame_id: str

    @abstractmethod
    def payload(self) -> bytes:
        """The frame body after the 10-byte frame header."""

    @staticmethod
    def txxx(description: str, value: str) -> UserTextFrame:
        return UserTextFrame(description, value)

    @staticmethod
    def text(frame_id: str, text: str) -> TextFrame:
        return TextFrame(frame_id, text)

    @staticmethod
    def priv(owner: str, data: bytes) -> PrivateFrame:
        return PrivateFrame(owner, data)


@dataclass(frozen=True)
class TextFrame(Id3Frame):
    """A T*** text information frame (any id starting with ``T`` other than TXXX)."""

    frame_id: str
    value: str

    def payload(self) -> bytes:
        return bytes((UTF8,)) + self.value.encode("utf-8")


@dataclass(frozen=True)
class UserTextFrame(Id3Frame):
    """TXXX: a user-defined description/value pair."""

    frame_id: str = field(default="TXXX", init=False)
    description: str
    value: str

    def payload(self) -> bytes:
        return b"".join((bytes((UTF8,)), self.description.encode("utf-8"), b"\0", self.value.encode("utf-8")))


@dataclass(frozen=True)
class PrivateFrame(Id3Frame):
    """PRIV: an owner identifier and opaque bytes."""

    frame_id: str = field(default="PRIV", init=False)
    owner: str
    data: bytes

    def payload(self) -> bytes:
        return self.owner.encode("utf-8") + b"\0" + self.data


@dataclass(frozen=True)
class RawFrame(Id3Frame):
    """Any other frame, or one with format flags set, kept as read (only :func:`parse_id3v24_tag` makes these)."""

    frame_id: str
    data: bytes
    flags: int = 0

    def payload(self) -> bytes:
        return self.data


def _frame_bytes(frame: Id3Frame) -> bytes:
    frame_id = frame.frame_id.encode("utf-8")
    if len(frame_id) != 4:
        raise Id3Error(f"ID3 frame id must be 4 bytes, got {frame.frame_id!r} ({len(frame_id)} bytes)")
    if isinstance(frame, TextFrame) and (not frame.frame_id.startswith("T") or frame.frame_id == "TXXX"):
        raise Id3Error(f"{frame.frame_id!r} is not a text information frame id (TXXX takes a description)")
    payload = frame.payload()
    flags = frame.flags if isinstance(frame, RawFrame) else 0
    return _FRAME_HEADER.pack(frame_id, synchsafe(len(payload)), flags) + payload


def build_id3v24_tag(frames: Iterable[Id3Frame]) -> bytes:
    """One ID3v2.4 tag holding ``frames`` in order (no padding, no extended header, no footer)."""
    body = b"".join(map(_frame_bytes, frames))
    if not body:
        raise Id3Error("an ID3v2 tag needs at least one frame")
    return _HEADER.pack(b"ID3", 4, 0, 0, synchsafe(len(body))) + body


def _split_terminated(data: bytes, terminator: bytes) -> tuple[bytes, bytes]:
    """(before, after) the first terminator; for UTF-16 only at even offsets."""
    step = len(terminator)
    pos = data.find(terminator)
    while pos >= 0 and pos % step:
        pos = data.find(terminator, pos + 1)
    if pos < 0:
        raise Id3Error("string terminator missing")
    return data[:pos], data[pos + step:]


def _decode(raw: bytes, codec: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise Id3Error(f"text is not valid {codec}") from exc


def _typed_frame(frame_id: str, payload: bytes) -> Id3Frame:
    if frame_id == "PRIV":
        owner, data = _split_terminated(payload, b"\0")
        return PrivateFrame(_decode(owner, "utf-8"), data)
    if frame_id.startswith("T"):
        if not payload or payload[0] not in _ENCODINGS:
            raise Id3Error(f"{frame_id}: unknown text encoding")
        codec, terminator = _ENCODINGS[payload[0]]
        if frame_id == "TXXX":
            description, value = _split_terminated(payload[1:], terminator)
            return UserTextFrame(_decode(description, codec), _decode(value, codec))
        return TextFrame(frame_id, _decode(payload[1:], codec))
    return RawFrame(frame_id, payload)


def parse_id3v24_tag(data: bytes) -> list[Id3Frame]:
    """The frames of an ID3v2.4 tag at the start of ``data`` (padding and a footer are allowed).

    Text is returned exactly as stored (no terminator stripping). Frames with format flags
    (compression, encryption, unsynchronisation) come back as :class:`RawFrame`.
    """
    if len(data) < _HEADER.size:
        raise Id3Error("shorter than an ID3v2 header")
    magic, version, _, flags, raw_size = _HEADER.unpack_from(data)
    if magic != b"ID3" or version != 4:
        raise Id3Error(f"not an ID3v2.4 tag (magic {magic!r}, version {version})")
    if flags & 0x80:
        raise Id3Error("tag-wide unsynchronisation is not supported")
    end = _HEADER.size + unsynchsafe(raw_size)
    if end > len(data):
        raise Id3Error(f"tag size {end} exceeds the {len(data)} bytes given")
    pos = _HEADER.size
    if flags & 0x40:  # extended header: its synchsafe size counts itself
        if pos + 4 > end:
            raise Id3Error("truncated extended header")
        pos += unsynchsafe(int.from_bytes(data[pos:pos + 4], "big"))
    frames: list[Id3Frame] = []
    while pos + _FRAME_HEADER.size <= end and data[pos] != 0:
        raw_id, raw_frame_size, frame_flags = _FRAME_HEADER.unpack_from(data, pos)
        size = unsynchsafe(raw_frame_size)
        start = pos + _FRAME_HEADER.size
        if start + size > end:
            raise Id3Error(f"frame {raw_id!r} at {pos} runs past the end of the tag")
        frame_id = _decode(raw_id, "utf-8")
        payload = data[start:start + size]
        frames.append(RawFrame(frame_id, payload, frame_flags) if frame_flags & 0x00FF
                      else _typed_frame(frame_id, payload))
        pos = start + size
    if pos < end and any(data[pos:end]):
        raise Id3Error(f"garbage after the last frame at {pos}")
    return frames
