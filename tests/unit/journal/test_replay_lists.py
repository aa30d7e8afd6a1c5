"""Startup replay reads records a list at a time (``Journal.read_stored_lists``) and applies each list with
the projections' locks taken once (``kiln.replay``): the same records, the same state, the same failures
as one record at a time."""

from __future__ import annotations

import logging
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

from kiln.eventlog import EventLog
from kiln.events import catalog as ce
from kiln.events import streams as se
from kiln.events import tasks as te
from kiln.events.base import Event
from kiln.events.codec import record_parts
from kiln.journal import Journal, JournalCorruptError, NewRecord
from kiln.journal.reader import BATCH, iter_stored_batches
from kiln.journal.segments import journal_dir, segment_path
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection
from kiln.replay_progress import lists_with_progress

NOW = 1_700_000_000.0


def _history(cycles: int) -> list[Event]:
    events: list[Event] = [ce.VhostCreated("vh", {"name": "vh"}, NOW),
                           ce.AppCreated("vh", "app", {"name": "app", "type": "live"}, NOW)]
    for i in range(cycles):
        task = f"t{i}"
        events += [
            se.StreamStarted("vh", "app", f"s{i % 3}", f"i{i}", "Rtmp", "rtmp://10.0.0.1:1935", NOW),
            te.PushCreated("vh", "app", task, f"s{i % 3}", ["v"], [0], "rtmp", "rtmp://h/live", "key", NOW),
            te.PushStateChanged("vh", "app", task, "started", "stream started", NOW),
            te.PushSessionEnded("vh", "app", task, 1000 + i, 2000, "ended"),
        ]
        if i % 2:
            events += [te.PushRemoved("vh", "app", task),
                       se.StreamEnded("vh", "app", f"s{i % 3}", f"i{i}", "closed", 9)]
    return events


@contextmanager
def _opened(tmp_path: Path, segment_bytes: int = 16 * 1024 * 1024) -> Iterator[Journal]:
    journal = Journal.open(tmp_path, fsync=False, segment_bytes=segment_bytes)
    try:
        yield journal
    finally:
        journal.close()


def _written(tmp_path: Path, events: list[Event], segment_bytes: int = 4096) -> None:
    with _opened(tmp_path, segment_bytes) as journal:
        for at in range(0, len(events), 7):  # several commits, so several segments
            journal.append([NewRecord(*record_parts(ev)) for ev in events[at:at + 7]]).result(5)


def test_lists_hold_every_record_from_any_sequence_across_segments(tmp_path: Path) -> None:
    events = _history(60)
    _written(tmp_path, events)
    directory = journal_dir(tmp_path)
    assert len(list(directory.glob("*.kjl"))) > 3
    with _opened(tmp_path) as journal:
        for from_seq in (1, 2, 50, 200, len(events), len(events) + 1):
            rows = list(journal.read_stored(from_seq))
            assert [row for rows in journal.read_stored_lists(from_seq) for row in rows] == rows
            assert [row[0] for row in rows] == list(range(from_seq, len(events) + 1))
    lists = list(iter_stored_batches(directory, 1, batch=5))
    assert all(0 < len(rows) <= 5 for rows in lists)
    assert sum(len(rows) for rows in lists) == len(events)
    assert all(0 < len(rows) <= BATCH for rows in iter_stored_batches(directory))


def _frame(seq: int, ev: Event) -> bytes:
    entity, type_, version, payload = record_parts(ev)
    body = msgpack.packb([seq, NOW, entity, type_, version, payload], use_bin_type=True)
    return struct.pack("<II", len(body), zlib.crc32(body)) + body


def test_a_sequence_gap_fails_after_the_records_before_it(tmp_path: Path) -> None:
    events = _history(3)
    directory = journal_dir(tmp_path)
    directory.mkdir(parents=True)
    seqs = [1, 2, 3, 5, 6]
    segment_path(directory, 1).write_bytes(b"".join(_frame(seq, ev) for seq, ev in zip(seqs, events, strict=False)))
    seen: list[int] = []
    with pytest.raises(JournalCorruptError, match="sequence 5 where 4 was expected"):
        for rows in iter_stored_batches(directory, 1, batch=2):
            seen += [row[0] for row in rows]
    assert seen == [1, 2, 3]


def test_replaying_lists_gives_the_state_applying_live_gives(tmp_path: Path) -> None:
    events = _history(300)
    live = (CatalogProjection(), TasksProjection())
    for ev in events:
        for projection in live:
            projection.apply(ev)
    _written(tmp_path, events, segment_bytes=64 * 1024)
    for read in ("lists", "rows"):
        replayed = (CatalogProjection(), TasksProjection())
        with _opened(tmp_path) as journal:
            log = EventLog(journal, NewRecord)
            for projection in replayed:
                log.add_projection(projection)
            count = log.apply_stored_lists(journal.read_stored_lists()) if read == "lists" \
                else log.apply_stored(journal.read_stored())
        assert count == len(events) and log.projection_failures == 0
        assert [p.snapshot() for p in replayed] == [p.snapshot() for p in live]
        assert replayed[0].live_streams() == live[0].live_streams()
        assert replayed[1].all_pushes() == live[1].all_pushes()


class _Fussy:
    """A projection that fails on one push, and records whether its lock was held for each event."""

    def __init__(self) -> None:
        self.replay_lock = threading.RLock()
        self.seen: list[tuple[str, bool]] = []

    def apply(self, ev: Event) -> None:  # pragma: no cover - replay uses replay_handler
        raise AssertionError("replay goes through replay_handler")

    def replay_handler(self, type_name: str) -> Any:
        if type_name != "PushStateChanged":
            return None

        def handle(ev: Any) -> None:
            self.seen.append((ev.id, self.replay_lock._is_owned()))  # type: ignore[attr-defined]
            if ev.id == "t1":
                raise RuntimeError("boom")
        return handle


def test_a_failing_handler_is_counted_and_the_rest_of_its_list_still_applies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = _history(4)
    _written(tmp_path, events)
    fussy, tasks = _Fussy(), TasksProjection()
    with _opened(tmp_path) as journal, caplog.at_level(logging.ERROR):
        log = EventLog(journal, NewRecord)
        log.add_projection(fussy)
        log.add_projection(tasks)
        assert log.apply_stored_lists(journal.read_stored_lists()) == len(events)
    assert log.projection_failures == 1
    assert fussy.seen == [("t0", True), ("t1", True), ("t2", True), ("t3", True)]
    assert "projection failed projection=_Fussy type=PushStateChanged seq=" in caplog.text
    assert [p.state for p in sorted(tasks.all_pushes(), key=lambda p: p.id)] == ["started", "started"]
    assert fussy.replay_lock.acquire(blocking=False)  # released after the replay
    fussy.replay_lock.release()


def test_progress_over_lists_counts_records_and_says_where_it_got(caplog: pytest.LogCaptureFixture) -> None:
    class Clock:
        def __init__(self) -> None:
            self.now = 0.0

        def __call__(self) -> float:
            self.now += 1.0
            return self.now

    lists = [[[seq] for seq in range(start, start + 100)] for start in range(1, 1001, 100)]
    with caplog.at_level(logging.INFO, logger="kiln.replay"):
        out = list(lists_with_progress(lists, 1, 1000, seq_of=lambda row: row[0], interval=2.0, clock=Clock()))
    assert out == lists
    assert "journal replay progress records=" in caplog.text and "seq=1000/1000" in caplog.text
    assert "journal replay done records=1000" in caplog.text
