"""The task supervisor of one app: its push, record and HLS-dump tasks.

Each push and record task is an actor of its own; this one creates and removes them, and tells
them when the output stream they wait for goes live or away (the stream supervisor reports
StreamLive / StreamGone). It keeps its own view of which outputs are live, so it never asks
another actor or a projection to decide.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, settled, tell, tell_quietly
from kiln.actors.commands import (
    AppReconfigured,
    OutputAvailable,
    OutputGone,
    RegisterDump,
    StartPush,
    StartRecord,
    StopPush,
    StopRecord,
    StreamGone,
    StreamLive,
    Teardown,
    UnregisterDumps,
)
from kiln.actors.context import Context
from kiln.actors.push import PushActor
from kiln.actors.push_request import parse_start_push, parse_stop_push
from kiln.actors.record import RecordActor
from kiln.actors.record_request import parse_start_record, parse_stop_record
from kiln.errors import ApiError
from kiln.events import tasks as te
from kiln.media.stream.live import LiveStream
from kiln.projections.tasks import PushTask, RecordTask
from kiln.timefmt import now

log = logging.getLogger(__name__)


class TasksActor(CommandActor):
    def __init__(self, ctx: Context, vhost: str, app: str, config: dict[str, Any]) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhost = vhost
        self.app = app
        self.config = config
        self.pushes: dict[str, Any] = {}
        self.records: dict[str, Any] = {}
        self.task_streams: dict[tuple[str, str], str] = {}  # (kind, id) -> output stream name
        self.live: dict[str, LiveStream] = {}  # input stream name -> live stream whose outputs exist
        self.dumps: set[tuple[str, str]] = set()  # (output stream, id) registered, not yet durable

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.app}"

    # -- lifecycle --
    def on_start(self) -> None:
        for push in self.ctx.tasks.push_list(self.vhost, self.app):
            self._spawn_push(push)
        for record in self.ctx.tasks.record_list(self.vhost, self.app):
            self._spawn_record(record)

    def on_stop(self) -> None:
        for ref in [*self.pushes.values(), *self.records.values()]:
            ref.stop(block=True, timeout=30)
        self.pushes.clear()
        self.records.clear()

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for ref in [*self.pushes.values(), *self.records.values()]:
            tell_quietly(ref, Teardown(cmd.reason))
        return Outcome(None)

    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.config = cmd.config
        return Outcome(None)

    # -- live outputs --
    def _spawn_push(self, task: PushTask) -> None:
        self.pushes[task.id] = PushActor.start(self.ctx, task)
        self.task_streams[("push", task.id)] = task.stream_name
        self._offer_output(self.pushes[task.id], task.stream_name)

    def _spawn_record(self, task: RecordTask, wait: bool = False) -> list[Future[Any]]:
        self.records[task.id] = RecordActor.start(self.ctx, task)
        self.task_streams[("record", task.id)] = task.stream_name
        return self._offer_output(self.records[task.id], task.stream_name, wait)

    def _offer_output(self, ref: Any, output_name: str, wait: bool = False) -> list[Future[Any]]:
        """Tell a task actor its output stream is live, if it is (reserved tasks start this way).
        With ``wait`` the returned future completes once the task has started (or failed) durably."""
        for stream in self.live.values():
            if stream.ended_reason is None and output_name in stream.outputs:
                command = OutputAvailable(stream, stream.outputs[output_name])
                if not wait:
                    tell_quietly(ref, command)
                    return []
                return [settled(tell(ref, command))]
        return []

    def _task_refs(self) -> list[tuple[Any, str]]:
        refs = [(ref, self.task_streams.get(("push", i), "")) for i, ref in self.pushes.items()]
        refs += [(ref, self.task_streams.get(("record", i), "")) for i, ref in self.records.items()]
        return refs

    def handle_StreamLive(self, cmd: StreamLive) -> Outcome:
        stream = cmd.stream
        self.live[stream.name] = stream
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputAvailable(stream, stream.outputs[output_name]))
        return Outcome(None)

    def handle_StreamGone(self, cmd: StreamGone) -> Outcome:
        stream = cmd.stream
        if self.live.get(stream.name) is stream:
            del self.live[stream.name]
        stopped = [d for name in stream.outputs for d in self.ctx.tasks.dump_list(self.vhost, self.app, name)
                   if not d.enabled]
        durable = []
        if stopped:  # a stopped dump's id stays taken until its stream ends (as in OME)
            durable.append(self.ctx.events.emit([te.DumpRemoved(d.vhost, d.app, d.output_stream, d.id)
                                                 for d in stopped]))
            for d in stopped:
                self.dumps.discard((d.output_stream, d.id))
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputGone(output_name, cmd.reason))
        return Outcome(None, durable)

    # -- push --
    def handle_StartPush(self, cmd: StartPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        spec = parse_start_push(cmd.body, self.vhost, self.app, enabled, set(self.pushes))
        task = PushTask(self.vhost, self.app, spec.id, spec.stream_name, spec.variant_names,
                        spec.track_ids, spec.protocol, spec.url, spec.stream_key, now())
        fut = self.ctx.events.emit([te.PushCreated(
            task.vhost, task.app, task.id, task.stream_name, task.variant_names, task.track_ids,
            task.protocol, task.url, task.stream_key, task.created_time)])
        self._spawn_push(task)
        log.info("push created vhost=%s app=%s id=%s protocol=%s stream=%s", self.vhost, self.app,
                 task.id, task.protocol, task.stream_name)
        return Outcome(task, [fut])

    def handle_StopPush(self, cmd: StopPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        task_id = parse_stop_push(cmd.body, self.vhost, self.app, enabled, set(self.pushes))
        fut = self.ctx.events.emit([te.PushRemoved(self.vhost, self.app, task_id)])
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
        task = RecordTask(self.vhost, self.app, spec.id, spec.transaction_id, spec.stream_name,
                          spec.variant_names, spec.track_ids, spec.file_path, spec.info_path,
                          spec.interval, spec.schedule, spec.segmentation_rule, spec.metadata, now())
        fut = self.ctx.events.emit([te.RecordCreated(
            task.vhost, task.app, task.id, task.transaction_id, task.stream_name, task.variant_names,
            task.track_ids, task.file_path, task.info_path, task.interval, task.schedule,
            task.segmentation_rule, task.metadata, task.created_time)])
        started = self._spawn_record(task, wait=True)
        log.info("record created vhost=%s app=%s id=%s stream=%s", self.vhost, self.app, task.id,
                 task.stream_name)
        return Outcome(task, [fut, *started])

    def handle_StopRecord(self, cmd: StopRecord) -> Outcome:
        self._file_enabled()
        task_id = parse_stop_record(cmd.body, set(self.records))
        ref = self.records.pop(task_id)
        self.task_streams.pop(("record", task_id), None)
        snapshot = ref.proxy().stop_snapshot().get(timeout=30)
        fut = self.ctx.events.emit([te.RecordRemoved(self.vhost, self.app, task_id)])
        tell_quietly(ref, Teardown("stopRecord"))
        ref.stop(block=False)
        return Outcome(snapshot, [fut])

    # -- HLS dumps (the writers live on the event loop; this keeps the durable tasks) --
    def handle_RegisterDump(self, cmd: RegisterDump) -> Outcome:
        where = f"[{self.where}/{cmd.output_stream}]"
        existing = self.ctx.tasks.dump_list(self.vhost, self.app, cmd.output_stream)
        if any(d.id == cmd.id for d in existing) or (cmd.output_stream, cmd.id) in self.dumps:
            raise ApiError(500, f"Could not start dump: {where} (Duplicate ID)")
        if cmd.info_file and any(d.info_file == cmd.info_file for d in existing):
            raise ApiError(500, f"Could not start dump: {where} (Duplicate info file)")
        self.dumps.add((cmd.output_stream, cmd.id))
        fut = self.ctx.events.emit([te.DumpStarted(self.vhost, self.app, cmd.stream, cmd.output_stream, cmd.id,
                                                   cmd.output_path, cmd.playlists, cmd.info_file, cmd.user_data,
                                                   now())])
        return Outcome(None, [fut])

    def handle_UnregisterDumps(self, cmd: UnregisterDumps) -> Outcome:
        existing = [d for d in self.ctx.tasks.dump_list(self.vhost, self.app, cmd.output_stream) if d.enabled]
        chosen = [d for d in existing if cmd.id is None or d.id == cmd.id]
        if cmd.id is not None and not chosen:
            raise ApiError(500, f"Could not stop dump: [{self.where}/{cmd.output_stream}] (Could not find dump info)")
        events = [te.DumpStopped(self.vhost, self.app, cmd.output_stream, d.id) for d in chosen]
        return Outcome([d.id for d in chosen], [self.ctx.events.emit(events)] if events else [])
