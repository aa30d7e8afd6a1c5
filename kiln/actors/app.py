"""The application actor: owns the app's configuration, output profiles and its tasks.

Unlike OME, reconfiguring an app (PATCH, output-profile changes) keeps its push and record tasks:
they are durable entities of their own, not fields of a publisher object that is thrown away.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, ask_blocking, tell, tell_quietly
from kiln.actors.commands import (
    AddOutputProfiles,
    CreatePull,
    DeleteOutputProfile,
    DeleteStream,
    EndStream,
    ForgetStream,
    OpenStream,
    OutputAvailable,
    OutputGone,
    PatchApp,
    PullConnected,
    PullFinished,
    RecordStreamEvent,
    RegisterDump,
    ReplaceOutputProfile,
    StartPush,
    StartRecord,
    StopPush,
    StopRecord,
    StreamDescribed,
    StreamReady,
    Teardown,
    UnregisterDumps,
)
from kiln.actors.context import Context, ItemResult
from kiln.actors.profile_request import check_patch_profile_body, check_profile_body
from kiln.actors.push import PushActor
from kiln.actors.push_request import parse_start_push, parse_stop_push
from kiln.actors.record import RecordActor
from kiln.actors.record_request import parse_start_record, parse_stop_record
from kiln.actors.stream import StreamActor
from kiln.errors import ApiError, read_only, stream_not_found
from kiln.events import catalog as ce
from kiln.events import streams as se
from kiln.events import tasks as te
from kiln.media.ingest.rtsp.properties import PullProperties, parse_pull_properties, properties_from_json
from kiln.media.ingest.rtsp.worker import PullHooks, PullWorker
from kiln.media.stream.live import LiveStream
from kiln.projections.catalog import (
    merge_patch,
    profiles_of,
    with_profile_deleted,
    with_profile_replaced,
    with_profiles_added,
)
from kiln.projections.tasks import PushTask, RecordTask
from kiln.timefmt import now

log = logging.getLogger(__name__)

_FORBIDDEN_PATCH_KEYS = ("name", "dynamic", "outputProfiles")


class AppActor(CommandActor):
    def __init__(self, ctx: Context, vhost: str, name: str, config: dict[str, Any], is_read_only: bool) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhost = vhost
        self.name = name
        self.config = config
        self.read_only = is_read_only
        self.pushes: dict[str, Any] = {}
        self.records: dict[str, Any] = {}
        self.streams: dict[str, tuple[LiveStream, Any]] = {}
        self.task_streams: dict[tuple[str, str], str] = {}  # (kind, id) -> output stream name
        self.dumps: set[tuple[str, str, str, str]] = set()  # registered in this process, not yet durable
        self.pulls: dict[str, PullWorker] = {}

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.name}"

    # -- lifecycle --
    def on_start(self) -> None:
        self.ctx.stats.app_created(self.vhost, self.name)
        for push in self.ctx.tasks.push_list(self.vhost, self.name):
            self._spawn_push(push)
        for record in self.ctx.tasks.record_list(self.vhost, self.name):
            self._spawn_record(record)
        if self.ctx.media is not None:  # pulls reconnect after a restart (OME forgets them)
            for pull in self.ctx.catalog.pull_list():
                if (pull.vhost, pull.app) == (self.vhost, self.name):
                    self._spawn_pull(pull.name, pull.urls, properties_from_json(pull.properties), None)

    def on_stop(self) -> None:
        for worker in list(self.pulls.values()):
            worker.close("server stopping")
        for worker in list(self.pulls.values()):
            worker.join(10)
        for ref in [*self.pushes.values(), *self.records.values()]:
            ref.stop(block=True, timeout=30)
        self.pushes.clear()
        self.records.clear()

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for worker in self.pulls.values():
            worker.close(cmd.reason)
        for ref in [*self.pushes.values(), *self.records.values()]:
            tell_quietly(ref, Teardown(cmd.reason))
        self._end_all_streams(cmd.reason)
        self.ctx.stats.app_deleted(self.vhost, self.name)
        return Outcome(None)

    def _end_all_streams(self, reason: str) -> list[Any]:
        """Close every live stream's source and journal its end; returns the durable futures."""
        durable = []
        for name, (stream, ref) in list(self.streams.items()):
            stream.close_ingest(reason)
            try:
                durable.extend(tell(ref, EndStream(reason)).result(timeout=30).durable)
            except Exception as exc:
                log.error("stream end failed vhost=%s app=%s stream=%s error=%s", self.vhost, self.name, name, exc)
            self._forget(stream)
        return durable

    def _spawn_push(self, task: PushTask) -> None:
        self.pushes[task.id] = PushActor.start(self.ctx, task)
        self.task_streams[("push", task.id)] = task.stream_name
        self._offer_output(self.pushes[task.id], task.stream_name)

    def _spawn_record(self, task: RecordTask, wait: bool = False) -> list[Any]:
        self.records[task.id] = RecordActor.start(self.ctx, task)
        self.task_streams[("record", task.id)] = task.stream_name
        return self._offer_output(self.records[task.id], task.stream_name, wait)

    def _offer_output(self, ref: Any, output_name: str, wait: bool = False) -> list[Any]:
        """Tell a task actor its output stream is live, if it is (reserved tasks start this way).
        With ``wait`` the task has started (or failed) when this returns; its events' futures are returned."""
        for stream, _ref in self.streams.values():
            if stream.started and stream.ended_reason is None and output_name in stream.outputs:
                command = OutputAvailable(stream, stream.outputs[output_name])
                if not wait:
                    tell_quietly(ref, command)
                    return []
                return list(tell(ref, command).result(timeout=30).durable)
        return []

    def _task_refs(self) -> list[tuple[Any, str]]:
        refs = [(ref, self.task_streams.get(("push", i), "")) for i, ref in self.pushes.items()]
        refs += [(ref, self.task_streams.get(("record", i), "")) for i, ref in self.records.items()]
        return refs

    def _writable(self) -> None:
        if self.read_only:
            raise read_only(self.vhost)

    def _reconfigured(self, config: dict[str, Any]) -> None:
        """Adopt a new configuration. As in OME the app restarts: live streams are ended (their
        publishers reconnect into the new outputs) and the app's counters restart. Tasks stay."""
        self.config = config
        self._end_all_streams("application reconfigured")
        self.ctx.stats.app_created(self.vhost, self.name)
        log.info("app reconfigured vhost=%s app=%s profiles=%d", self.vhost, self.name,
                 len(profiles_of(config)))

    # -- configuration --
    def handle_PatchApp(self, cmd: PatchApp) -> Outcome:
        self._writable()
        if not isinstance(cmd.body, dict):
            raise ApiError(400, "Request body must be an object")
        for key in _FORBIDDEN_PATCH_KEYS:
            if key in cmd.body:
                raise ApiError(400, f"Cannot change [{key}] using this API")
        merged = merge_patch(self.config, cmd.body)
        config = configcheck.validate_app(merged)
        fut = self.ctx.events.emit([ce.AppPatched(self.vhost, self.name, config, cmd.body)])
        self._reconfigured(config)
        return Outcome(dict(config, dynamic=False), [fut])

    def handle_AddOutputProfiles(self, cmd: AddOutputProfiles) -> Outcome:
        self._writable()
        if not isinstance(cmd.items, list):
            raise ApiError(400, "Request body must be an array")
        for item in cmd.items:
            check_profile_body(item)
        names = {str(p.get("name")) for p in profiles_of(self.config)}
        accepted: list[dict[str, Any]] = []
        results: list[ItemResult | None] = []
        for item in cmd.items:
            if item["name"] in names:
                results.append(ItemResult(409, f'The output profile "{item["name"]}" already exists'))
                continue
            names.add(item["name"])
            accepted.append(item)
            results.append(None)
        config = with_profiles_added(self.config, accepted)
        try:
            config = configcheck.validate_app(config)
        except ApiError as exc:
            raise ApiError(400, exc.message) from exc
        durable = []
        if accepted:
            durable.append(self.ctx.events.emit([ce.OutputProfilesAdded(self.vhost, self.name, accepted)]))
        self._reconfigured(config)
        stored = {str(p.get("name")): p for p in profiles_of(config)}
        final = [r if r is not None else ItemResult(200, "OK", stored.get(item["name"]))
                 for r, item in zip(results, cmd.items, strict=True)]
        return Outcome(final, durable)

    def _profile_or_404(self, name: str) -> dict[str, Any]:
        for profile in profiles_of(self.config):
            if profile.get("name") == name:
                return profile
        raise ApiError(404, f"Could not find the output profile: [{self.where}/{name}]")

    def handle_ReplaceOutputProfile(self, cmd: ReplaceOutputProfile) -> Outcome:
        self._writable()
        if not isinstance(cmd.body, dict):
            raise ApiError(400, "Request body must be an object")
        self._profile_or_404(cmd.name)
        body = check_patch_profile_body(cmd.body)
        profile = {"name": cmd.name, **body}
        try:
            config = configcheck.validate_app(with_profile_replaced(self.config, profile))
        except ApiError as exc:
            raise ApiError(400, exc.message) from exc
        fut = self.ctx.events.emit([ce.OutputProfileReplaced(self.vhost, self.name, profile)])
        self._reconfigured(config)
        return Outcome(profile, [fut])

    def handle_DeleteOutputProfile(self, cmd: DeleteOutputProfile) -> Outcome:
        self._writable()
        self._profile_or_404(cmd.name)
        config = with_profile_deleted(self.config, cmd.name)
        fut = self.ctx.events.emit([ce.OutputProfileDeleted(self.vhost, self.name, cmd.name)])
        self._reconfigured(config)
        return Outcome(None, [fut])

    # -- push --
    def handle_StartPush(self, cmd: StartPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        spec = parse_start_push(cmd.body, self.vhost, self.name, enabled, set(self.pushes))
        task = PushTask(self.vhost, self.name, spec.id, spec.stream_name, spec.variant_names,
                        spec.track_ids, spec.protocol, spec.url, spec.stream_key, now())
        fut = self.ctx.events.emit([te.PushCreated(
            task.vhost, task.app, task.id, task.stream_name, task.variant_names, task.track_ids,
            task.protocol, task.url, task.stream_key, task.created_time)])
        self._spawn_push(task)
        log.info("push created vhost=%s app=%s id=%s protocol=%s stream=%s", self.vhost, self.name,
                 task.id, task.protocol, task.stream_name)
        return Outcome(task, [fut])

    def handle_StopPush(self, cmd: StopPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        task_id = parse_stop_push(cmd.body, self.vhost, self.name, enabled, set(self.pushes))
        fut = self.ctx.events.emit([te.PushRemoved(self.vhost, self.name, task_id)])
        ref = self.pushes.pop(task_id)
        self.task_streams.pop(("push", task_id), None)
        tell_quietly(ref, Teardown("stopPush"))
        ref.stop(block=False)
        return Outcome(None, [fut])

    # -- record --
    def _file_enabled(self) -> None:
        if not configcheck.publisher_enabled(self.config, "file"):
            raise ApiError(404, f"Could not find application: [{self.where}]")

    def handle_StartRecord(self, cmd: StartRecord) -> Outcome:
        self._file_enabled()
        spec = parse_start_record(cmd.body, set(self.records))
        task = RecordTask(self.vhost, self.name, spec.id, spec.transaction_id, spec.stream_name,
                          spec.variant_names, spec.track_ids, spec.file_path, spec.info_path,
                          spec.interval, spec.schedule, spec.segmentation_rule, spec.metadata, now())
        fut = self.ctx.events.emit([te.RecordCreated(
            task.vhost, task.app, task.id, task.transaction_id, task.stream_name, task.variant_names,
            task.track_ids, task.file_path, task.info_path, task.interval, task.schedule,
            task.segmentation_rule, task.metadata, task.created_time)])
        started = self._spawn_record(task, wait=True)
        log.info("record created vhost=%s app=%s id=%s stream=%s", self.vhost, self.name, task.id,
                 task.stream_name)
        return Outcome(task, [fut, *started])

    def handle_StopRecord(self, cmd: StopRecord) -> Outcome:
        self._file_enabled()
        task_id = parse_stop_record(cmd.body, set(self.records))
        ref = self.records.pop(task_id)
        self.task_streams.pop(("record", task_id), None)
        snapshot = ref.proxy().stop_snapshot().get(timeout=30)
        fut = self.ctx.events.emit([te.RecordRemoved(self.vhost, self.name, task_id)])
        tell_quietly(ref, Teardown("stopRecord"))
        ref.stop(block=False)
        return Outcome(snapshot, [fut])

    # -- streams --
    def _registry(self) -> Any:
        return self.ctx.media.streams if self.ctx.media is not None else None

    def handle_OpenStream(self, cmd: OpenStream) -> Outcome:
        if not configcheck.provider_enabled(self.config, cmd.provider):
            raise ApiError(404, f"Provider {cmd.provider} is not enabled for the application: [{self.where}]")
        existing = self.streams.get(cmd.name)
        durable: list[Any] = []
        if existing is not None:
            if configcheck.block_duplicate_stream_name(self.config):
                raise ApiError(409, f"Stream already exists: [{self.where}/{cmd.name}]")
            old, old_ref = existing
            old.close_ingest("replaced by a new publisher")
            durable.extend(tell(old_ref, EndStream("replaced by a new publisher")).result(timeout=30).durable)
            self._forget(old)
        stream = LiveStream(self.vhost, self.name, cmd.name, source_type=cmd.source_type,
                            source_url=cmd.source_url, profiles=profiles_of(self.config), stats=self.ctx.stats,
                            close_ingest=cmd.close_ingest)
        ref = StreamActor.start(self.ctx, stream, self.actor_ref)
        stream.on_started = lambda _s: tell_quietly(ref, StreamDescribed())
        stream.on_ended = lambda _s, reason: tell_quietly(ref, EndStream(reason))
        self.streams[cmd.name] = (stream, ref)
        registry = self._registry()
        if registry is not None:
            registry.add(stream)
        self.ctx.stats.stream_created(self.vhost, self.name, cmd.name, stream.created_time)
        if self.ctx.media is not None:
            self.ctx.media.stream_created(stream)
        durable.append(self.ctx.events.emit([se.StreamStarted(
            self.vhost, self.name, cmd.name, stream.instance, cmd.source_type, cmd.source_url,
            stream.created_time)]))
        log.info("stream created vhost=%s app=%s stream=%s source=%s", self.vhost, self.name, cmd.name,
                 cmd.source_type)
        return Outcome(stream, durable)

    def _forget(self, stream: LiveStream) -> None:
        entry = self.streams.get(stream.name)
        if entry is None or entry[0] is not stream:
            return
        del self.streams[stream.name]
        entry[1].stop(block=False)
        registry = self._registry()
        if registry is not None:
            registry.remove(stream)
        self.ctx.stats.stream_deleted(self.vhost, self.name, stream.name)
        if self.ctx.media is not None:
            self.ctx.media.stream_ended(stream)
        stopped = [d for name in stream.outputs for d in self.ctx.tasks.dump_list(self.vhost, self.name, name)
                   if not d.enabled]
        if stopped:  # a stopped dump's id stays taken until its stream ends (as in OME)
            self.ctx.events.emit([te.DumpRemoved(d.vhost, d.app, d.output_stream, d.id) for d in stopped])
            for d in stopped:
                self.dumps.discard((d.vhost, d.app, d.output_stream, d.id))
        reason = stream.ended_reason or "stream ended"
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputGone(output_name, reason))

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
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputAvailable(stream, stream.outputs[output_name]))
        return Outcome(None)

    def handle_DeleteStream(self, cmd: DeleteStream) -> Outcome:
        entry = self.streams.get(cmd.name)
        if entry is None:
            raise stream_not_found(self.vhost, self.name, cmd.name)
        stream, ref = entry
        if not stream.close_ingest("deleted by API"):
            raise ApiError(404, "Could not terminate the stream")
        durable = list(tell(ref, EndStream("deleted by API")).result(timeout=30).durable)
        self._forget(stream)
        return Outcome(None, durable)

    # -- pulls --
    def _spawn_pull(self, name: str, urls: list[str], props: PullProperties, waiter: Future[bool] | None) -> None:
        me = self.actor_ref

        def open_stream(url: str, close: Any) -> LiveStream:
            return ask_blocking(me, OpenStream(name, "rtspPull", "RtspPull", url, close))

        def connected(_url: str) -> None:
            ask_blocking(me, PullConnected(name, worker))

        def finished(reason: str) -> None:
            tell_quietly(me, PullFinished(name, reason, worker))

        def viewers() -> int:
            metrics = self.ctx.stats.stream_json(self.vhost, self.name, name)
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
        if self.pulls.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        known = {p.name for p in self.ctx.catalog.pull_list() if (p.vhost, p.app) == (self.vhost, self.name)}
        if cmd.name in known:
            return Outcome(None)
        w = cmd.worker
        fut = self.ctx.events.emit([se.PullDefined(self.vhost, self.name, cmd.name, list(w.urls), w.props.as_json(),
                                                   w.props.persistent, now())])
        return Outcome(None, [fut])

    def handle_PullFinished(self, cmd: PullFinished) -> Outcome:
        if self.pulls.get(cmd.name) is not cmd.worker:
            return Outcome(None)
        del self.pulls[cmd.name]
        if cmd.reason == "server stopping":
            return Outcome(None)  # kept in the journal: it reconnects at the next start
        known = {p.name for p in self.ctx.catalog.pull_list() if (p.vhost, p.app) == (self.vhost, self.name)}
        if cmd.name not in known:
            return Outcome(None)
        return Outcome(None, [self.ctx.events.emit([se.PullRemoved(self.vhost, self.name, cmd.name, cmd.reason)])])

    def handle_RecordStreamEvent(self, cmd: RecordStreamEvent) -> Outcome:
        events = [se.StreamEventSent(self.vhost, self.name, cmd.name, e.event_format, e.event_type, e.events,
                                     e.urgent) for e in cmd.events]
        return Outcome(None, [self.ctx.events.emit(events)])

    # -- HLS dumps (the writers live on the event loop; this keeps the durable tasks) --
    def handle_RegisterDump(self, cmd: RegisterDump) -> Outcome:
        where = f"[{self.where}/{cmd.output_stream}]"
        existing = self.ctx.tasks.dump_list(self.vhost, self.name, cmd.output_stream)
        if any(d.id == cmd.id for d in existing) or (self.vhost, self.name, cmd.output_stream, cmd.id) in self.dumps:
            raise ApiError(500, f"Could not start dump: {where} (Duplicate ID)")
        if cmd.info_file and any(d.info_file == cmd.info_file for d in existing):
            raise ApiError(500, f"Could not start dump: {where} (Duplicate info file)")
        self.dumps.add((self.vhost, self.name, cmd.output_stream, cmd.id))
        fut = self.ctx.events.emit([te.DumpStarted(self.vhost, self.name, cmd.stream, cmd.output_stream, cmd.id,
                                                   cmd.output_path, cmd.playlists, cmd.info_file, cmd.user_data,
                                                   now())])
        return Outcome(None, [fut])

    def handle_UnregisterDumps(self, cmd: UnregisterDumps) -> Outcome:
        existing = [d for d in self.ctx.tasks.dump_list(self.vhost, self.name, cmd.output_stream) if d.enabled]
        chosen = [d for d in existing if cmd.id is None or d.id == cmd.id]
        if cmd.id is not None and not chosen:
            raise ApiError(500, f"Could not stop dump: [{self.where}/{cmd.output_stream}] (Could not find dump info)")
        events = [te.DumpStopped(self.vhost, self.name, cmd.output_stream, d.id) for d in chosen]
        return Outcome([d.id for d in chosen], [self.ctx.events.emit(events)] if events else [])
