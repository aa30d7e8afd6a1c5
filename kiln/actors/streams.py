"""The stream supervisor of one app: opens, ends and deletes its live streams, runs its pulls.

Decisions are the domain's (``StreamDirectory`` for names, providers and duplicates; ``AppPulls``
for pull definitions); this actor journals what they decide and runs the effects: a StreamActor
per instance (which owns that instance's lifecycle), pull workers, and LL-HLS event injection and
conclusion, which happen only after their events are durable. It tells the app's task supervisor
when a stream's outputs exist (StreamLive) and when they are gone (StreamGone). Packets never
pass through here.

Pulls to resume after a restart come from the creator: recovery hands each app its journaled
pull definitions (``AppState.pulls``), and the app actor passes them here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pykka

from kiln.actors.base import ActorGone, CommandActor, Outcome, ask_blocking, settled, tell, tell_quietly
from kiln.actors.commands import (
    AppReconfigured,
    ConcludeHlsLive,
    CreateMultiplexChannel,
    CreatePull,
    CreateScheduledChannel,
    DeleteMultiplexChannel,
    DeleteScheduledChannel,
    DeleteStream,
    EndStream,
    ForgetStream,
    MultiplexFinished,
    MuxFileChanged,
    MuxFileGone,
    OpenStream,
    PatchScheduledChannel,
    PullConnected,
    PullFinished,
    ScheduleFileChanged,
    ScheduleFileGone,
    ScheduleFinished,
    SendStreamEvents,
    StreamDescribed,
    StreamGone,
    StreamLive,
    StreamReady,
    Teardown,
)
from kiln.actors.effects import after, gathered
from kiln.actors.file_watch import FilesDirWatcher
from kiln.actors.multiplexes import MUX_FILES, MuxFiles
from kiln.actors.schedules import SCHEDULE_FILES, ChannelFiles
from kiln.actors.stream import Journal, StreamActor
from kiln.config.write_roots import WriteRoots
from kiln.domain import multiplex as dm
from kiln.domain import pulls as dp
from kiln.domain import schedule as ds
from kiln.domain import stream_directory as dd
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.errors import DomainError, Failed, Invalid, NotFound, Unreachable
from kiln.domain.settings import AppSettings
from kiln.eventlog import Encoded
from kiln.events import streams as se
from kiln.events.base import Event
from kiln.events.multiplex import Multiplex
from kiln.events.redact import redact_url
from kiln.events.schedules import Schedule
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.multiplex.worker import PROVIDER as MULTIPLEX_PROVIDER
from kiln.media.ingest.multiplex.worker import SOURCE_TYPE as MULTIPLEX
from kiln.media.ingest.multiplex.worker import MuxHooks, MuxWorker
from kiln.media.ingest.rtsp.properties import PullProperties, parse_pull_properties, properties_from_json
from kiln.media.ingest.rtsp.worker import PullHooks, PullWorker
from kiln.media.ingest.schedule.worker import PROVIDER as SCHEDULE_PROVIDER
from kiln.media.ingest.schedule.worker import SOURCE_TYPE as SCHEDULED
from kiln.media.ingest.schedule.worker import ScheduleHooks, ScheduleWorker
from kiln.media.publish.llhls.control import LlhlsControl, inject_failed_text
from kiln.media.publish.llhls.events import EventBodyError, StreamEvent, parse_event
from kiln.media.stream.live import IngestMeters, LiveStream
from kiln.timefmt import now

log = logging.getLogger(__name__)

T = TypeVar("T")


class StreamStats(IngestMeters, Protocol):
    def stream_created(self, vhost: str, app: str, stream: str, t: float | None = None) -> None: ...
    def stream_deleted(self, vhost: str, app: str, stream: str) -> None: ...
    def stream_json(self, vhost: str, app: str, stream: str) -> dict[str, Any] | None: ...


class LiveHls(Protocol):
    """A live stream's LL-HLS output, as the supervisor acts on it (``LlhlsControl``)."""

    def event_refusal(self, live: LiveStream, event: StreamEvent) -> Future[str | None]: ...
    def inject(self, live: LiveStream, event: StreamEvent) -> Future[int]: ...
    def can_conclude(self, live: LiveStream) -> Future[bool]: ...
    def conclude(self, live: LiveStream) -> Future[int]: ...


class StreamsContext(Protocol):
    """What the creator hands over (``kiln.actors.runtime.ActorRuntime`` offers it)."""

    @property
    def events(self) -> Journal: ...
    @property
    def stats(self) -> StreamStats: ...
    @property
    def media(self) -> Any: ...  # the media runtime: stream registry, publisher hooks; None without media
    @property
    def config_dir(self) -> Path | None: ...  # relative Schedule paths are under it, as in OME
    @property
    def write_roots(self) -> WriteRoots | None: ...  # where .sch files may be written (None: anywhere)


