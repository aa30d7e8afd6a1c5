"""The record task actor: runs one record task's recording sessions (rest-spec §10, media-spec §8).

The ``RecordTask`` aggregate decides what each session report means; this actor journals what it
decides and starts and stops ``RecordSession``s. Starting is synchronous when the stream is live,
so ``:startRecord`` already answers ``recording`` (or ``error`` with the OS reason). Stream gone →
the file is finished, the task waits in ``ready`` and the next stream instance records into the
next sequence. While a file grows, the writer thread nudges the actor (``SampleCounters``) at most
twice per checkpoint interval; the aggregate decides whether a checkpoint is due.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import AppReconfigured, OutputAvailable, OutputGone, SessionState, Teardown
from kiln.actors.task_ports import TaskPorts
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.record import (
    CHECKPOINT_EVERY_S,
    CountersSampled,
    FileDone,
    OutputDetached,
    Recording,
    RecordingFailed,
    RecordStatus,
    RecordTask,
    RecordTaskCommand,
)
from kiln.domain.settings import AppSettings
from kiln.media.publish.record.paths import DEFAULT_FILE, DEFAULT_INFO
from kiln.media.publish.record.session import CounterSample, FinishedFile, RecordCounters, RecordPlan, RecordSession
from kiln.timefmt import now

log = logging.getLogger(__name__)

NUDGE_EVERY_S = CHECKPOINT_EVERY_S / 2  # so that a due checkpoint waits at most half an interval


@dataclass(frozen=True)
class FileFinished:
    """From a session's writer thread: a file was closed."""

    session: int
    finished: FinishedFile


@dataclass(frozen=True)
class SampleCounters:
    """From a session's writer thread while bytes move: time to show the aggregate the counters."""

    session: int


@dataclass(frozen=True)
class StopRecording:
    """From the task supervisor on ``:stopRecord``: finish the last file, answer a StoppedRecord."""


@dataclass(frozen=True)
class StoppedRecord:
    """The answer to ``:stopRecord``: the task as it was (``stopping``) and its live counters."""

    task: RecordStatus
    live: CounterSample


