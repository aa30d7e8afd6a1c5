"""The RTMP server's publish handler: an RTMP publish becomes a :class:`PublishRequest`.

The vhost comes from the tcUrl's host; the stream opener (the control plane) has the last word on
the app, the provider and the name. The returned sink feeds the LiveStream on the event loop; the
opener is never on the packet path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kiln.admission.closing import notify_closed
from kiln.admission.contract import Admission, AdmissionRequest, Admitter, Direction, OpenDoor
from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal, StreamOpener, VhostRouter
from kiln.media.ingest.rtmp.handler import RtmpPublish
from kiln.media.model import Packet, Track
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)


class StreamSink:
    """Feeds a LiveStream from an RTMP session (the session's PublishSink)."""

    def __init__(self, stream: LiveStream, on_end: Callable[[], None] | None = None) -> None:
        self.stream = stream
        self.on_end = on_end
        self.on_packet: Callable[[Packet], None] = stream.ingest  # every packet: no call of our own in between

    def on_metadata(self, meta: dict[str, Any]) -> None:
        self.stream.on_metadata(meta)

    def on_track(self, track: Track) -> None:
        self.stream.on_track(track)

    def on_close(self, reason: str) -> None:
        self.stream.end(reason)
        if self.on_end is not None:
            self.on_end()


class RtmpIngest:
    """The RTMP server's PublishHandler."""

    def __init__(self, opener: StreamOpener, router: VhostRouter, port: int, *,
                 admission: Admitter | None = None) -> None:
        self.opener = opener
        self.router = router
        self.port = port
        self.admission: Admitter = admission or OpenDoor()

    async def on_publish(self, request: RtmpPublish) -> StreamSink:
        host = request.host or "127.0.0.1"
        vhost = self.router.vhost_for_host(host)
        if vhost is None:
            raise PublishRejected(f"no virtual host matches host {host!r}", Refusal.NOT_FOUND)
        ask = AdmissionRequest("RTMP", Direction.INCOMING, self._signed_url(request, host), request.peer, vhost,
                               request.app, request.stream)
        admission = await self.admission.admit(ask)
        if not admission.allowed:  # OME closes the connection
            raise PublishRejected(f"access denied: {admission.reason}")
        app, name = request.app, request.stream
        if admission.new_url:
            vhost, app, name = self._redirect(admission.new_url, vhost, app, name)
        url = f"rtmp://{host}:{self.port}/{app}/{name}"
        stream = await self.opener.open_stream(PublishRequest(
            vhost, app, name, provider="rtmp", source_type="Rtmp", source_url=url,
            close_source=request.session.close))
        log.info("rtmp publish accepted vhost=%s app=%s stream=%s peer=%s:%s", stream.vhost, stream.app,
                 stream.name, request.peer[0], request.peer[1])
        return StreamSink(stream, self._lease(ask, admission, request))

    def _signed_url(self, request: RtmpPublish, host: str) -> str:
        """The URL as OME signs it: tcUrl's host and port (the listener's port when omitted)."""
        try:
            port = urlsplit(request.tc_url).port or self.port
        except ValueError:
            port = self.port
        query = f"?{request.query}" if request.query else ""
        return f"rtmp://{host}:{port}/{request.app}/{request.stream}{query}"

    def _redirect(self, new_url: str, vhost: str, app: str, name: str) -> tuple[str, str, str]:
        """An admission's ``new_url`` replaces host (vhost), app and stream."""
        parts = urlsplit(new_url)
        segments = [s for s in parts.path.split("/") if s]
        new_vhost = self.router.vhost_for_host(parts.hostname or "") if parts.hostname else vhost
        if new_vhost is None or len(segments) < 2:
            raise PublishRejected(f"admission redirect {new_url!r} names no stream of this server",
                                  Refusal.NOT_FOUND)
        log.info("rtmp publish redirected from=%s/%s/%s to=%s/%s/%s", vhost, app, name, new_vhost, segments[0],
                 segments[1])
        return new_vhost, segments[0], segments[1]

    def _lease(self, ask: AdmissionRequest, admission: Admission, request: RtmpPublish) -> Callable[[], None]:
        """Cut the publish at the admission's deadline; when it ends, cancel that and tell admission."""
        loop = asyncio.get_running_loop()
        left = admission.seconds_left(int(time.time() * 1000))
        timer = None
        if left is not None:
            timer = loop.call_later(left, request.session.close, "admission expired")

        def ended() -> None:
            if timer is not None:
                timer.cancel()
            notify_closed(self.admission, ask)

        return ended