@dataclass(frozen=True)
class _EventsChecked:
    """The loop answered the LL-HLS checks of a SendStreamEvents (sent by the supervisor to itself)."""

    command: SendStreamEvents
    live: LiveStream
    parsed: list[StreamEvent | DomainError]
    refusals: Future[list[str | None]]
    answer: Future[list[DomainError | None]]


def _no_refusal() -> Future[str | None]:
    """The check of a body that already failed to parse: its verdict is the parse error."""
    fut: Future[str | None] = Future()
    fut.set_result(None)
    return fut


def _settle(answer: Future[T], finished: Future[Any], value: T) -> None:
    """Complete ``answer`` with ``value`` once ``finished`` succeeded, or with its error."""
    exc = finished.exception()
    if exc is not None:
        answer.set_exception(exc)
    else:
        answer.set_result(value)


def _tell_or_fail(ref: pykka.ActorRef[Any], command: Any, answer: Future[Any], gone: DomainError) -> None:
    """Send ``command``; if it is never handled, ``answer`` fails instead of leaving its caller waiting."""
    def handled(reply: Future[Outcome]) -> None:
        exc = reply.exception()
        if exc is not None and not answer.done():
            answer.set_exception(exc)

    try:
        tell(ref, command).add_done_callback(handled)
    except ActorGone:
        answer.set_exception(gone)


