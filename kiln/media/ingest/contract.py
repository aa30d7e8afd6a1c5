"""The one contract between every ingest protocol and the control plane that owns streams.

An ingest (RTMP, SRT, MPEG-TS; the RTSP pull goes through its hooks) turns what a publisher sent
into a :class:`PublishRequest` and asks a :class:`StreamOpener` for the stream. The answer is the
stream itself, which the ingest then feeds on its own thread: the control plane decides once and is
never on the packet path. A refusal is a :class:`PublishRejected` with a reason (logged and, where
the protocol can say it, sent to the publisher) and a :class:`Refusal` kind that protocols with
status codes (SRT handshake, RTMP onStatus) map to their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kiln.media.stream.live import LiveStream


@dataclass(frozen=True)
class PublishRequest:
    """One publisher asking to become a live stream."""

    vhost: str
    app: str
    stream: str
    provider: str                          # the app's Providers key: "rtmp", "srt", "mpegts"
    source_type: str                       # OME's sourceType as the API shows it: "Rtmp", "SRT", "MPEGTS"
    source_url: str
    close_source: Callable[[str], None]    # drop the publisher (DELETE stream, a newer publisher took over)


class Refusal(enum.Enum):
    REFUSED = "refused"        # the control plane said no (its text says why)
    NOT_FOUND = "not found"    # no such vhost or application
    FORBIDDEN = "forbidden"    # the application does not enable this provider
    CONFLICT = "conflict"      # the stream name is taken and the application blocks duplicates


class PublishRejected(Exception):
    """A publish refused; ``reason`` is logged and, where the protocol allows, told to the publisher."""

    def __init__(self, reason: str, kind: Refusal = Refusal.REFUSED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class StreamOpener(Protocol):
    """What ingest needs from the control plane."""

    async def open_stream(self, request: PublishRequest) -> LiveStream:
        """The new live stream to feed, or PublishRejected. Awaited on the event loop; never blocks it."""
        ...


class VhostRouter(Protocol):
    """Which virtual host a URL's host part (or, for SRT stream ids, a vhost name) selects."""

    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None: ...


class OpenTimedOut(PublishRejected):
    """The control plane did not answer in time (only seen when shutdown wedges it)."""


def open_from_thread(opener: StreamOpener, loop: asyncio.AbstractEventLoop, request: PublishRequest,
                     timeout_s: float) -> LiveStream:
    """``opener.open_stream`` for ingest threads (TS demux workers): run on the loop, wait here.

    The wait only bounds a wedged shutdown: the control plane answers in milliseconds.
    """
    coro = opener.open_stream(request)
    try:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
    except RuntimeError as exc:  # the loop is gone (shutdown)
        coro.close()
        raise PublishRejected(f"server shutting down: {exc}") from exc
    try:
        return future.result(timeout_s)
    except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError) as exc:
        future.cancel()
        raise OpenTimedOut("the application did not answer") from exc
