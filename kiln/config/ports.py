"""Port values as OME writes them: ``1935``, ``1935/tcp``, ``4000-4003/udp``, ``4000/udp,4001/udp``."""

from __future__ import annotations

import re

_PROTOCOLS = ("tcp", "udp", "srt")
_ITEM = re.compile(r"^([0-9]+)(?:\s*-\s*([0-9]+))?$")  # ASCII: \d also matches digits int() reads as others


class PortError(ValueError):
    """A port value that is not a port number (the caller adds file and element path)."""


def _strip_protocol(item: str) -> str:
    if "/" in item:
        item, proto = item.rsplit("/", 1)
        if proto.strip().lower() not in _PROTOCOLS:
            raise PortError(f"unknown protocol suffix '/{proto.strip()}'")
    return item.strip()


def _check(digits: str, text: str) -> int:
    """``digits`` (ASCII) as a port. Not int() first: past 4,300 digits it raises ValueError, not PortError."""
    if len(digits.lstrip("0")) > 5 or not 0 <= int(digits) <= 65535:
        shown = digits if len(digits) <= 12 else f"{digits[:12]}... ({len(digits)} digits)"
        raise PortError(f"port {shown} out of range 0-65535 in '{text[:80]}'")
    return int(digits)


def parse_port(text: str) -> int:
    """One port; 0 is allowed and means "let the OS pick" (used by tests)."""
    value = text.strip()
    if not value:
        raise PortError("empty port")
    body = _strip_protocol(value)
    if not (body.isascii() and body.isdigit()):  # isdigit alone takes '²', which int() refuses
        raise PortError(f"'{value[:80]}' is not a port number")
    return _check(body, value)


def parse_port_list(text: str) -> list[int]:
    """A list with ranges; a protocol suffix may follow each item or only the last one (OME allows both)."""
    out: list[int] = []
    seen: set[int] = set()
    value = text.strip()
    if not value:
        raise PortError("empty port list")
    for raw in value.split(","):
        body = _strip_protocol(raw.strip())
        match = _ITEM.match(body)
        if match is None:
            raise PortError(f"'{raw.strip()}' is not a port or port range in '{value}'")
        first = _check(match.group(1), value)
        last = _check(match.group(2), value) if match.group(2) else first
        if last < first:
            raise PortError(f"port range '{body}' runs backwards in '{value}'")
        for port in range(first, last + 1):
            if port not in seen:
                seen.add(port)
                out.append(port)
    return out
