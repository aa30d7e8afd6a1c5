"""The task supervisor of one app: its push, record and HLS-dump tasks.

It owns the app-level aggregates (which push and record ids exist, the app's dumps), journals
what they decide, and then runs the effects: each push and record task is an actor of its own
that this one creates and removes, and dump writers are started, stopped and resumed (when their
output stream is live again) through ``DumpWriters``. It tells task actors when the output stream
they wait for goes live or away (the stream supervisor reports StreamLive / StreamGone), keeping
its own view of which outputs are live, so it never asks another actor or a projection to decide.

Tasks found by recovery, and pushes created while their stream is not live, start as actors lazily:
a restart with thousands of standing tasks whose streams are not live would otherwise start a thread
per task before answering anything (and each ``:startPush`` a thread that waits). Such a task
waits here as the status recovery found (nothing can change it while no actor runs it: only its
own actor decides for it) and gets its actor, seeded with that status, on its first command: its
output stream going live, or ``:stopRecord``. ``:stopPush`` of a waiting task needs no actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pykka

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
from kiln.actors.push import PushActor
from kiln.actors.record import RecordActor, StopRecording
from kiln.actors.task_ports import CounterBoard, Journal, TaskPorts, TaskStats
from kiln.domain.aggregate import Aggregate, decide_and_apply
from kiln.domain.app_tasks import AppTasks
from kiln.domain.dumps import AppDumps, ForgetStoppedDumps, StartDump, StopDumps
from kiln.domain.push import CreatePush, PushStatus, PushTasks, RemovePush
from kiln.domain.record import CreateRecord, RecordStatus, RecordTasks, RemoveRecord
from kiln.domain.record_request import new_transaction_id
from kiln.domain.settings import AppSettings
from kiln.eventlog import Encoded
from kiln.events import tasks as te
from kiln.events.tasks import DumpSpec
from kiln.media.publish.llhls.dump_control import LlhlsDumpControl
from kiln.media.stream.live import LiveStream
from kiln.timefmt import now

C = TypeVar("C")

log = logging.getLogger(__name__)

ActorRef = pykka.ActorRef[Any]


class TasksSetup(Protocol):
    """What the supervisor takes from the process when it starts (the app actor passes its context)."""

    @property
    def events(self) -> Journal: ...

    @property
    def stats(self) -> TaskStats: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def media(self) -> Any: ...  # offers task_counters (a CounterBoard) and llhls, or is None


class DumpWriters(Protocol):
    """Starts and stops the files an HLS dump writes (never blocks: the writers live elsewhere)."""

    def start(self, vhost: str, app: str, output_stream: str, dump_id: str, output_path: str,
              playlists: list[str], info_file: str, user_data: str) -> None: ...

    def stop(self, vhost: str, app: str, output_stream: str, dump_ids: Collection[str]) -> None: ...


def _after(durable: Future[Any], effect: Callable[[], None]) -> None:
    """Run ``effect`` once the journal holds the decision (not at all if the append failed)."""
    durable.add_done_callback(lambda f: effect() if f.exception() is None else None)


class TasksActor(CommandActor):
    def __init__(self, ctx: TasksSetup, vhost: str, app: str, config: dict[str, Any],
                 recovered: AppTasks) -> None:
        super().__init__()
        self.vhost = vhost
        self.app = app
        self.settings = AppSettings.parse(config)
        media = ctx.media
        counters: CounterBoard | None = media.task_counters if media is not None else None
        self.ports = TaskPorts(ctx.events, ctx.stats, counters)
        self.data_dir: Path = ctx.data_dir
        llhls = getattr(media, "llhls", None) if media is not None else None
        self.dump_writers: DumpWriters | None = LlhlsDumpControl(llhls) if llhls is not None else None
        seed = recovered  # what recovery found for this app, handed down by the app actor
        self.push_tasks = PushTasks(vhost, app, self.settings, [p.id for p in seed.pushes])
        self.record_tasks = RecordTasks(vhost, app, self.settings, [r.id for r in seed.records])
        self.dumps = AppDumps(vhost, app, seed.dumps)
        self.pushes: dict[str, ActorRef] = {}
        self.records: dict[str, ActorRef] = {}
        # recovered tasks whose actor has not started yet (see the module docstring)
        self.waiting_pushes: dict[str, PushStatus] = {p.id: p for p in seed.pushes}
        self.waiting_records: dict[str, RecordStatus] = {r.id: r for r in seed.records}
        self.task_streams: dict[tuple[str, str], str] = {}  # (kind, id) -> output stream name
        self.live: dict[str, LiveStream] = {}  # input stream name -> live stream whose outputs exist

    # -- lifecycle --
    def on_stop(self) -> None:
        for ref in [*self.pushes.values(), *self.records.values()]:
            ref.stop(block=True, timeout=30)
        self.pushes.clear()
        self.records.clear()
        self.waiting_pushes.clear()
        self.waiting_records.clear()

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for ref in [*self.pushes.values(), *self.records.values()]:
            tell_quietly(ref, Teardown(cmd.reason))
        return Outcome(None)

    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.settings = self.push_tasks.settings = self.record_tasks.settings = cmd.settings
        for ref in [*self.pushes.values(), *self.records.values()]:
            tell_quietly(ref, cmd)
        return Outcome(None)

    def _journal(self, events: Encoded) -> Future[Any]:
        return self.ports.journal.emit(events)

    def _decide(self, aggregate: Aggregate[C], command: C) -> Encoded:
        """``decide_and_apply``: the events are encoded for the journal before they change ``aggregate``."""
        return decide_and_apply(aggregate, command, now(), self.ports.journal.encode)

    # -- live outputs --
    def _spawn_push(self, status: PushStatus, offer: bool = True) -> None:
        self.pushes[status.id] = PushActor.start(self.ports, status, self.settings)
        self.task_streams[("push", status.id)] = status.spec.stream_name
        if offer:
            self._offer_output(self.pushes[status.id], status.spec.stream_name)

    def _spawn_record(self, status: RecordStatus, wait: bool = False, offer: bool = True) -> list[Future[Any]]:
        self.records[status.id] = RecordActor.start(self.ports, status, self.settings, self.data_dir)
        self.task_streams[("record", status.id)] = status.spec.stream_name
        if not offer:
            return []
        return self._offer_output(self.records[status.id], status.spec.stream_name, wait)

    def _offer_output(self, ref: ActorRef, output_name: str, wait: bool = False) -> list[Future[Any]]:
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

    def _is_live(self, output_name: str) -> bool:
        return any(stream.ended_reason is None and output_name in stream.outputs for stream in self.live.values())

    def _wake_waiting(self, outputs: Collection[str]) -> None:
        """Start the actors of waiting tasks whose output stream is among ``outputs`` (now live)."""
        for push_id in [i for i, p in self.waiting_pushes.items() if p.spec.stream_name in outputs]:
            self._spawn_push(self.waiting_pushes.pop(push_id), offer=False)
        for record_id in [i for i, r in self.waiting_records.items() if r.spec.stream_name in outputs]:
            self._spawn_record(self.waiting_records.pop(record_id), offer=False)

    def _task_refs(self) -> list[tuple[ActorRef, str]]:
        refs = [(ref, self.task_streams.get(("push", i), "")) for i, ref in self.pushes.items()]
        refs += [(ref, self.task_streams.get(("record", i), "")) for i, ref in self.records.items()]
        return refs

    def handle_StreamLive(self, cmd: StreamLive) -> Outcome:
        stream: LiveStream = cmd.stream
        self.live[stream.name] = stream
        self._wake_waiting(stream.outputs)
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputAvailable(stream, stream.outputs[output_name]))
        self._resume_dumps(stream)
        return Outcome(None)

    def _resume_dumps(self, stream: LiveStream) -> None:
        """A durable dump (enabled, journaled) resumes when its output stream is live again, after a
        reconnect or a restart, into the same directory and info file, which continue where they left off.

        The stream supervisor hands the stream to the LL-HLS publisher before it reports StreamLive,
        and both hop onto the same event loop in that order, so the LL-HLS stream exists when the
        writer starts."""
        writers = self.dump_writers
        if writers is None or not self.settings.publisher_enabled("llhls"):
            return
        for output_name in stream.outputs:
            for dump in self.dumps.on(output_name):
                if dump.enabled:
                    log.info("hls dump resumed vhost=%s app=%s stream=%s id=%s", self.vhost, self.app,
                             output_name, dump.id)
                    writers.start(self.vhost, self.app, output_name, dump.id, dump.output_path,
                                  list(dump.playlists), dump.info_file, dump.user_data)

    def handle_StreamGone(self, cmd: StreamGone) -> Outcome:
        stream: LiveStream = cmd.stream
        if self.live.get(stream.name) is stream:
            del self.live[stream.name]
        # a stopped dump's id stays taken until its stream ends (as in OME)
        forgotten = self._decide(self.dumps, ForgetStoppedDumps(tuple(stream.outputs)))
        durable = [self._journal(forgotten)] if forgotten.records else []
        for ref, output_name in self._task_refs():
            if output_name in stream.outputs:
                tell_quietly(ref, OutputGone(output_name, cmd.reason))
        return Outcome(None, durable)

    # -- push --
    def handle_StartPush(self, cmd: StartPush) -> Outcome:
        events = self._decide(self.push_tasks, CreatePush(cmd.body))
        fut = self._journal(events)
        created = events.events[0]
        assert isinstance(created, te.PushCreated)
        status = PushStatus.created(created)
        if self._is_live(status.spec.stream_name):
            self._spawn_push(status)
        else:  # nothing to push yet: it waits without a thread, as a recovered task does
            self.waiting_pushes[status.id] = status
        log.info("push created vhost=%s app=%s id=%s protocol=%s stream=%s", self.vhost, self.app,
                 status.id, status.spec.protocol, status.spec.stream_name)
        return Outcome(PushStatus.created(created), [fut])  # the caller's copy: the task actor folds its own

    def handle_StopPush(self, cmd: StopPush) -> Outcome:
        events = self._decide(self.push_tasks, RemovePush(cmd.body))
        fut = self._journal(events)
        for ev in events.events:
            assert isinstance(ev, te.PushRemoved)
            if self.waiting_pushes.pop(ev.id, None) is not None:
                continue  # its actor never started: no session, timer or counters to stop
            ref = self.pushes.pop(ev.id)
            self.task_streams.pop(("push", ev.id), None)
            tell_quietly(ref, Teardown("stopPush"))
            ref.stop(block=False)
        return Outcome(None, [fut])

    # -- record --
    def handle_StartRecord(self, cmd: StartRecord) -> Outcome:
        events = self._decide(self.record_tasks, CreateRecord(cmd.body, new_transaction_id()))
        fut = self._journal(events)
        created = events.events[0]
        assert isinstance(created, te.RecordCreated)
        status = RecordStatus.created(created)
        started = self._spawn_record(status, wait=True)
        log.info("record created vhost=%s app=%s id=%s stream=%s", self.vhost, self.app, status.id,
                 status.spec.stream_name)
        return Outcome(RecordStatus.created(created), [fut, *started])  # the caller's copy

    def handle_StopRecord(self, cmd: StopRecord) -> Outcome:
        """Answers a future of the task's ``StoppedRecord`` (the record actor finishes its file)."""
        events = self._decide(self.record_tasks, RemoveRecord(cmd.body))
        fut = self._journal(events)
        removed = events.events[0]
        assert isinstance(removed, te.RecordRemoved)
        waiting = self.waiting_records.pop(removed.id, None)
        if waiting is not None:  # the answer (the task as it stops, its counters) is its actor's to give
            self._spawn_record(waiting, offer=False)
        ref = self.records.pop(removed.id)
        self.task_streams.pop(("record", removed.id), None)
        stopped = settled(tell(ref, StopRecording()))
        tell_quietly(ref, Teardown("stopRecord"))
        ref.stop(block=False)
        return Outcome(stopped, [fut])

    # -- HLS dumps --
    def handle_RegisterDump(self, cmd: RegisterDump) -> Outcome:
        """``:startHlsDump``: journal the dump, then start its writer."""
        spec = DumpSpec(self.vhost, self.app, cmd.stream, cmd.output_stream, cmd.id, cmd.output_path,
                        list(cmd.playlists), cmd.info_file, cmd.user_data)
        fut = self._journal(self._decide(self.dumps, StartDump(spec)))
        writers = self.dump_writers
        if writers is not None:
            _after(fut, lambda: writers.start(spec.vhost, spec.app, spec.output_stream, spec.id, spec.output_path,
                                              list(spec.playlists), spec.info_file, spec.user_data))
        return Outcome(None, [fut])

    def handle_UnregisterDumps(self, cmd: UnregisterDumps) -> Outcome:
        """``:stopHlsDump``: journal the stops, then stop the writers; answers the stopped ids."""
        events = self._decide(self.dumps, StopDumps(cmd.output_stream, cmd.id))
        ids = [ev.id for ev in events.events if isinstance(ev, te.DumpStopped)]
        if not events.records:
            return Outcome(ids)
        fut = self._journal(events)
        writers = self.dump_writers
        if writers is not None:
            vhost, app = self.vhost, self.app
            _after(fut, lambda: writers.stop(vhost, app, cmd.output_stream, ids))
        return Outcome(ids, [fut])
