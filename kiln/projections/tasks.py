"""The tasks read model: push, record and HLS-dump tasks, built from durable events.

Live counters (bytes sent in the current session, and so on) are not journaled per packet; the
media workers publish them in ``LiveCounters`` objects that readers merge in (see kiln.http.push).
Checkpoints of them (``PushProgress``) are journaled every few seconds, so that what a crash loses
is bounded and the totals read never fall below the last checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kiln.domain.app_tasks import AppTasks
from kiln.domain.dumps import DumpStatus
from kiln.domain.push import PushStatus
from kiln.domain.record import RecordStatus
from kiln.events import catalog as ce
from kiln.events import tasks as te
from kiln.events.base import Event
from kiln.projections.copies import shallow
from kiln.projections.dispatch import LockedDispatch, handlers_of

TaskKey = tuple[str, str, str]  # (vhost, app, id)

# The read model holds the domain's own status records: one declaration of each task's fields.
PushTask = PushStatus
RecordTask = RecordStatus
DumpTask = DumpStatus


class TasksProjection(LockedDispatch):
    """Thread-safe: updated by the thread committing to the journal, read by HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.pushes: dict[TaskKey, PushTask] = {}
        self.records: dict[TaskKey, RecordTask] = {}
        self.dumps: dict[tuple[str, str, str, str], DumpTask] = {}

    # -- push --
    def _on_PushCreated(self, ev: te.PushCreated) -> None:
        self.pushes[(ev.vhost, ev.app, ev.id)] = PushStatus.created(ev)

    def _on_PushStateChanged(self, ev: te.PushStateChanged) -> None:
        self._fold(self.pushes, (ev.vhost, ev.app, ev.id), ev)

    def _on_PushProgress(self, ev: te.PushProgress) -> None:
        self._fold(self.pushes, (ev.vhost, ev.app, ev.id), ev)

    def _on_PushSessionEnded(self, ev: te.PushSessionEnded) -> None:
        self._fold(self.pushes, (ev.vhost, ev.app, ev.id), ev)

    def _on_PushRemoved(self, ev: te.PushRemoved) -> None:
        self.pushes.pop((ev.vhost, ev.app, ev.id), None)

    # -- record --
    def _on_RecordCreated(self, ev: te.RecordCreated) -> None:
        self.records[(ev.vhost, ev.app, ev.id)] = RecordStatus.created(ev)

    def _on_RecordStateChanged(self, ev: te.RecordStateChanged) -> None:
        self._fold(self.records, (ev.vhost, ev.app, ev.id), ev)

    def _on_RecordFileFinished(self, ev: te.RecordFileFinished) -> None:
        self._fold(self.records, (ev.vhost, ev.app, ev.id), ev)

    def _on_RecordProgress(self, ev: te.RecordProgress) -> None:
        self._fold(self.records, (ev.vhost, ev.app, ev.id), ev)

    def _on_RecordFileLost(self, ev: te.RecordFileLost) -> None:
        self._fold(self.records, (ev.vhost, ev.app, ev.id), ev)

    def _on_RecordRemoved(self, ev: te.RecordRemoved) -> None:
        self.records.pop((ev.vhost, ev.app, ev.id), None)

    # -- dump --
    def _on_DumpStarted(self, ev: te.DumpStarted) -> None:
        self.dumps[(ev.vhost, ev.app, ev.output_stream, ev.id)] = DumpStatus.started(ev)

    def _on_DumpStopped(self, ev: te.DumpStopped) -> None:
        self._fold(self.dumps, (ev.vhost, ev.app, ev.output_stream, ev.id), ev)

    def _on_DumpRemoved(self, ev: te.DumpRemoved) -> None:
        self.dumps.pop((ev.vhost, ev.app, ev.output_stream, ev.id), None)

    def _on_DumpFileWritten(self, ev: te.DumpFileWritten) -> None:
        self._fold(self.dumps, (ev.vhost, ev.app, ev.output_stream, ev.id), ev)

    @staticmethod
    def _fold(table: Any, key: tuple[str, ...], ev: Event) -> None:
        found = table.get(key)
        if found is not None:
            found.fold(ev)

    # -- cascades from the catalog --
    def _on_AppDeleted(self, ev: ce.AppDeleted) -> None:
        self._drop(lambda k: k[0] == ev.vhost and k[1] == ev.name)

    def _on_VhostDeleted(self, ev: ce.VhostDeleted) -> None:
        self._drop(lambda k: k[0] == ev.name)

    def _drop(self, match: Callable[[tuple[str, ...]], bool]) -> None:
        tables: tuple[dict[Any, Any], ...] = (self.pushes, self.records, self.dumps)
        for table in tables:
            for key in [k for k in table if match(k)]:
                del table[key]

    # -- reads --
    def push_list(self, vhost: str, app: str) -> list[PushTask]:
        with self._lock:
            found = [shallow(t) for k, t in self.pushes.items() if k[:2] == (vhost, app)]
        return sorted(found, key=lambda t: t.id)

    def push(self, vhost: str, app: str, task_id: str) -> PushTask | None:
        with self._lock:
            task = self.pushes.get((vhost, app, task_id))
            return shallow(task) if task else None

    def record_list(self, vhost: str, app: str) -> list[RecordTask]:
        with self._lock:
            found = [shallow(t) for k, t in self.records.items() if k[:2] == (vhost, app)]
        return sorted(found, key=lambda t: t.id)

    def record(self, vhost: str, app: str, task_id: str) -> RecordTask | None:
        with self._lock:
            task = self.records.get((vhost, app, task_id))
            return shallow(task) if task else None

    def dump_list(self, vhost: str, app: str, output_stream: str) -> list[DumpTask]:
        with self._lock:
            return [shallow(t) for k, t in self.dumps.items() if k[:3] == (vhost, app, output_stream)]

    def recovered(self) -> dict[tuple[str, str], AppTasks]:
        """What each app's task supervisor starts from, by (vhost, app), in one pass (recovery asks
        once for every app). Copies: the supervisors own them; specs are frozen and shared."""
        found: dict[tuple[str, str], tuple[list[PushTask], list[RecordTask], list[DumpTask]]] = {}
        with self._lock:
            for push_key, push in sorted(self.pushes.items()):
                found.setdefault(push_key[:2], ([], [], []))[0].append(shallow(push))
            for record_key, record in sorted(self.records.items()):
                found.setdefault(record_key[:2], ([], [], []))[1].append(shallow(record))
            for dump_key, dump in self.dumps.items():
                found.setdefault(dump_key[:2], ([], [], []))[2].append(shallow(dump))
        return {app: AppTasks(tuple(p), tuple(r), tuple(d)) for app, (p, r, d) in found.items()}

    def all_pushes(self) -> list[PushTask]:
        with self._lock:
            return [shallow(t) for t in self.pushes.values()]

    def all_records(self) -> list[RecordTask]:
        with self._lock:
            return [shallow(t) for t in self.records.values()]

    def all_dumps(self) -> list[DumpTask]:
        with self._lock:
            return [shallow(t) for t in self.dumps.values()]

    # -- snapshots --
    def snapshot(self) -> dict[str, Any]:
        return self.capture()()

    def capture(self) -> Callable[[], dict[str, Any]]:
        """The state now, as shallow copies taken under the lock (specs are frozen and shared); the
        returned function renders the snapshot from them on any thread. Rendering 2,000 tasks took
        about 40 ms, too long for the journal's committing thread, where captures happen."""
        with self._lock:
            pushes = [shallow(t) for t in self.pushes.values()]
            records = [shallow(t) for t in self.records.values()]
            dumps = [shallow(t) for t in self.dumps.values()]

        def render() -> dict[str, Any]:
            return {"pushes": [t.snapshot() for t in pushes], "records": [t.snapshot() for t in records],
                    "dumps": [t.snapshot() for t in dumps]}

        return render

    def restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            for saved in state.get("pushes", []):
                push = PushStatus.restore(saved)
                self.pushes[(push.vhost, push.app, push.id)] = push
            for saved in state.get("records", []):
                record = RecordStatus.restore(saved)
                self.records[(record.vhost, record.app, record.id)] = record
            for saved in state.get("dumps", []):
                dump = DumpStatus.restore(saved)
                self.dumps[(dump.vhost, dump.app, dump.output_stream, dump.id)] = dump


TasksProjection._handlers = handlers_of(TasksProjection)
