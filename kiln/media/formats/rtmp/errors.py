"""Error types of the RTMP ingest: each closes only the connection that caused it."""

from __future__ import annotations


class RtmpProtocolError(ValueError):
    """The peer broke the RTMP chunk/message protocol (or sent something this server refuses)."""


class FlvError(RtmpProtocolError):
    """An audio/video message body (an FLV tag body) is malformed or uses an unsupported codec."""
