"""The stream supervisor of one app: opens, ends and deletes its live streams, runs its pulls.

Every stream instance gets a StreamActor that journals its lifecycle; this actor keeps which
instance is live under each name, and tells the app's task supervisor when a stream's outputs
exist (StreamLive) and when they are gone (StreamGone). Packets never pass through here.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

import pykka

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, ask_blocking, settled, tell, tell_quietly
from kiln.actors.commands import (
    AppReconfigured,
    CreatePull,
    DeleteStream,
    EndStream,
    ForgetStream,
    OpenStream,
    PullConnected,
    PullFinished,
    RecordStreamEvent,
    StreamDescribed,
    StreamGone,
    StreamLive,
    StreamReady,
    Teardown,
)
from kiln.actors.context import Context
from kiln.actors.stream import StreamActor
from kiln.errors import ApiError, stream_not_found
from kiln.events import streams as se
from kiln.media.ingest.rtsp.properties import PullProperties, parse_pull_properties, properties_from_json
from kiln.media.ingest.rtsp.worker import PullHooks, PullWorker
from kiln.media.stream.live import LiveStream
from kiln.projections.catalog import profiles_of
from kiln.timefmt import now

log = logging.getLogger(__name__)


class StreamsActor(CommandActor):
    def __init__(self, ctx: Context, vhost: str, app: str, config: dict[str, Any],
                 tasks: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhost = vhost
        self.app = app
        self.config = config
        self.tasks = tasks
        self.streams: dict[str, tuple[LiveStream, Any]] = {}
        self.pulls: dict[str, PullWorker] = {}
        self.pull_names: set[str] = set()  # pulls whose definition is durable

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.app}"

    # -- lifecycle --
    def on_start(self) -> None:
        for pull in self.ctx.catalog.pull_list():
            if (pull.vhost, pull.app) == (self.vhost, self.app):
                self.pull_names.add(pull.name)
                if self.ctx.media is not None:  # pulls reconnect after a restart (OME forgets them)
                    self._spawn_pull(pull.name, pull.urls, properties_from_json(pull.properties), None)

    def on_stop(self) -> None:
        for worker in list(self.pulls.values()):
            worker.close("server stopping")
        for worker in list(self.pulls.values()):
            worker.join(10)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for worker in self.pulls.values():
            worker.close(cmd.reason)
        return Outcome(None, self._end_all_streams(cmd.reason))

    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.config = cmd.config
        return Outcome(None, self._end_all_streams("application reconfigured"))

    def _end_all_streams(self, reason: str) -> list[Future[Any]]:
        """Close every live stream's source and journal its end; returns the durable futures."""
        durable = []
        for stream, ref in list(self.streams.values()):
            stream.close_ingest(reason)
            durable.append(self._end(stream, ref, reason))
        return durable

    def _end(self, stream: LiveStream, ref: Any, reason: str) -> Future[Any]:
        ended = settled(tell(ref, EndStream(reason)))
        self._forget(stream, reason)
        return ended

    # -- streams --
    def _registry(self) -> Any:
        return self.ctx.media.streams if self.ctx.media is not None else None

    def handle_OpenStream(self, cmd: OpenStream) -> Outcome:
        if not configcheck.provider_enabled(self.config, cmd.provider):
            raise ApiError(404, f"Provider {cmd.provider} is not enabled for the application: [{self.where}]")
        existing = self.streams.get(cmd.name)
        durable: list[Future[Any]] = []
        if existing is not None:
            if configcheck.block_duplicate_stream_name(self.config):
                raise ApiError(409, f"Stream already exists: [{self.where}/{cmd.name}]")
            old, old_ref = existing
            old.close_ingest("replaced by a new publisher")
            durable.append(self._end(old, old_ref, "replaced by a new publisher"))
        stream = LiveStream(self.vhost, self.app, cmd.name, source_type=cmd.source_type,
                            source_url=cmd.source_url, profiles=profiles_of(self.config), stats=self.ctx.stats,
                            close_ingest=cmd.close_ingest)
        ref = StreamActor.start(self.ctx, stream, self.actor_ref)
        stream.on_started = lambda _s: tell_quietly(ref, StreamDescribed())
        stream.on_ended = lambda _s, reason: tell_quietly(ref, EndStream(reason))
        self.streams[cmd.name] = (stream, ref)
        registry = self._registry()
        if registry is not None:
            registry.add(stream)
        self.ctx.stats.stream_created(self.vhost, self.app, cmd.name, stream.created_time)
        if self.ctx.media is not None:
            self.ctx.media.stream_created(stream)
        durable.append(self.ctx.events.emit([se.StreamStarted(
            self.vhost, self.app, cmd.name, stream.instance, cmd.source_type, cmd.source_url,
            stream.created_time)]))
        log.info("stream created vhost=%s app=%s stream=%s source=%s", self.vhost, self.app, cmd.name,
                 cmd.source_type)
        return Outcome(stream, durable)

    def _forget(self, stream: LiveStream, reason: str | None = None) -> None:
        entry = self.streams.get(stream.name)
        if entry is None or entry[0] is not stream:
            return
        del self.streams[stream.name]
        entry[1].stop(block=False)
        registry = self._registry()
        if registry is not None:
            registry.remove(stream)
        self.ctx.stats.stream_deleted(self.vhost, self.app, stream.name)
        if self.ctx.media is not None:
            self.ctx.media.stream_ended(stream)
        tell_quietly(self.tasks, StreamGone(stream, reason or stream.ended_reason or "stream ended"))

    def handle_ForgetStream(self, cmd: ForgetStream) -> Outcome:
        entry = self.streams.get(cmd.name)
        if entry is not None and entry[0].instance == cmd.instance:
            self._forget(entry[0])
        return Outcome(None)

    def handle_StreamReady(self, cmd: StreamReady) -> Outcome:
        entry = self.streams.get(cmd.name)
        if entry is None or entry[0].instance != cmd.instance:
            return Outcome(None)
        stream = entry[0]
        if self.ctx.media is not None and configcheck.publisher_enabled(self.config, "llhls"):
            self.ctx.media.stream_started(stream, self.config)
        tell_quietly(self.tasks, StreamLive(stream))
        return Outcome(None)

    def handle_DeleteStream(self, cmd: DeleteStream) -> Outcome:
        entry = self.streams.get(cmd.name)
        if entry is None:
            raise stream_not_found(self.vhost, self.app, cmd.name)
        stream, ref = entry
        if not stream.close_ingest("deleted by API"):
            raise ApiError(404, "Could not terminate the stream")
        return Outcome(None, [self._end(stream, ref, "deleted by API")])

    def handle_RecordStreamEvent(self, cmd: RecordStreamEvent) -> Outcome:
        events = [se.StreamEventSent(self.vhost, self.app, cmd.name, e.event_format, e.event_type, e.events,
                                     e.urgent) for e in cmd.events]
        return Outcome(None, [self.ctx.events.emit(events)])

    # -- pulls --
    def _spawn_pull(self, name: str, urls: list[str], props: PullProperties, waiter: Future[bool] | None) -> None:
        me = self.actor_ref

        def open_stream(url: str, close: Any) -> LiveStream:
            result: LiveStream = ask_blocking(me, OpenStream(name, "rtspPull", "RtspPull", url, close))
            return result

        def connected(_url: str) -> None:
            ask_blocking(me, PullConnected(name, worker))

        def finished(reason: str) -> None:
            tell_quietly(me, PullFinished(name, reason, worker))

        def viewers() -> int:
            metrics = self.ctx.stats.stream_json(self.vhost, self.app, name)
            return int(metrics.get("totalConnections", 0)) if metrics else 0

        worker = PullWorker(f"{self.where}", name, urls, props,
                            PullHooks(open_stream, connected, finished, viewers), waiter)
        self.pulls[name] = worker
        worker.start()

    def handle_CreatePull(self, cmd: CreatePull) -> Outcome:
        body = cmd.body
        name, urls = body["name"], list(body["urls"])
        if name in self.streams or name in self.pulls:
            raise ApiError(409, "Stream already exists")
        waiter: Future[bool] = Future()
        scheme = urls[0].split("://", 1)[0].lower() if "://" in urls[0] else ""
        if scheme not in ("rtsp", "rtspc") or not configcheck.provider_enabled(self.config, "rtspPull"):
            log.warning("pull refused where=%s stream=%s scheme=%s", self.where, name, scheme or "none")
            waiter.set_result(False)
            return Outcome(waiter)
        self._spawn_pull(name, urls, parse_pull_properties(body), waiter)
        return Outcome(waiter)

    def handle_PullConnected(self, cmd: PullConnected) -> Outcome:
        if self.pulls.get(cmd.name) is not cmd.worker or cmd.name in self.pull_names:
            return Outcome(None)
        self.pull_names.add(cmd.name)
        w = cmd.worker
        fut = self.ctx.events.emit([se.PullDefined(self.vhost, self.app, cmd.name, list(w.urls), w.props.as_json(),
                                                   w.props.persistent, now())])
        return Outcome(None, [fut])

    def handle_PullFinished(self, cmd: PullFinished) -> Outcome:
        if self.pulls.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        del self.pulls[cmd.name]
        if cmd.reason == "server stopping":
            return Outcome(None)  # kept in the journal: it reconnects at the next start
        if cmd.name not in self.pull_names:
            return Outcome(None)
        self.pull_names.discard(cmd.name)
        return Outcome(None, [self.ctx.events.emit([se.PullRemoved(self.vhost, self.app, cmd.name, cmd.reason)])])
