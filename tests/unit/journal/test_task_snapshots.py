"""The tasks read model's snapshots: today's shape round-trips, and snapshots written before the
push/record specs were declared once (flat task dicts) still restore to the same tasks."""

from __future__ import annotations

from typing import Any

from kiln.events import tasks as te
from kiln.projections.tasks import TasksProjection

EVENTS = [
    te.PushCreated("vh", "app", "p1", "cam", ["v"], [1], "rtmp", "rtmp://h/a", "k", 10.0),
    te.PushStateChanged("vh", "app", "p1", "error", "refused", 11.0),
    te.PushSessionEnded("vh", "app", "p1", 100, 200, "stream ended"),
    te.RecordCreated("vh", "app", "r1", "tx", "cam", [], [], "/f.mp4", "", 0, "10 * *", "continuity", "m", 12.0),
    te.RecordStateChanged("vh", "app", "r1", "recording", "", 13.0, "/rec/f.mp4", "/rec/f.xml"),
    te.RecordFileFinished("vh", "app", "r1", 0, "/rec/f.mp4", "/rec/f.xml", 5, 6, 13.0, 14.0, False),
    te.DumpStarted("vh", "app", "cam", "cam", "d1", "/d", ["llhls.m3u8"], "i.xml", "u", 15.0),
    te.DumpStopped("vh", "app", "cam", "d1"),
]


def built() -> TasksProjection:
    projection = TasksProjection()
    for ev in EVENTS:
        projection.apply(ev)
    return projection


# fields added after the flat shape (the checkpoint of the current session's counters)
NEWER_FIELDS = {"session_sent_bytes", "session_sent_time_ms", "file_sequence", "file_record_bytes",
                "file_record_time_ms"}


def flat(task: dict[str, Any]) -> dict[str, Any]:
    """A task dict as snapshots held it before the spec was nested."""
    return {**task["spec"], **{k: v for k, v in task.items() if k != "spec" and k not in NEWER_FIELDS}}


def test_snapshot_round_trips() -> None:
    original = built()
    restored = TasksProjection()
    restored.restore(original.snapshot())
    assert restored.snapshot() == original.snapshot()
    assert restored.push("vh", "app", "p1") == original.push("vh", "app", "p1")


def test_an_old_flat_snapshot_restores_the_same_tasks() -> None:
    original = built()
    saved = original.snapshot()
    old = {"pushes": [flat(t) for t in saved["pushes"]], "records": [flat(t) for t in saved["records"]],
           "dumps": [flat(t) for t in saved["dumps"]]}
    assert set(old["pushes"][0]) == {  # the fields of the old flat PushTask
        "vhost", "app", "id", "stream_name", "variant_names", "track_ids", "protocol", "url", "stream_key",
        "created_time", "state", "reason", "start_time", "sequence", "total_sent_bytes", "total_sent_time_ms"}
    restored = TasksProjection()
    restored.restore(old)
    assert restored.snapshot() == saved
    push = restored.push("vh", "app", "p1")
    assert push is not None and (push.sequence, push.state, push.spec.url) == (1, "error", "rtmp://h/a")
    record = restored.record("vh", "app", "r1")
    assert record is not None and (record.sequence, record.spec.schedule) == (1, "10 * *")
