"""The one error type every codec configuration parser raises on malformed input."""

from __future__ import annotations


class CodecConfigError(ValueError):
    """A decoder configuration or bitstream header could not be parsed.

    Parsers read untrusted bytes from the network; callers catch this one type (a ValueError) and
    never see IndexError, struct.error or similar from a truncated or hostile input.
    """
