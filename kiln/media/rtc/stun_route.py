"""Which ICE session a datagram on a shared UDP port belongs to, read from the bytes alone (pure).

A STUN Binding request names its target in USERNAME (``<receiver ufrag>:<sender ufrag>``, RFC 8445
§7.2.2), so a check is routed by the receiver's ufrag; every other datagram (STUN responses, DTLS,
SRTP, SRTCP) by the address the session has already spoken with.
"""

from __future__ import annotations

import struct

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
USERNAME = 0x0006
HEADER = 20
MAX_USERNAME = 513  # RFC 8489 §14.3


def is_stun(data: bytes) -> bool:
    """STUN's first two bits are zero and it carries the magic cookie (RFC 7983 demultiplexing)."""
    return len(data) >= HEADER and data[0] < 4 and struct.unpack_from(">I", data, 4)[0] == MAGIC_COOKIE


def binding_request_ufrag(data: bytes) -> str | None:
    """The receiver's ufrag of a STUN Binding request, or None (not one, or malformed)."""
    if not is_stun(data):
        return None
    kind, length = struct.unpack_from(">HH", data, 0)
    if kind != BINDING_REQUEST or HEADER + length > len(data):
        return None
    pos, end = HEADER, HEADER + length
    while pos + 4 <= end:
        attr, size = struct.unpack_from(">HH", data, pos)
        pos += 4
        if pos + size > end:
            return None
        if attr == USERNAME:
            if size > MAX_USERNAME:
                return None
            try:
                username = data[pos:pos + size].decode("utf-8")
            except UnicodeDecodeError:
                return None
            ufrag, sep, _ = username.partition(":")
            return ufrag if sep and ufrag else None
        pos += (size + 3) & ~3
    return None
