"""NAL unit framing shared by H.264 and H.265: Annex-B start codes and length prefixes.

The model carries video as 4-byte length-prefixed NAL units (AVCC/HVCC). Encoders and containers
also produce Annex-B (start codes) and 1- or 2-byte length prefixes; these helpers convert with
``bytes.find``/``struct`` per NAL unit, never per byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from kiln.media.formats.codecs.errors import CodecConfigError

START_CODE = b"\x00\x00\x00\x01"
_LENGTH_FORMATS = {1: ">B", 2: ">H", 4: ">I"}
_EMULATION = b"\x00\x00\x03"


def unescape_rbsp(nal: bytes) -> bytes:
    """Drop emulation-prevention bytes (00 00 03 -> 00 00) to get the raw byte sequence payload."""
    if _EMULATION not in nal:
        return bytes(nal)
    return bytes(nal).replace(_EMULATION, b"\x00\x00")


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes so that no 00 00 0x (x <= 3) appears in the NAL unit."""
    out = bytearray()
    start = 0
    i = 0
    n = len(rbsp)
    while True:
        j = rbsp.find(b"\x00\x00", i)  # an escape is only ever needed after a zero pair
        if j < 0 or j + 2 >= n:
            break
        if rbsp[j + 2] <= 3:
            out += rbsp[start:j + 2]
            out.append(3)
            start = i = j + 2
        else:
            i = j + 1
    out += rbsp[start:]
    if out.endswith(b"\x00\x00"):  # trailing cabac_zero_words get a final 0x03
        out.append(3)
    return bytes(out)


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream (3- or 4-byte start codes; leading junk before the first
    start code and trailing zero bytes are dropped)."""
    nals: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    if pos < 0:
        return nals
    pos += 3
    n = len(data)
    while pos < n:
        nxt = data.find(b"\x00\x00\x01", pos)
        end = n if nxt < 0 else nxt
        nal = data[pos:end].rstrip(b"\x00")
        if nal:
            nals.append(bytes(nal))
        if nxt < 0:
            break
        pos = nxt + 3
    return nals


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(START_CODE)


def iter_length_prefixed(data: bytes | memoryview, length_size: int = 4) -> Iterator[memoryview]:
    """NAL units of a length-prefixed access unit; raises CodecConfigError when a length overruns."""
    fmt = _LENGTH_FORMATS.get(length_size)
    if fmt is None:
        raise CodecConfigError(f"unsupported NAL length size {length_size}")
    view = memoryview(data)
    n = len(view)
    pos = 0
    while pos < n:
        if pos + length_size > n:
            raise CodecConfigError(f"truncated NAL length at offset {pos}")
        (size,) = struct.unpack_from(fmt, view, pos)
        pos += length_size
        if size == 0 or pos + size > n:
            raise CodecConfigError(f"bad NAL length {size} at offset {pos - length_size} (access unit {n} bytes)")
        yield view[pos:pos + size]
        pos += size


def length_prefixed_is_valid(data: bytes | memoryview, length_size: int = 4) -> bool:
    """True when the buffer is an exact sequence of non-empty length-prefixed NAL units."""
    try:
        for _ in iter_length_prefixed(data, length_size):
            pass
    except CodecConfigError:
        return False
    return True


def to_length_prefixed(nals: list[bytes] | list[memoryview]) -> bytes:
    """Join NAL units with 4-byte big-endian lengths (the model's form)."""
    pack = struct.Struct(">I").pack
    parts: list[bytes | memoryview] = []
    for nal in nals:
        parts.append(pack(len(nal)))
        parts.append(nal)
    return b"".join(parts)


def annexb_to_length_prefixed(data: bytes) -> bytes:
    """``to_length_prefixed(split_annexb(data))`` with one copy of the payload instead of two (every
    H.264/H.265 access unit of a TS or RTSP input goes through here)."""
    view = memoryview(data)
    pack = struct.Struct(">I").pack
    parts: list[bytes | memoryview] = []
    pos = data.find(b"\x00\x00\x01")
    if pos < 0:
        return b""
    pos += 3
    n = len(data)
    while pos < n:
        nxt = data.find(b"\x00\x00\x01", pos)
        end = n if nxt < 0 else nxt
        while end > pos and data[end - 1] == 0:  # trailing zeros (the next 4-byte start code's first byte)
            end -= 1
        if end > pos:
            parts.append(pack(end - pos))
            parts.append(view[pos:end])
        if nxt < 0:
            break
        pos = nxt + 3
    return b"".join(parts)


def length_prefixed_to_annexb(data: bytes | memoryview, length_size: int = 4) -> bytes:
    parts: list[bytes | memoryview] = []
    for nal in iter_length_prefixed(data, length_size):
        parts.append(START_CODE)
        parts.append(nal)
    return b"".join(parts)


def convert_length_size(data: bytes | memoryview, length_size: int) -> bytes:
    """Re-prefix an access unit that uses 1-, 2- or 4-byte NAL lengths with 4-byte lengths."""
    if length_size == 4:
        if not length_prefixed_is_valid(data, 4):
            raise CodecConfigError("access unit is not a valid 4-byte length-prefixed NAL sequence")
        return bytes(data)
    return to_length_prefixed(list(iter_length_prefixed(data, length_size)))
