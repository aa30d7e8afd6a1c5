"""The tasks read model: push, record and HLS-dump tasks, built from durable events.

Live counters (bytes sent in the current session, and so on) are not journaled per packet; the
media workers publish them in ``LiveCounters`` objects that readers merge in (see kiln.http.push).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from kiln.events import catalog as ce
from kiln.events import tasks as te
from kiln.events.base import Event

TaskKey = tuple[str, str, str]  # (vhost, app, id)


@dataclass
class PushTask:
    vhost: str
    app: str
    id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    protocol: str
    url: str
    stream_key: str
    created_time: float
    state: str = "ready"
    reason: str = ""
    start_time: float = 0.0
    sequence: int = 0
    total_sent_bytes: int = 0
    total_sent_time_ms: int = 0


@dataclass
class RecordTask:
    vhost: str
    app: str
    id: str
    transaction_id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    file_path: str
    info_path: str
    interval: int
    schedule: str
    segmentation_rule: str
    metadata: str
    created_time: float
    state: str = "ready"
    reason: str = ""
    start_time: float = 0.0
    finish_time: float = 0.0
    sequence: int = 0
    total_record_bytes: int = 0
    total_record_time_ms: int = 0
    output_file_path: str = ""
    output_info_path: str = ""


@dataclass
class DumpTask:
    vhost: str
    app: str
    stream: str
    output_stream: str
    id: str
    output_path: str
    playlists: list[str] = field(default_factory=list)
    info_file: str = ""
    user_data: str = ""
    created_time: float = 0.0
    enabled: bool = True
    files_written: int = 0


class TasksProjection:
    """Thread-safe: updated on the journal writer thread, read by HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.pushes: dict[TaskKey, PushTask] = {}
        self.records: dict[TaskKey, RecordTask] = {}
        self.dumps: dict[tuple[str, str, str, str], DumpTask] = {}

    def apply(self, ev: Event) -> None:
        with self._lock:
            handler = getattr(self, "_on_" + ev.TYPE, None)
            if handler is not None:
                handler(ev)

    # -- push --
    def _on_PushCreated(self, ev: te.PushCreated) -> None:
        self.pushes[(ev.vhost, ev.app, ev.id)] = PushTask(
            ev.vhost, ev.app, ev.id, ev.stream_name, list(ev.variant_names), list(ev.track_ids),
            ev.protocol, ev.url, ev.stream_key, ev.created_time)

    def _on_PushStateChanged(self, ev: te.PushStateChanged) -> None:
        task = self.pushes.get((ev.vhost, ev.app, ev.id))
        if task is not None:
            task.state, task.reason = ev.state, ev.reason
            if ev.start_time is not None:
                task.start_time = ev.start_time

    def _on_PushSessionEnded(self, ev: te.PushSessionEnded) -> None:
        task = self.pushes.get((ev.vhost, ev.app, ev.id))
        if task is not None:
            task.sequence += 1
            task.total_sent_bytes += ev.sent_bytes
            task.total_sent_time_ms += ev.sent_time_ms

    def _on_PushRemoved(self, ev: te.PushRemoved) -> None:
        self.pushes.pop((ev.vhost, ev.app, ev.id), None)

    # -- record --
    def _on_RecordCreated(self, ev: te.RecordCreated) -> None:
        self.records[(ev.vhost, ev.app, ev.id)] = RecordTask(
            ev.vhost, ev.app, ev.id, ev.transaction_id, ev.stream_name, list(ev.variant_names),
            list(ev.track_ids), ev.file_path, ev.info_path, ev.interval, ev.schedule,
            ev.segmentation_rule, ev.metadata, ev.created_time)

    def _on_RecordStateChanged(self, ev: te.RecordStateChanged) -> None:
        task = self.records.get((ev.vhost, ev.app, ev.id))
        if task is None:
            return
        task.state, task.reason = ev.state, ev.reason
        if ev.start_time is not None:
            task.start_time = ev.start_time
        if ev.output_file_path:
            task.output_file_path = ev.output_file_path
        if ev.output_info_path:
            task.output_info_path = ev.output_info_path

    def _on_RecordFileFinished(self, ev: te.RecordFileFinished) -> None:
        task = self.records.get((ev.vhost, ev.app, ev.id))
        if task is not None:
            task.sequence = max(task.sequence, ev.sequence + 1)
            task.total_record_bytes += ev.record_bytes
            task.total_record_time_ms += ev.record_time_ms
            task.finish_time = ev.finish_time

    def _on_RecordRemoved(self, ev: te.RecordRemoved) -> None:
        self.records.pop((ev.vhost, ev.app, ev.id), None)

    # -- dump --
    def _on_DumpStarted(self, ev: te.DumpStarted) -> None:
        self.dumps[(ev.vhost, ev.app, ev.output_stream, ev.id)] = DumpTask(
            ev.vhost, ev.app, ev.stream, ev.output_stream, ev.id, ev.output_path, list(ev.playlists),
            ev.info_file, ev.user_data, ev.created_time)

    def _on_DumpStopped(self, ev: te.DumpStopped) -> None:
        task = self.dumps.get((ev.vhost, ev.app, ev.output_stream, ev.id))
        if task is not None:
            task.enabled = False

    def _on_DumpRemoved(self, ev: te.DumpRemoved) -> None:
        self.dumps.pop((ev.vhost, ev.app, ev.output_stream, ev.id), None)

    def _on_DumpFileWritten(self, ev: te.DumpFileWritten) -> None:
        task = self.dumps.get((ev.vhost, ev.app, ev.output_stream, ev.id))
        if task is not None:
            task.files_written = max(task.files_written, ev.seq + 1)

    # -- cascades from the catalog --
    def _on_AppDeleted(self, ev: ce.AppDeleted) -> None:
        self._drop(lambda k: k[0] == ev.vhost and k[1] == ev.name)

    def _on_VhostDeleted(self, ev: ce.VhostDeleted) -> None:
        self._drop(lambda k: k[0] == ev.name)

    def _drop(self, match: Any) -> None:
        for table in (self.pushes, self.records, self.dumps):
            for key in [k for k in table if match(k)]:
                del table[key]

    # -- reads --
    def push_list(self, vhost: str, app: str) -> list[PushTask]:
        with self._lock:
            found = [copy.copy(t) for k, t in self.pushes.items() if k[:2] == (vhost, app)]
        return sorted(found, key=lambda t: t.id)

    def push(self, vhost: str, app: str, task_id: str) -> PushTask | None:
        with self._lock:
            task = self.pushes.get((vhost, app, task_id))
            return copy.copy(task) if task else None

    def record_list(self, vhost: str, app: str) -> list[RecordTask]:
        with self._lock:
            found = [copy.copy(t) for k, t in self.records.items() if k[:2] == (vhost, app)]
        return sorted(found, key=lambda t: t.id)

    def record(self, vhost: str, app: str, task_id: str) -> RecordTask | None:
        with self._lock:
            task = self.records.get((vhost, app, task_id))
            return copy.copy(task) if task else None

    def dump_list(self, vhost: str, app: str, output_stream: str) -> list[DumpTask]:
        with self._lock:
            return [copy.copy(t) for k, t in self.dumps.items() if k[:3] == (vhost, app, output_stream)]

    def all_pushes(self) -> list[PushTask]:
        with self._lock:
            return [copy.copy(t) for t in self.pushes.values()]

    def all_records(self) -> list[RecordTask]:
        with self._lock:
            return [copy.copy(t) for t in self.records.values()]

    def all_dumps(self) -> list[DumpTask]:
        with self._lock:
            return [copy.copy(t) for t in self.dumps.values()]

    # -- snapshots --
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"pushes": [asdict(t) for t in self.pushes.values()],
                    "records": [asdict(t) for t in self.records.values()],
                    "dumps": [asdict(t) for t in self.dumps.values()]}

    def restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            for t in state.get("pushes", []):
                self.pushes[(t["vhost"], t["app"], t["id"])] = PushTask(**t)
            for t in state.get("records", []):
                self.records[(t["vhost"], t["app"], t["id"])] = RecordTask(**t)
            for t in state.get("dumps", []):
                self.dumps[(t["vhost"], t["app"], t["output_stream"], t["id"])] = DumpTask(**t)