class RecordActor(CommandActor):
    def __init__(self, ports: TaskPorts, status: RecordStatus, settings: AppSettings, data_dir: Path) -> None:
        super().__init__()
        self.ports = ports
        self.task = RecordTask(status)
        self.settings = settings
        self.data_dir = data_dir
        self.spec = status.spec
        self.key = ("record", self.spec.vhost, self.spec.app, self.spec.id)
        self.counters = RecordCounters()
        self.session: RecordSession | None = None
        self.session_no = 0
        self.stream: Any = None
        self.output: Any = None

    def on_start(self) -> None:
        if self.ports.counters is not None:
            self.ports.counters.put(self.key, self.counters)

    def on_stop(self) -> None:
        self._stop_session(last_sequence=False)
        if self.ports.counters is not None:
            self.ports.counters.pop(self.key)

    # -- helpers --
    def _decide(self, command: RecordTaskCommand) -> list[Future[Any]]:
        decided = decide_and_apply(self.task, command, now(), self.ports.journal.encode)
        return [self.ports.journal.emit(decided)] if decided.records else []  # the records leave effects out

    def _plan(self) -> RecordPlan:
        s, file = self.spec, self.settings.file
        file_tpl = s.file_path or file.file_path or DEFAULT_FILE
        info_tpl = s.info_path or file.info_path or DEFAULT_INFO
        return RecordPlan(s.vhost, s.app, s.id, s.transaction_id, self.output.name, file_tpl, info_tpl,
                          file.root_path, Path(self.data_dir), s.interval, s.schedule,
                          s.segmentation_rule == "continuity", s.metadata, self.task.status.created_time,
                          list(s.variant_names), list(s.track_ids))

    def _start_session(self) -> list[Future[Any]]:
        if self.output is None or self.session is not None:
            return []
        if not self.task.may_record(self.stream.instance):
            return []
        s = self.spec
        self.session_no += 1
        number, ref = self.session_no, self.actor_ref
        stats, stream_name = self.ports.stats, self.stream.name
        nudged = [time.monotonic()]

        def on_bytes(n: int) -> None:  # runs on the writer thread, per packet: keep it cheap
            stats.bytes_out(s.vhost, s.app, stream_name, n)
            moment = time.monotonic()
            if moment - nudged[0] >= NUDGE_EVERY_S:
                nudged[0] = moment
                tell_quietly(ref, SampleCounters(number))

        session = RecordSession(
            f"{s.vhost}/{s.app}/{s.id}#{number}", self._plan(), self.output, self.task.status.sequence,
            self.counters,
            on_file=lambda f: tell_quietly(ref, FileFinished(number, f)),
            on_error=lambda reason: tell_quietly(ref, SessionState(number, "error", reason)),
            on_bytes=on_bytes)
        try:
            session.prepare()
        except OSError as exc:
            return self._decide(RecordingFailed(exc.strerror or str(exc), self.stream.instance))
        for note in session.skipped:  # the file will lack a track the user asked for: say so where they look
            log.warning("record track skipped vhost=%s app=%s id=%s stream=%s reason=%s", s.vhost, s.app, s.id,
                        stream_name, note)
        self.session = session
        stats.connection(s.vhost, s.app, stream_name, "file", +1)
        session.start()
        return self._decide(Recording(tuple(session.skipped), session.output_file_path or "",
                                      session.output_info_path or ""))

    def _stop_session(self, last_sequence: bool) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        session.stop(last_sequence)
        if self.stream is not None:
            self.ports.stats.connection(self.spec.vhost, self.spec.app, self.stream.name, "file", -1)

    # -- commands --
    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.settings = cmd.settings
        return Outcome(None)

    def handle_OutputAvailable(self, cmd: OutputAvailable) -> Outcome:
        if self.output is cmd.output:
            return Outcome(None)
        self._stop_session(last_sequence=False)
        self.stream, self.output = cmd.stream, cmd.output
        return Outcome(None, self._start_session())

    def handle_OutputGone(self, cmd: OutputGone) -> Outcome:
        if self.output is None or cmd.output_name != self.output.name:
            return Outcome(None)
        self._stop_session(last_sequence=False)
        self.output = self.stream = None
        return Outcome(None, self._decide(OutputDetached(cmd.reason)))

    def handle_FileFinished(self, cmd: FileFinished) -> Outcome:
        f = cmd.finished
        return Outcome(None, self._decide(FileDone(f.sequence, f.file_path, f.info_path, f.record_bytes,
                                                   f.record_time_ms, f.start_time, f.finish_time,
                                                   f.last_sequence)))

    def handle_SampleCounters(self, cmd: SampleCounters) -> Outcome:
        if cmd.session != self.session_no or self.session is None:
            return Outcome(None)
        c = self.counters
        return Outcome(None, self._decide(CountersSampled(self.session.sequence, c.record_bytes, c.record_time_ms)))

    def handle_SessionState(self, cmd: SessionState) -> Outcome:
        if cmd.session != self.session_no or cmd.state != "error":
            return Outcome(None)
        if self.session is not None and self.stream is not None:
            self.ports.stats.connection(self.spec.vhost, self.spec.app, self.stream.name, "file", -1)
        self.session = None
        instance = self.stream.instance if self.stream is not None else None
        return Outcome(None, self._decide(RecordingFailed(cmd.reason, instance)))

    def handle_StopRecording(self, cmd: StopRecording) -> Outcome:
        snapshot = StoppedRecord(self.task.stopping_view(), self.counters.sample())
        self._stop_session(last_sequence=True)
        return Outcome(snapshot)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self._stop_session(last_sequence=cmd.reason == "stopRecord")
        log.info("record task stopped vhost=%s app=%s id=%s reason=%s", self.spec.vhost, self.spec.app,
                 self.spec.id, cmd.reason)
        return Outcome(None)
