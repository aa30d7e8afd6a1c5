"""The contract between the RTMP server and whoever owns streams (the ingest glue).

The server knows RTMP; the handler knows vhosts, apps and streams. A publish becomes a
:class:`PublishRequest`; the handler accepts it by returning a :class:`PublishSink` (which then gets
the tracks and packets) or refuses it by raising :class:`PublishRejected`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kiln.media.model import Packet, Track


class RtmpSessionHandle(Protocol):
    """One RTMP connection, as the handler may hold it."""

    bytes_received: int

    def close(self, reason: str) -> None:
        """Drop the connection (the encoder sees the TCP disconnect). Thread-safe: callable from any
        thread; the work is scheduled on the server's event loop."""


@dataclass(frozen=True)
class PublishRequest:
    app: str
    stream: str
    query: str          # raw query string from the stream key or the tcUrl, without "?" ("" if none)
    tc_url: str
    host: str           # host from tcUrl (vhost resolution); "" when the client sent no tcUrl
    peer: tuple[str, int]
    session: RtmpSessionHandle


class PublishRejected(Exception):
    """Raised by a handler to refuse a publish; ``reason`` is sent to the client and logged.

    ``code`` is the NetStream status code the client sees: "NetStream.Publish.Rejected" by default,
    "NetStream.Publish.BadName" for a name that is taken or invalid.
    """

    def __init__(self, reason: str, code: str = "NetStream.Publish.Rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PublishSink(Protocol):
    """Receives one accepted publish. Called on the event-loop thread; must not block."""

    def on_metadata(self, meta: dict[str, Any]) -> None: ...

    def on_track(self, track: Track) -> None: ...

    def on_packet(self, packet: Packet) -> None: ...

    def on_close(self, reason: str) -> None:
        """Exactly once per accepted publish: "unpublished", "disconnected", "timeout",
        "closed: <why>" or "protocol error: <why>"."""


class PublishHandler(Protocol):
    async def on_publish(self, request: PublishRequest) -> PublishSink:
        """Accept (return a sink) or refuse (raise PublishRejected)."""
