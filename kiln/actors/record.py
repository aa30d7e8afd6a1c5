"""The record task actor: one durable recording task (rest-spec §10, media-spec §8).

States: ready (no stream), recording, stopping, stopped, error. Starting is synchronous when the
stream is live, so ``:startRecord`` already answers ``recording`` (or ``error`` with the OS reason).
Every finished file is journaled. Stream gone → the file is finished, the task waits in ``ready``
and the next stream instance records into the next sequence. A write error is not retried while
that stream instance lives (as in OME); the next instance tries again.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import OutputAvailable, OutputGone, SessionState, Teardown
from kiln.actors.context import Context
from kiln.events import tasks as te
from kiln.media.publish.record.paths import DEFAULT_FILE, DEFAULT_INFO
from kiln.media.publish.record.session import FinishedFile, RecordCounters, RecordPlan, RecordSession
from kiln.projections.tasks import RecordTask
from kiln.timefmt import now

log = logging.getLogger(__name__)


class FileFinished:
    def __init__(self, session: int, finished: FinishedFile) -> None:
        self.session = session
        self.finished = finished


class RecordActor(CommandActor):
    def __init__(self, ctx: Context, task: RecordTask) -> None:
        super().__init__()
        self.ctx = ctx
        self.task = copy.copy(task)
        self.key = ("record", task.vhost, task.app, task.id)
        self.counters = RecordCounters()
        self.session: RecordSession | None = None
        self.session_no = 0
        self.stream: Any = None
        self.output: Any = None
        self.failed_instance: str | None = None

    def on_start(self) -> None:
        if self.ctx.media is not None:
            self.ctx.media.task_counters.put(self.key, self.counters)

    def on_stop(self) -> None:
        self._stop_session(last_sequence=False)
        if self.ctx.media is not None:
            self.ctx.media.task_counters.pop(self.key)

    # -- helpers --
    def _journal(self, state: str, reason: str = "", **extra: Any) -> list[Any]:
        t = self.task
        t.state, t.reason = state, reason
        return [self.ctx.events.emit([te.RecordStateChanged(t.vhost, t.app, t.id, state, reason, **extra)])]

    def _file_settings(self) -> tuple[str, str, str]:
        view = self.ctx.catalog.app(self.task.vhost, self.task.app)
        file_cfg = ((view.config.get("publishers") or {}).get("file") if view else None) or {}
        file_cfg = file_cfg if isinstance(file_cfg, dict) else {}
        root = str(file_cfg.get("rootPath") or "")
        file_tpl = self.task.file_path or str(file_cfg.get("filePath") or "") or DEFAULT_FILE
        info_tpl = self.task.info_path or str(file_cfg.get("infoPath") or "") or DEFAULT_INFO
        return root, file_tpl, info_tpl

    def _start_session(self) -> list[Any]:
        if self.output is None or self.session is not None:
            return []
        if self.failed_instance is not None and self.failed_instance == self.stream.instance:
            return []
        t = self.task
        root, file_tpl, info_tpl = self._file_settings()
        plan = RecordPlan(t.vhost, t.app, t.id, t.transaction_id, self.output.name, file_tpl, info_tpl, root,
                          Path(self.ctx.data_dir), t.interval, t.schedule, t.segmentation_rule == "continuity",
                          t.metadata, t.created_time, list(t.variant_names), list(t.track_ids))
        self.session_no += 1
        number, ref = self.session_no, self.actor_ref
        stats, stream_name = self.ctx.stats, self.stream.name
        session = RecordSession(
            f"{t.vhost}/{t.app}/{t.id}#{number}", plan, self.output, t.sequence, self.counters,
            on_file=lambda f: tell_quietly(ref, FileFinished(number, f)),
            on_error=lambda reason: tell_quietly(ref, SessionState(number, "error", reason)),
            on_bytes=lambda n: stats.bytes_out(t.vhost, t.app, stream_name, n))
        try:
            session.prepare()
        except OSError as exc:
            self.failed_instance = self.stream.instance
            return self._journal("error", exc.strerror or str(exc))
        for note in session.skipped:
            log.info("record track skipped id=%s %s", t.id, note)
        self.session = session
        self.ctx.stats.connection(t.vhost, t.app, stream_name, "file", +1)
        session.start()
        start = now()
        t.start_time = start
        return self._journal("recording", "; ".join(session.skipped), start_time=start,
                             output_file_path=session.output_file_path or "",
                             output_info_path=session.output_info_path or "")

    def _stop_session(self, last_sequence: bool) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        session.stop(last_sequence)
        if self.stream is not None:
            self.ctx.stats.connection(self.task.vhost, self.task.app, self.stream.name, "file", -1)

    # -- commands --
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
        self.failed_instance = None
        return Outcome(None, self._journal("ready", cmd.reason))

    def handle_FileFinished(self, cmd: FileFinished) -> Outcome:
        f, t = cmd.finished, self.task
        t.sequence = max(t.sequence, f.sequence + 1)
        t.total_record_bytes += f.record_bytes
        t.total_record_time_ms += f.record_time_ms
        t.finish_time = f.finish_time
        return Outcome(None, [self.ctx.events.emit([te.RecordFileFinished(
            t.vhost, t.app, t.id, f.sequence, f.file_path, f.info_path, f.record_bytes, f.record_time_ms,
            f.start_time, f.finish_time, f.last_sequence)])])

    def handle_SessionState(self, cmd: SessionState) -> Outcome:
        if cmd.session != self.session_no or cmd.state != "error":
            return Outcome(None)
        if self.session is not None and self.stream is not None:
            self.ctx.stats.connection(self.task.vhost, self.task.app, self.stream.name, "file", -1)
        self.session = None
        self.failed_instance = self.stream.instance if self.stream is not None else None
        return Outcome(None, self._journal("error", cmd.reason))

    def stop_snapshot(self) -> RecordTask:
        """``:stopRecord``: answer with the task as it was (``stopping``), then finish the file."""
        snap = copy.copy(self.task)
        snap.state = "stopping"
        snap.output_file_path = ""
        snap.output_info_path = ""
        snap.live = RecordCounters(self.counters.record_bytes, self.counters.started_at)  # type: ignore[attr-defined]
        self._stop_session(last_sequence=True)
        return snap

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self._stop_session(last_sequence=cmd.reason == "stopRecord")
        log.info("record task stopped vhost=%s app=%s id=%s reason=%s", self.task.vhost, self.task.app,
                 self.task.id, cmd.reason)
        return Outcome(None)