class StreamsActor(CommandActor):
    def __init__(self, ctx: StreamsContext, vhost: str, app: str, config: dict[str, Any],
                 tasks: pykka.ActorRef[Any], pulls: Sequence[se.PullDefined] = (),
                 schedules: Sequence[se.ScheduleDefined] = (),
                 multiplexes: Sequence[se.MultiplexDefined] = (), dynamic: bool = False) -> None:
        super().__init__()
        self.journal = ctx.events
        self.stats = ctx.stats
        self.media = ctx.media
        self.vhost = vhost
        self.app = app
        self.settings = AppSettings.parse(config)
        self.dynamic = dynamic  # a dynamic app (made from its vhost's template): every stream is bypassed, as OME
        self.tasks = tasks
        self.hls: LiveHls | None = LlhlsControl(ctx.media.llhls) \
            if ctx.media is not None and ctx.media.llhls is not None else None
        self.directory = dd.StreamDirectory(vhost, app, self.settings)
        self.pull_defs = dp.AppPulls(vhost, app)
        for ev in pulls:
            self.pull_defs.apply(ev)
        self.streams: dict[str, tuple[LiveStream, pykka.ActorRef[Any]]] = {}
        self.workers: dict[str, PullWorker] = {}
        self.causes: dict[str, str] = {}  # pull name -> why it is pulled (journaled with it)
        self.schedules = ds.AppSchedules(vhost, app, self.settings.provider_enabled(SCHEDULE_PROVIDER))
        for sev in schedules:
            self.schedules.apply(sev)
        self.channel_files = ChannelFiles(self.where, config, ctx.config_dir, ctx.write_roots)
        self.channel_workers: dict[str, ScheduleWorker] = {}
        self.files_watcher: FilesDirWatcher[Schedule] | None = None
        self.multiplexes = dm.AppMultiplexes(vhost, app, self.settings.provider_enabled(MULTIPLEX_PROVIDER))
        for mev in multiplexes:
            self.multiplexes.apply(mev)
        self.mux_files = MuxFiles(self.where, config, ctx.config_dir, ctx.write_roots)
        self.mux_workers: dict[str, MuxWorker] = {}
        self.mux_watch: FilesDirWatcher[Multiplex] | None = None

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.app}"

    # -- lifecycle --
    def on_start(self) -> None:
        if self.media is None:
            return
        for pull in self.pull_defs.to_resume():  # pulls reconnect after a restart (OME forgets them)
            self._spawn_pull(pull.name, list(pull.urls), properties_from_json(pull.properties), None, pull.cause)
        self._start_channels()
        self._start_multiplexes()

    def on_stop(self) -> None:
        watchers = [self._stop_watching(), self._stop_mux_watch()]
        for mux in list(self.mux_workers.values()):
            mux.close(dp.SERVER_STOPPING)
        for mux in list(self.mux_workers.values()):
            mux.join(10)
        for channel in list(self.channel_workers.values()):
            channel.close(dp.SERVER_STOPPING)
        for channel in list(self.channel_workers.values()):
            channel.join(10)
        for worker in list(self.workers.values()):
            worker.close(dp.SERVER_STOPPING)
        for worker in list(self.workers.values()):
            worker.join(10)
        for watcher in watchers:
            if watcher is not None:
                watcher.join(2)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self._stop_watching()
        for worker in self.workers.values():
            worker.close(cmd.reason)
        for channel in self.channel_workers.values():
            channel.close(cmd.reason)
        for mux in self.mux_workers.values():
            mux.close(cmd.reason)
        self._stop_mux_watch()
        return Outcome(None, self._end_all_streams(cmd.reason))

    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.settings = self.directory.settings = cmd.settings
        self.schedules.enabled = cmd.settings.provider_enabled(SCHEDULE_PROVIDER)
        self.channel_files = ChannelFiles(self.where, cmd.settings.config, self.channel_files.config_dir,
                                          self.channel_files.roots)
        self._watch_files()
        self.multiplexes.enabled = cmd.settings.provider_enabled(MULTIPLEX_PROVIDER)
        self.mux_files = MuxFiles(self.where, cmd.settings.config, self.mux_files.config_dir, self.mux_files.roots)
        self._stop_mux_watch()
        self._start_mux_watch()
        for running in self.mux_workers.values():
            running.close("application reconfigured")  # each comes back when it has wound down (MultiplexFinished)
        ended = self._end_all_streams("application reconfigured")
        # channels whose worker ran come back when it has wound down (handle_ScheduleFinished); those that had
        # none (refused while the app had no Schedule provider) start now
        for schedule in self.schedules.channels.values():
            if schedule.name not in self.channel_workers:
                self._spawn_channel(schedule)
        for mux in self.multiplexes.channels.values():
            if mux.name not in self.mux_workers:
                self._spawn_multiplex(mux)
        return Outcome(None, ended)

    def _end_all_streams(self, reason: str) -> list[Future[Any]]:
        """Close every live stream's source and journal its end; returns the durable futures."""
        durable = []
        for stream, ref in list(self.streams.values()):
            stream.close_ingest(reason)
            durable.append(self._end(stream, ref, reason))
        return durable

    def _end(self, stream: LiveStream, ref: pykka.ActorRef[Any], reason: str) -> Future[Any]:
        ended = settled(tell(ref, EndStream(reason)))
        self._forget(stream, reason)
        return ended

    # -- streams --
    def handle_OpenStream(self, cmd: OpenStream) -> Outcome:
        durable: list[Future[Any]] = []
        existing = self.streams.get(cmd.name)
        if existing is not None and existing[0].ended_reason is not None:
            # its source has ended and its end is on its way here through its actor (EndStream, then
            # ForgetStream): a publisher that comes back at once takes the name instead of a refusal for a stream
            # that is gone (EndStream is idempotent: the end is journaled once)
            durable.append(self._end(existing[0], existing[1], existing[0].ended_reason))
        stream = LiveStream(self.vhost, self.app, cmd.name, source_type=cmd.source_type,
                            source_url=cmd.source_url, profiles=list(self.settings.output_profiles),
                            stats=self.stats, close_ingest=cmd.close_ingest,
                            subscribable=bool(self.settings.publishers),
                            audio_map=self.settings.audio_maps.get(cmd.provider, ()), dynamic=self.dynamic)
        events = decide_and_apply(self.directory, dd.OpenStream(
            cmd.name, cmd.provider, cmd.source_type, cmd.source_url, stream.instance), stream.created_time,
            self.journal.encode)
        existing = self.streams.get(cmd.name)
        if existing is not None:  # allowed only without blockDuplicateStreamName: the new one replaces it
            old, old_ref = existing
            old.close_ingest("replaced by a new publisher")
            durable.append(self._end(old, old_ref, "replaced by a new publisher"))
        started = events.events[0]
        assert isinstance(started, se.StreamStarted)
        ref = StreamActor.start(self.journal, stream, started, self.actor_ref, self.hls)
        stream.on_started = lambda _s: tell_quietly(ref, StreamDescribed())
        stream.on_ended = lambda _s, reason: tell_quietly(ref, EndStream(reason))
        self.streams[cmd.name] = (stream, ref)
        if self.media is not None:
            self.media.streams.add(stream)
        self.stats.stream_created(self.vhost, self.app, cmd.name, stream.created_time)
        if self.media is not None:
            self.media.stream_created(stream, self.settings.config)
        durable.append(self.journal.emit(events))
        log.info("stream created vhost=%s app=%s stream=%s source=%s", self.vhost, self.app, cmd.name,
                 cmd.source_type)
        return Outcome(stream, durable)

    def _forget(self, stream: LiveStream, reason: str | None = None) -> None:
        entry = self.streams.get(stream.name)
        if entry is None or entry[0] is not stream:
            return
        del self.streams[stream.name]
        self.directory.release(stream.name, stream.instance)
        entry[1].stop(block=False)
        if self.media is not None:
            self.media.streams.remove(stream)
        self.stats.stream_deleted(self.vhost, self.app, stream.name)
        if self.media is not None:
            self.media.stream_ended(stream)
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
        if self.media is not None:  # each publisher (LL-HLS, HLS, SRT, OVT) checks its own app section
            self.media.stream_started(stream, self.settings.config)
        tell_quietly(self.tasks, StreamLive(stream))
        return Outcome(None)

    def handle_DeleteStream(self, cmd: DeleteStream) -> Outcome:
        decide_and_apply(self.directory, dd.DeleteStream(cmd.name), now(), self.journal.encode)
        stream, ref = self.streams[cmd.name]
        if not stream.close_ingest("deleted by API"):
            raise NotFound("Could not terminate the stream")
        durable = [self._end(stream, ref, "deleted by API")]
        # a pull's definition goes in the same answer, not when its worker has wound down: a crash in
        # between would otherwise bring a deleted persistent pull back at the next start
        worker = self.workers.pop(cmd.name, None)
        if worker is not None:
            self.directory.release_pull(cmd.name)
            events = decide_and_apply(self.pull_defs, dp.PullGaveUp(cmd.name, "deleted by API"), now(),
                                      self.journal.encode)
            if events.records:
                durable.append(self.journal.emit(events))
        return Outcome(None, durable)

    def _live(self, name: str) -> LiveStream:
        entry = self.streams.get(name)
        if entry is None:
            raise NotFound(dd.stream_not_found_text(self.vhost, self.app, name))
        return entry[0]

    # -- stream actions: checked, journaled, then carried out on the LL-HLS output --
    def handle_SendStreamEvents(self, cmd: SendStreamEvents) -> Outcome:
        """Answers with a future of one verdict per body (None: injected), completed once the
        accepted events are journaled and injected. The LL-HLS checks are answered by the loop;
        the journaling waits for them in ``handle__EventsChecked``, never on this thread."""
        live = self._live(cmd.name)
        parsed: list[StreamEvent | DomainError] = []
        for body in cmd.bodies:
            try:
                parsed.append(parse_event(body))
            except EventBodyError as exc:
                parsed.append(Invalid(exc.text))
        if not cmd.batch and parsed and isinstance(parsed[0], DomainError):
            raise parsed[0]
        hls = self.hls
        if hls is None:
            raise Failed(inject_failed_text(live))
        answer: Future[list[DomainError | None]] = Future()
        me = self.actor_ref
        checks = gathered([hls.event_refusal(live, p) if isinstance(p, StreamEvent) else _no_refusal() for p in parsed])
        gone = NotFound(dd.stream_not_found_text(self.vhost, self.app, cmd.name))
        checks.add_done_callback(
            lambda f: _tell_or_fail(me, _EventsChecked(cmd, live, parsed, f, answer), answer, gone))
        return Outcome(answer)

    def handle__EventsChecked(self, msg: _EventsChecked) -> Outcome:
        cmd, live, answer = msg.command, msg.live, msg.answer
        entry = self.streams.get(cmd.name)
        exc = msg.refusals.exception()
        if exc is not None or entry is None or entry[0] is not live or self.hls is None:
            answer.set_exception(exc or NotFound(dd.stream_not_found_text(self.vhost, self.app, cmd.name)))
            return Outcome(None)
        verdicts: list[DomainError | None] = []
        accepted: list[StreamEvent] = []
        for item, refusal in zip(msg.parsed, msg.refusals.result(), strict=True):
            if isinstance(item, DomainError):
                verdicts.append(item)
            elif refusal is not None:
                verdicts.append(Failed(refusal))
            else:
                verdicts.append(None)
                accepted.append(item)
        if not cmd.batch and verdicts[0] is not None:
            answer.set_exception(verdicts[0])
            return Outcome(None)
        if not accepted:
            answer.set_result(verdicts)
            return Outcome(None)
        journaled = self.journal.emit([se.StreamEventSent(
            self.vhost, self.app, cmd.name, e.event_format, e.event_type, e.events, e.urgent) for e in accepted])
        injected = gathered([after(journaled, self._injection(self.hls, live, e)) for e in accepted])
        injected.add_done_callback(lambda f: _settle(answer, f, verdicts))
        return Outcome(None, [journaled])

    @staticmethod
    def _injection(hls: LiveHls, live: LiveStream, event: StreamEvent) -> Callable[[], Future[int]]:
        """The effect of one accepted event; it fails with OME's 500 if the stream changed meanwhile."""
        def run() -> Future[int]:
            checked: Future[int] = Future()

            def taken(fut: Future[int]) -> None:
                exc = fut.exception()
                if exc is not None:
                    checked.set_exception(exc)
                elif fut.result() == 0:
                    checked.set_exception(Failed(inject_failed_text(live)))
                else:
                    checked.set_result(fut.result())

            hls.inject(live, event).add_done_callback(taken)
            return checked

        return run

    def handle_ConcludeHlsLive(self, cmd: ConcludeHlsLive) -> Outcome:
        """Answers with a future completed once the instance journaled the conclusion and the
        playlists ended; the check that LL-HLS outputs exist is answered by the loop."""
        live = self._live(cmd.name)
        failed = Failed(f"Internal Server Error - Could not inject ConcludeLive event: [{self.where}/{cmd.name}]")
        if self.hls is None:
            raise failed
        ref = self.streams[cmd.name][1]
        answer: Future[None] = Future()

        def checked(f: Future[bool]) -> None:
            if f.exception() is not None or not f.result():
                answer.set_exception(f.exception() or failed)
                return
            try:
                settled(tell(ref, cmd)).add_done_callback(lambda d: _settle(answer, d, None))
            except ActorGone:
                answer.set_exception(NotFound(dd.stream_not_found_text(self.vhost, self.app, cmd.name)))

        self.hls.can_conclude(live).add_done_callback(checked)
        return Outcome(answer)

    # -- pulls --
    def _spawn_pull(self, name: str, urls: list[str], props: PullProperties, waiter: Future[bool] | None,
                    cause: str, resolve: Callable[[], list[str]] | None = None) -> None:
        me = self.actor_ref
        stats, vhost, app = self.stats, self.vhost, self.app

        def open_stream(url: str, close: Any) -> LiveStream:
            provider, source_type = ("ovt", "Ovt") if url.lower().startswith("ovt://") else ("rtspPull", "RtspPull")
            try:
                result: LiveStream = ask_blocking(me, OpenStream(name, provider, source_type, url, close))
            except DomainError as exc:  # the pull worker speaks the ingest contract, not the domain
                raise PublishRejected(exc.text) from exc
            return result

        def connected(url: str) -> None:
            ask_blocking(me, PullConnected(name, worker, url))

        def reconnected(url: str) -> None:
            tell_quietly(me, PullConnected(name, worker, url))

        def finished(reason: str) -> None:
            tell_quietly(me, PullFinished(name, reason, worker))

        def viewers() -> int:
            metrics = stats.stream_json(vhost, app, name)
            return int(metrics.get("totalConnections", 0)) if metrics else 0

        worker = PullWorker(f"{self.where}", name, urls, props,
                            PullHooks(open_stream, connected, finished, viewers, reconnected, resolve), waiter)
        self.causes[name] = cause
        self.workers[name] = worker
        self.directory.reserve_pull(name)
        worker.start()

    def handle_CreatePull(self, cmd: CreatePull) -> Outcome:
        body = cmd.body
        name, urls = body["name"], list(body["urls"])
        try:
            decide_and_apply(self.directory, dd.RequestPull(name, tuple(urls), cmd.request_url), now(),
                             self.journal.encode)
        except Unreachable:
            log.warning("pull refused where=%s stream=%s url=%s", self.where, name, redact_url(urls[0]))
            raise
        waiter: Future[bool] = Future()
        self._spawn_pull(name, urls, parse_pull_properties(body, cmd.origins), waiter, cmd.cause, cmd.resolve)
        return Outcome(waiter)

    def handle_PullConnected(self, cmd: PullConnected) -> Outcome:
        w = self.workers.get(cmd.name)
        if w is None or w is not cmd.worker:
            return Outcome(None)
        cause = self.causes.get(cmd.name, "")
        events = decide_and_apply(self.pull_defs, dp.PullConnected(
            cmd.name, tuple(w.urls), w.props.as_json(), w.props.persistent, cmd.url, cause), now(),
            self.journal.encode)
        if events.records:
            log.info("pull source where=%s stream=%s url=%s cause=%s", self.where, cmd.name, redact_url(cmd.url),
                     cause)
        return Outcome(None, [self.journal.emit(events)] if events.records else [])

    def handle_PullFinished(self, cmd: PullFinished) -> Outcome:
        if self.workers.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        del self.workers[cmd.name]
        self.directory.release_pull(cmd.name)
        events = decide_and_apply(self.pull_defs, dp.PullGaveUp(cmd.name, cmd.reason,
                                                                self.causes.pop(cmd.name, "")), now(),
                                  self.journal.encode)
        return Outcome(None, [self.journal.emit(events)] if events.records else [])

    def _names_taken(self) -> frozenset[str]:
        """Names a new channel may not take: live streams, and scheduled and multiplex channels (each a stream,
        even while it waits off air)."""
        return frozenset(self.streams) | frozenset(self.schedules.channels) | frozenset(self.multiplexes.channels)

    # -- scheduled channels --
    def _start_channels(self) -> None:
        """At start: the journal's channels get their ``.sch`` files back if missing; files no channel names
        are loaded as OME loads them (and journaled, so they are listed and survive as the others); then every
        channel plays."""
        if self.schedules.enabled:
            for schedule in self.channel_files.found(set(self.schedules.channels)):
                try:
                    events = decide_and_apply(self.schedules, ds.LoadChannelFile(schedule, self._names_taken()),
                                              now(), self.journal.encode)
                except DomainError as exc:
                    log.warning("schedule file not loaded where=%s stream=%s error=%s", self.where, schedule.name,
                                exc.text)
                    continue
                self.journal.emit(events)
                log.info("schedule file loaded where=%s stream=%s", self.where, schedule.name)
            for schedule in self.schedules.channels.values():
                self.channel_files.restore(schedule)
        for schedule in self.schedules.channels.values():
            self._spawn_channel(schedule)
        self._watch_files()

    def _watch_files(self) -> None:
        """Follow the ScheduleFilesDir (again: it may have changed) while the app has a Schedule provider."""
        self._stop_watching()
        if not self.schedules.enabled or self.media is None:
            return
        me = self.actor_ref

        def changed(schedule: Schedule, looked: float) -> None:
            tell_quietly(me, ScheduleFileChanged(schedule, watcher, looked))

        def gone(name: str, looked: float) -> None:
            tell_quietly(me, ScheduleFileGone(name, watcher, looked))

        watcher = FilesDirWatcher(self.where, self.channel_files.files_dir(), SCHEDULE_FILES, changed, gone)
        self.files_watcher = watcher
        watcher.start()

    def _stop_watching(self) -> FilesDirWatcher[Schedule] | None:
        watcher, self.files_watcher = self.files_watcher, None
        if watcher is not None:
            watcher.stop()
        return watcher

    def _spawn_channel(self, schedule: Schedule) -> None:
        if self.media is None:
            return
        me = self.actor_ref
        name = schedule.name
        source_url = self.channel_files.source_url(name)

        def open_stream(close: Callable[[str], None]) -> LiveStream:
            try:
                result: LiveStream = ask_blocking(me, OpenStream(name, SCHEDULE_PROVIDER, SCHEDULED, source_url, close))
            except DomainError as exc:  # the worker speaks the ingest contract, not the domain
                raise PublishRejected(exc.text) from exc
            return result

        def finished(reason: str) -> None:
            tell_quietly(me, ScheduleFinished(name, reason, worker))

        worker = ScheduleWorker(self.where, schedule, self.channel_files.media_root(),
                                ScheduleHooks(open_stream, finished), getattr(self.media, "schedules", None),
                                self.media.streams, getattr(self.media, "feeds", None))
        self.channel_workers[name] = worker
        worker.start()

    def _not_scheduled(self, name: str) -> None:
        if name not in self.schedules.channels and name in self.streams:
            raise Invalid("Stream is not a scheduled stream")

    def handle_CreateScheduledChannel(self, cmd: CreateScheduledChannel) -> Outcome:
        return Outcome(None, [self._define(ds.CreateChannel(cmd.body, self._names_taken()))])

    def handle_PatchScheduledChannel(self, cmd: PatchScheduledChannel) -> Outcome:
        self._not_scheduled(cmd.name)
        return Outcome(None, [self._define(ds.PatchChannel(cmd.name, cmd.body))])

    def _define(self, command: ds.CreateChannel | ds.PatchChannel) -> Future[Any]:
        """Encoded first (nothing changes if the journal cannot store it), then the ``.sch`` file (OME's 500 if it
        cannot be written, nothing journaled), then the channel changes, is journaled and plays."""
        written: list[Schedule] = []

        def store(events: list[Event]) -> Encoded:
            stored = self.journal.encode(events)
            defined = events[0]
            assert isinstance(defined, se.ScheduleDefined)
            written.append(Schedule.from_stored(defined.schedule))
            self.channel_files.write(written[0])
            return stored

        durable = self.journal.emit(decide_and_apply(self.schedules, command, now(), store))
        self._play(written[0], "by API")
        return durable

    def _play(self, schedule: Schedule, how: str) -> None:
        """A channel defined anew: its worker takes the new schedule, or one starts."""
        worker = self.channel_workers.get(schedule.name)
        if worker is not None and worker.alive:
            worker.replace(schedule)
            log.info("schedule replaced where=%s stream=%s how=%s", self.where, schedule.name, how)
        else:
            self._spawn_channel(schedule)
            log.info("scheduled channel created where=%s stream=%s how=%s", self.where, schedule.name, how)

    def handle_DeleteScheduledChannel(self, cmd: DeleteScheduledChannel) -> Outcome:
        self._not_scheduled(cmd.name)

        def store(events: list[Event]) -> Encoded:
            stored = self.journal.encode(events)
            self.channel_files.remove(cmd.name)  # OME's 500 if it cannot be deleted (nothing journaled)
            return stored

        durable = self.journal.emit(decide_and_apply(self.schedules, ds.DeleteChannel(cmd.name), now(), store))
        self._stop_channel(cmd.name, "deleted by API")
        return Outcome(None, [durable])

    def _stop_channel(self, name: str, reason: str) -> None:
        worker = self.channel_workers.pop(name, None)
        if worker is not None:
            worker.close(reason)
        log.info("scheduled channel deleted where=%s stream=%s reason=%s", self.where, name, reason)

    def handle_ScheduleFileChanged(self, cmd: ScheduleFileChanged) -> Outcome:
        """A ``.sch`` file written or changed in the directory: OME adds or updates the channel."""
        name = cmd.schedule.name
        if cmd.watcher is not self.files_watcher or self.channel_files.stale(name, cmd.looked):
            return Outcome(None)
        try:
            decided = decide_and_apply(self.schedules, ds.ChannelFileChanged(cmd.schedule, self._names_taken()),
                                       now(), self.journal.encode)
        except DomainError as exc:
            log.warning("schedule file not loaded where=%s stream=%s error=%s", self.where, name, exc.text)
            return Outcome(None)
        if not decided.events:
            return Outcome(None)  # it says what the channel already is (Kiln's own write, a save without change)
        durable = self.journal.emit(decided)
        self._play(cmd.schedule, "by its file")
        return Outcome(None, [durable])

    def handle_ScheduleFileGone(self, cmd: ScheduleFileGone) -> Outcome:
        """A channel's ``.sch`` file deleted (three looks in a row without it): OME deletes the channel."""
        if cmd.watcher is not self.files_watcher or self.channel_files.stale(cmd.name, cmd.looked):
            return Outcome(None)
        try:
            decided = decide_and_apply(self.schedules, ds.ChannelFileRemoved(cmd.name), now(), self.journal.encode)
        except DomainError as exc:
            log.warning("schedule file removal not followed where=%s stream=%s error=%s", self.where, cmd.name,
                        exc.text)
            return Outcome(None)
        if not decided.events:
            return Outcome(None)  # no such channel (the API deleted it, and its file)
        durable = self.journal.emit(decided)
        self._stop_channel(cmd.name, "schedule file deleted")
        return Outcome(None, [durable])

    def handle_ScheduleFinished(self, cmd: ScheduleFinished) -> Outcome:
        if self.channel_workers.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        del self.channel_workers[cmd.name]
        schedule = self.schedules.channels.get(cmd.name)
        if schedule is not None and cmd.reason == "application reconfigured":
            self._spawn_channel(schedule)  # the app restarted its streams: the channel plays on in the new outputs
        return Outcome(None)

    # -- multiplex channels --
    def _start_multiplexes(self) -> None:
        """At start: ``.mux`` files no journaled channel names are loaded as OME loads them (and journaled, so
        they are listed and survive as the others); the journal's channels get their files back if missing or
        changed; then every channel waits for its sources."""
        if self.multiplexes.enabled:
            for mux in self.mux_files.found(set(self.multiplexes.channels)):
                try:
                    events = decide_and_apply(self.multiplexes, dm.LoadChannelFile(mux, self._names_taken()),
                                              now(), self.journal.encode)
                except DomainError as exc:
                    log.warning("multiplex file not loaded where=%s stream=%s error=%s", self.where, mux.name,
                                exc.text)
                    continue
                self.journal.emit(events)
                log.info("multiplex file loaded where=%s stream=%s", self.where, mux.name)
            for mux in self.multiplexes.channels.values():
                self.mux_files.restore(mux)
            for mux in self.multiplexes.channels.values():
                self._spawn_multiplex(mux)
            self._start_mux_watch()

    def _start_mux_watch(self) -> None:
        if self.media is None or not self.multiplexes.enabled:
            return
        me = self.actor_ref

        def changed(mux: Multiplex, looked: float) -> None:
            tell_quietly(me, MuxFileChanged(mux, watcher, looked))

        def gone(name: str, looked: float) -> None:
            tell_quietly(me, MuxFileGone(name, watcher, looked))

        watcher = FilesDirWatcher(self.where, self.mux_files.files_dir(), MUX_FILES, changed, gone)
        self.mux_watch = watcher
        watcher.start()

    def _stop_mux_watch(self) -> FilesDirWatcher[Multiplex] | None:
        watcher, self.mux_watch = self.mux_watch, None
        if watcher is not None:
            watcher.stop()  # never waits: a hung mount would hold the actor
        return watcher

    def _spawn_multiplex(self, mux: Multiplex) -> None:
        if self.media is None or not self.multiplexes.enabled:
            return  # without the provider a journaled channel stays listed but does not run (as OME's)
        me = self.actor_ref
        name = mux.name

        def open_stream(close: Callable[[str], None]) -> LiveStream:
            try:  # no source URL, as OME's multiplex streams have none
                result: LiveStream = ask_blocking(me, OpenStream(name, MULTIPLEX_PROVIDER, MULTIPLEX, "", close))
            except DomainError as exc:  # the worker speaks the ingest contract, not the domain
                raise PublishRejected(exc.text) from exc
            return result

        def finished(reason: str) -> None:
            tell_quietly(me, MultiplexFinished(name, reason, worker))

        worker = MuxWorker(self.where, mux, self.media.streams, MuxHooks(open_stream, finished),
                           getattr(self.media, "multiplexes", None), feeds=getattr(self.media, "feeds", None))
        self.mux_workers[name] = worker
        worker.start()

    def handle_CreateMultiplexChannel(self, cmd: CreateMultiplexChannel) -> Outcome:
        """Encoded first (nothing changes if the journal cannot store it), then the ``.mux`` file (OME's 500 if it
        cannot be written, nothing journaled), then the channel is journaled and waits for its sources."""
        written: list[Multiplex] = []

        def store(events: list[Event]) -> Encoded:
            stored = self.journal.encode(events)
            defined = events[0]
            assert isinstance(defined, se.MultiplexDefined)
            written.append(Multiplex.from_stored(defined.multiplex))
            self.mux_files.write(written[0])
            return stored

        durable = self.journal.emit(decide_and_apply(
            self.multiplexes, dm.CreateChannel(cmd.body, self._names_taken()), now(), store))
        self._spawn_multiplex(written[0])
        log.info("multiplex channel created where=%s stream=%s", self.where, written[0].name)
        return Outcome(None, [durable])

    def handle_DeleteMultiplexChannel(self, cmd: DeleteMultiplexChannel) -> Outcome:
        def store(events: list[Event]) -> Encoded:
            stored = self.journal.encode(events)
            self.mux_files.remove(cmd.name)  # OME's 500 if it cannot be deleted (nothing journaled)
            return stored

        durable = self.journal.emit(decide_and_apply(self.multiplexes, dm.DeleteChannel(cmd.name), now(), store))
        worker = self.mux_workers.pop(cmd.name, None)
        if worker is not None:
            worker.close("deleted by API")
        log.info("multiplex channel deleted where=%s stream=%s", self.where, cmd.name)
        return Outcome(None, [durable])

    def handle_MultiplexFinished(self, cmd: MultiplexFinished) -> Outcome:
        if self.mux_workers.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        del self.mux_workers[cmd.name]
        mux = self.multiplexes.channels.get(cmd.name)
        if mux is not None and cmd.reason == "application reconfigured":
            self._spawn_multiplex(mux)  # the app restarted its streams: the channel waits for its sources anew
        return Outcome(None)

    def handle_MuxFileChanged(self, cmd: MuxFileChanged) -> Outcome:
        """A ``.mux`` file written or changed while Kiln runs (OME's file watcher): a new channel, or its channel
        replaced and restarted; journaled."""
        name = cmd.mux.name
        if cmd.watcher is not self.mux_watch or self.mux_files.stale(name, cmd.looked):
            return Outcome(None)  # from a watcher replaced since, or a look older than this actor's own write
        known = self.multiplexes.channels.get(name)
        if known == cmd.mux:
            return Outcome(None)  # it says what the channel already is (Kiln's own write, a save without change)
        command: dm.LoadChannelFile | dm.ChangeChannelFile = \
            dm.LoadChannelFile(cmd.mux, self._names_taken()) if known is None else dm.ChangeChannelFile(cmd.mux)
        try:
            events = decide_and_apply(self.multiplexes, command, now(), self.journal.encode)
        except DomainError as exc:
            log.warning("multiplex file not loaded where=%s stream=%s error=%s", self.where, name, exc.text)
            return Outcome(None)
        durable = self.journal.emit(events)
        worker = self.mux_workers.pop(name, None)
        if worker is not None:
            worker.close("multiplex file changed")
        self._spawn_multiplex(cmd.mux)
        log.info("multiplex file %s where=%s stream=%s", "loaded" if known is None else "changed", self.where, name)
        return Outcome(None, [durable])

    def handle_MuxFileGone(self, cmd: MuxFileGone) -> Outcome:
        """A channel's ``.mux`` file deleted (three looks in a row without it): OME deletes the channel."""
        if cmd.watcher is not self.mux_watch or self.mux_files.stale(cmd.name, cmd.looked) \
                or cmd.name not in self.multiplexes.channels:
            return Outcome(None)
        events = decide_and_apply(self.multiplexes, dm.RemoveChannelFile(cmd.name), now(), self.journal.encode)
        durable = self.journal.emit(events)
        worker = self.mux_workers.pop(cmd.name, None)
        if worker is not None:
            worker.close("multiplex file deleted")
        log.info("multiplex file deleted where=%s stream=%s", self.where, cmd.name)
        return Outcome(None, [durable])
