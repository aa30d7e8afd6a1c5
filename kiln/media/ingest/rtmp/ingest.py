"""Glue between protocol servers (RTMP, SRT, MPEG-TS) and the app actors that own streams.

A publish resolves its virtual host from the URL's host, finds the app's actor, and asks it to
open the stream (provider enabled? duplicate name?). The returned sink feeds the LiveStream on the
protocol's own thread; the actor is never on the packet path.
"""

from __future__ import annotations

import logging
from typing import Any

from kiln.actors.base import ActorGone, ask
from kiln.actors.commands import OpenStream
from kiln.actors.context import Context
from kiln.errors import ApiError
from kiln.media.ingest.contract import PublishRejected, PublishRequest
from kiln.media.model import Packet, Track
from kiln.media.stream.live import LiveStream
from kiln.media.vhosts import resolve_vhost

log = logging.getLogger(__name__)


class StreamSink:
    """Feeds a LiveStream from an ingest session (the PublishSink protocol of kiln.media.ingest.rtmp)."""

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


async def open_stream(ctx: Context, *, host: str, app: str, stream: str, provider: str, source_type: str,
                      source_url: str, close_ingest: Any, allow_vhost_name: bool = False) -> LiveStream:
    """Resolve vhost/app and open a stream; raises PublishRejected with a reason."""
    vhost = resolve_vhost(ctx.catalog, host, allow_vhost_name=allow_vhost_name)
    if vhost is None:
        raise PublishRejected(f"no virtual host matches host {host!r}")
    ref = ctx.directory.streams(vhost, app)
    if ref is None:
        raise PublishRejected(f"application not found: {vhost}/{app}")
    if not stream:
        raise PublishRejected("empty stream name")
    try:
        return await ask(ref, OpenStream(stream, provider, source_type, source_url, close_ingest))
    except ApiError as exc:
        raise PublishRejected(exc.text) from exc
    except ActorGone as exc:
        raise PublishRejected(f"application not found: {vhost}/{app}") from exc


class RtmpIngest:
    """The RTMP server's PublishHandler."""

    def __init__(self, ctx: Context, port: int) -> None:
        self.ctx = ctx
        self.port = port

    async def on_publish(self, request: PublishRequest) -> StreamSink:
        host = request.host or "127.0.0.1"
        url = f"rtmp://{host}:{self.port}/{request.app}/{request.stream}"
        stream = await open_stream(self.ctx, host=host, app=request.app, stream=request.stream, provider="rtmp",
                                   source_type="Rtmp", source_url=url, close_ingest=request.session.close)
        log.info("rtmp publish accepted vhost=%s app=%s stream=%s peer=%s:%s", stream.vhost, stream.app,
                 stream.name, request.peer[0], request.peer[1])
        return StreamSink(stream)
