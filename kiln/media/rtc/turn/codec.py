"""STUN messages as the TURN server reads and writes them (RFC 8489, RFC 8656), on top of aioice's codec.

aioice parses what it knows and skips the rest; a server must also refuse a request carrying a
comprehension-required attribute it does not understand (420), and must not let a malformed message raise
anything but its own error. :func:`parse` checks the frame first, then hands it to aioice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from aioice import stun

COOKIE = stun.COOKIE
HEADER = stun.HEADER_LENGTH
SOFTWARE = "Kiln"

# comprehension-required attributes (type < 0x8000) this server reads or may meet in a client's request
_KNOWN_REQUIRED = frozenset({0x0006, 0x0008, 0x0009, 0x000C, 0x000D, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016,
                             0x0017, 0x0019, 0x001A, 0x0020, 0x0024, 0x0025})
REQUESTED_ADDRESS_FAMILY = 0x0017
DONT_FRAGMENT = 0x001A           # accepted: UDP datagrams leave the relay without fragmenting hints anyway


class TurnProtocolError(ValueError):
    """A frame that is not a well-formed STUN message: the connection that sent it is closed."""


@dataclass
class Parsed:
    message: stun.Message
    unknown_required: tuple[int, ...]      # attribute types to list in a 420's UNKNOWN-ATTRIBUTES
    peers: tuple[tuple[str, int], ...] = ()  # every XOR-PEER-ADDRESS (aioice keeps only the last)
    family: int | None = None              # REQUESTED-ADDRESS-FAMILY (1 IPv4, 2 IPv6), not in aioice's table


def parse(data: bytes) -> Parsed:
    """One whole STUN message (framing already cut it); raises :class:`TurnProtocolError`."""
    if len(data) < HEADER:
        raise TurnProtocolError("STUN message shorter than its header")
    kind, length, cookie = struct.unpack_from("!HHI", data)
    if kind & 0xC000:
        raise TurnProtocolError("not a STUN message (first two bits set)")
    if cookie != COOKIE:
        raise TurnProtocolError("STUN message without the magic cookie")
    if length % 4 or HEADER + length != len(data):
        raise TurnProtocolError("STUN message length is not a multiple of 4 or does not match")
    unknown: list[int] = []
    peers: list[tuple[str, int]] = []
    family: int | None = None
    transaction = bytes(data[8:HEADER])
    pos = HEADER
    while pos < len(data):
        if pos + 4 > len(data):
            raise TurnProtocolError("STUN attribute header cut short")
        attr_type, attr_len = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + attr_len
        if end > len(data):
            raise TurnProtocolError(f"STUN attribute 0x{attr_type:04x} runs past the message")
        if attr_type < 0x8000 and attr_type not in _KNOWN_REQUIRED and attr_type not in unknown:
            unknown.append(attr_type)
        if attr_type == REQUESTED_ADDRESS_FAMILY:
            if attr_len != 4:
                raise TurnProtocolError("bad REQUESTED-ADDRESS-FAMILY")
            family = data[pos + 4]
        if attr_type == 0x0012:
            try:
                peers.append(stun.unpack_xor_address(bytes(data[pos + 4:end]), transaction))
            except ValueError as exc:
                raise TurnProtocolError(f"bad XOR-PEER-ADDRESS: {exc}") from None
        pos = end + stun.padding_length(attr_len)
    try:
        message = stun.parse_message(data)
    except (ValueError, struct.error, IndexError) as exc:   # aioice: bad method, address, fingerprint, short value
        raise TurnProtocolError(f"bad STUN message: {exc}") from None
    _check_values(message)
    return Parsed(message, tuple(unknown), tuple(peers), family)


def _check_values(message: stun.Message) -> None:
    """aioice unpacks some attributes without checking their size (a 2-byte LIFETIME would be a struct error
    later); values the server uses are checked here."""
    attrs = message.attributes
    for name in ("LIFETIME", "REQUESTED-TRANSPORT", "CHANNEL-NUMBER"):
        if name in attrs and not isinstance(attrs[name], int):
            raise TurnProtocolError(f"bad {name}")
    if "NONCE" in attrs and len(attrs["NONCE"]) > 763:
        raise TurnProtocolError("NONCE longer than RFC 8489 allows")


def response(request: stun.Message, attributes: dict[str, Any], key: bytes | None) -> bytes:
    """A success response to ``request``, signed with ``key`` when the request was."""
    message = stun.Message(request.message_method, stun.Class.RESPONSE, request.transaction_id,
                           {**attributes, "SOFTWARE": SOFTWARE})
    return _finish(message, key)


def error(request: stun.Message, code: int, reason: str, attributes: dict[str, Any] | None = None,
          key: bytes | None = None, unknown: tuple[int, ...] = ()) -> bytes:
    """An error response: ``ERROR-CODE`` plus ``attributes`` (REALM and NONCE for 401/438). A 420 lists
    ``unknown`` and is never signed (it is answered before authentication)."""
    if unknown and key is not None:
        raise ValueError("a 420 is answered before authentication, unsigned")
    message = stun.Message(request.message_method, stun.Class.ERROR, request.transaction_id,
                           {"ERROR-CODE": (code, reason), **(attributes or {}), "SOFTWARE": SOFTWARE})
    data = bytes(_finish(message, key))
    if unknown:  # UNKNOWN-ATTRIBUTES (0x000A) is not in aioice's table: appended by hand, before any integrity
        data = _finish_raw(data, struct.pack("!HH", 0x000A, 2 * len(unknown))
                           + b"".join(struct.pack("!H", t) for t in unknown)
                           + bytes(stun.padding_length(2 * len(unknown))))
    return data


def indication(method: stun.Method, attributes: dict[str, Any]) -> bytes:
    return bytes(stun.Message(method, stun.Class.INDICATION, attributes=attributes))


def _finish(message: stun.Message, key: bytes | None) -> bytes:
    if key is not None:
        message.add_message_integrity(key)
    else:
        message.add_fingerprint()
    return bytes(message)


def _finish_raw(unsigned_with_fingerprint: bytes, extra: bytes) -> bytes:
    """Insert ``extra`` attributes before the trailing FINGERPRINT and recompute it."""
    body = unsigned_with_fingerprint[:-8] + extra
    body = body[:2] + struct.pack("!H", len(body) - HEADER + 8) + body[4:]
    return body + struct.pack("!HHI", 0x8028, 4, stun.message_fingerprint(body))
