"""The control plane's side of the ingest contract: publishes become ``OpenStream`` commands.

Ingest (RTMP, SRT, MPEG-TS) asks for a stream through the :class:`StreamOpener` protocol it
declares; this gate sends the command to the app's stream supervisor and awaits its answer without
blocking the event loop. A supervisor's refusal (its text is OME's) becomes a PublishRejected, as
does an app that does not exist or is going away. The SRT handshake's cheap questions (app,
provider, duplicate name) and the MPEG-TS port map are answered here too, from memory, so media
reads no configuration of apps itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import pykka

from kiln.actors.base import ActorGone, ask
from kiln.actors.commands import OpenStream
from kiln.config.hosts import ConfiguredApp
from kiln.config.stream_map import AppsCatalog, mapped_stream
from kiln.domain.errors import DomainError
from kiln.domain.settings import AppSettings
from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)


class Supervisors(Protocol):
    def streams(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None:
        """The stream supervisor of an app (None: no such app)."""


class AppCatalog(AppsCatalog, Protocol):
    def app(self, vhost: str, app: str) -> ConfiguredApp | None: ...


class LiveStreams(Protocol):
    def get(self, vhost: str, app: str, name: str) -> LiveStream | None: ...


class IngestGate:
    """Implements ``StreamOpener`` (and the SRT screen and MPEG-TS port map) over the actor tree.

    ``refusals`` are the exception types a supervisor refuses with; their ``str`` is OME's text.
    """

    def __init__(self, supervisors: Supervisors, catalog: AppCatalog, live: LiveStreams,
                 refusals: tuple[type[Exception], ...] = (DomainError,)) -> None:
        self.supervisors = supervisors
        self.catalog = catalog
        self.live = live
        self.refusals = refusals

    async def open_stream(self, request: PublishRequest) -> LiveStream:
        vhost, app = request.vhost, request.app
        ref = self.supervisors.streams(vhost, app)
        if ref is None:
            raise PublishRejected(f"application not found: {vhost}/{app}", Refusal.NOT_FOUND)
        if not request.stream:
            raise PublishRejected("empty stream name")
        command = OpenStream(request.stream, request.provider, request.source_type, request.source_url,
                             request.close_source)
        opening = asyncio.ensure_future(ask(ref, command))
        try:
            stream: LiveStream = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_end_unclaimed)
            raise
        except ActorGone as exc:
            raise PublishRejected(f"application not found: {vhost}/{app}", Refusal.NOT_FOUND) from exc
        except self.refusals as exc:
            raise PublishRejected(_refusal_text(exc)) from exc
        return stream

    def screen(self, vhost: str, app: str, stream: str, provider: str) -> None:
        view = self.catalog.app(vhost, app)
        if view is None:
            raise PublishRejected(f"application not found: {vhost}/{app}", Refusal.NOT_FOUND)
        settings = AppSettings.parse(view.config)
        if not settings.provider_enabled(provider):
            raise PublishRejected(f"Provider {provider} is not enabled for the application: [{vhost}/{app}]",
                                  Refusal.FORBIDDEN)
        if settings.block_duplicate_stream_name and self.live.get(vhost, app, stream) is not None:
            raise PublishRejected(f"Stream already exists: [{vhost}/{app}/{stream}]", Refusal.CONFLICT)

    def stream_for_port(self, port: int) -> tuple[str, str, str] | None:
        return mapped_stream(self.catalog, port)


def _end_unclaimed(opening: asyncio.Future[Any]) -> None:
    """The publisher left while its stream was being opened: end the stream nobody will feed or close."""
    if opening.cancelled() or opening.exception() is not None:
        return
    stream = opening.result()
    log.info("stream opened for a publisher that left vhost=%s app=%s stream=%s", stream.vhost, stream.app,
             stream.name)
    stream.end("publisher left while the stream was opened")


def _refusal_text(exc: Exception) -> str:
    """OME's text of a refusal: ``text`` on domain and API errors (``str`` adds the HTTP envelope)."""
    text = getattr(exc, "text", None)
    return text if isinstance(text, str) else str(exc)
