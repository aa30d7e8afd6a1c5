"""The RTMP server's publish handler: an RTMP publish becomes a :class:`PublishRequest`.

The vhost comes from the tcUrl's host; the stream opener (the control plane) has the last word on
the app, the provider and the name. The returned sink feeds the LiveStream on the event loop; the
opener is never on the packet path.
"""

from __future__ import annotations

import logging
from typing import Any

from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal, StreamOpener, VhostRouter
from kiln.media.ingest.rtmp.handler import RtmpPublish
from kiln.media.model import Packet, Track
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)


class StreamSink:
    """Feeds a LiveStream from an RTMP session (the session's PublishSink)."""

    def __init__(self, stream: LiveStream) -> None:
        self.stream = stream

    def on_metadata(self, meta: dict[str, Any]) -> None:
        self.stream.on_metadata(meta)

    def on_track(self, track: Track) -> None:
        self.stream.on_track(track)

    def on_packet(self, packet: Packet) -> None:
        self.stream.ingest(packet)

    def on_close(self, reason: str) -> None:
        self.stream.end(reason)


class RtmpIngest:
    """The RTMP server's PublishHandler."""

    def __init__(self, opener: StreamOpener, router: VhostRouter, port: int) -> None:
        self.opener = opener
        self.router = router
        self.port = port

    async def on_publish(self, request: RtmpPublish) -> StreamSink:
        host = request.host or "127.0.0.1"
        vhost = self.router.vhost_for_host(host)
        if vhost is None:
            raise PublishRejected(f"no virtual host matches host {host!r}", Refusal.NOT_FOUND)
        url = f"rtmp://{host}:{self.port}/{request.app}/{request.stream}"
        stream = await self.opener.open_stream(PublishRequest(
            vhost, request.app, request.stream, provider="rtmp", source_type="Rtmp", source_url=url,
            close_source=request.session.close))
        log.info("rtmp publish accepted vhost=%s app=%s stream=%s peer=%s:%s", stream.vhost, stream.app,
                 stream.name, request.peer[0], request.peer[1])
        return StreamSink(stream)
