"""The contract between the RTMP server and its publish handler (the RTMP side of ingest).

The server knows RTMP; the handler knows vhosts, apps and streams. A publish becomes an
:class:`RtmpPublish`; the handler accepts it by returning a :class:`PublishSink` (which then gets
the tracks and packets) or refuses it by raising :class:`~kiln.media.ingest.contract.PublishRejected`,
whose reason the client sees in onStatus ("NetStream.Publish.BadName" for a taken name,
"NetStream.Publish.Rejected" otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kiln.media.ingest.contract import PublishRejected, Refusal
from kiln.media.model import Packet, Track

REJECTED = "NetStream.Publish.Rejected"
BAD_NAME = "NetStream.Publish.BadName"


class RtmpSessionHandle(Protocol):
    """One RTMP connection, as the handler may hold it."""

    bytes_received: int

    def close(self, reason: str) -> None:
        """Drop the connection (the encoder sees the TCP disconnect). Thread-safe: callable from any
        thread; the work is scheduled on the server's event loop."""


@dataclass(frozen=True)
class RtmpPublish:
    app: str
    stream: str
    query: str          # raw query string from the stream key or the tcUrl, without "?" ("" if none)
    tc_url: str
    host: str           # host from tcUrl (vhost resolution); "" when the client sent no tcUrl
    peer: tuple[str, int]
    session: RtmpSessionHandle


def status_code(rejection: PublishRejected) -> str:
    """The NetStream status code a refused publisher sees."""
    return BAD_NAME if rejection.kind is Refusal.CONFLICT else REJECTED


class PublishSink(Protocol):
    """Receives one accepted publish. Called on the event-loop thread; must not block."""

    def on_metadata(self, meta: dict[str, Any]) -> None: ...

    def on_track(self, track: Track) -> None: ...

    def on_packet(self, packet: Packet) -> None: ...

    def on_close(self, reason: str) -> None:
        """Exactly once per accepted publish: "unpublished", "disconnected", "timeout",
        "closed: <why>" or "protocol error: <why>"."""


class PublishHandler(Protocol):
    async def on_publish(self, request: RtmpPublish) -> PublishSink:
        """Accept (return a sink) or refuse (raise PublishRejected)."""
