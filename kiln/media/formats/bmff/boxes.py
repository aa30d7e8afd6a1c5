"""Box and FullBox framing (ISO/IEC 14496-12 §4.2): the only place that writes box headers."""

from __future__ import annotations

import struct

from kiln.media.formats.bmff.errors import BmffError

_HEADER = struct.Struct(">I4s")
_LARGE_HEADER = struct.Struct(">I4sQ")
_VERSION_FLAGS = struct.Struct(">I")
MAX_COMPACT_SIZE = 0xFFFFFFFF  # a box up to this size keeps the 8-byte header


def box_header(box_type: bytes, payload_size: int) -> bytes:
    """The header of a box whose payload is ``payload_size`` bytes (16 bytes with a 64-bit largesize).

    Separate from :func:`box` so that ``mdat`` can be framed without copying its payload twice.
    """
    if len(box_type) != 4:
        raise BmffError(f"box type must be 4 bytes, got {box_type!r}")
    size = payload_size + 8
    if size <= MAX_COMPACT_SIZE:
        return _HEADER.pack(size, box_type)
    return _LARGE_HEADER.pack(1, box_type, size + 8)


def box(box_type: bytes, *payloads: bytes) -> bytes:
    """A complete box: header, then ``payloads`` concatenated."""
    return b"".join((box_header(box_type, sum(map(len, payloads))), *payloads))


def full_box(box_type: bytes, version: int, flags: int, *payloads: bytes) -> bytes:
    """A FullBox: a box whose payload starts with an 8-bit version and 24-bit flags."""
    if not 0 <= version <= 0xFF or not 0 <= flags <= 0xFFFFFF:
        raise BmffError(f"FullBox {box_type!r}: version {version} or flags {flags:#x} out of range")
    return box(box_type, _VERSION_FLAGS.pack(version << 24 | flags), *payloads)
