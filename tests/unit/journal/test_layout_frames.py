"""Records of events with a layout (kiln/events/layouts.py) are stored as value lists; journals written
before, with every payload a map, still read and replay the same; a value list that no layout explains is
damage, reported like any undecodable record."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgpack
import pytest

from kiln.eventlog import EventLog
from kiln.events import catalog as ce
from kiln.events import tasks as te
from kiln.events.base import Event
from kiln.events.codec import record_parts
from kiln.journal import Journal, JournalCorruptError, NewRecord, verify
from kiln.journal.reader import iter_stored
from kiln.journal.segments import journal_dir, list_segments, segment_path
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection


def _events() -> list[Event]:
    now = 1_700_000_000.0
    return [
        ce.VhostCreated("vh", {"name": "vh"}, now),
        ce.AppCreated("vh", "app", {"name": "app", "type": "live"}, now),
        te.PushCreated("vh", "app", "p1", "cam", ["v"], [0, 1], "rtmp", "rtmp://h/live", "secret-key", now),
        te.PushStateChanged("vh", "app", "p1", "started", "stream started", now),
        te.PushSessionEnded("vh", "app", "p1", 1000, 2000, "ended"),
        ce.VhostDeleted("vh"),
    ]


def _bodies(tmp_path: Path) -> list[list[object]]:
    data = list_segments(journal_dir(tmp_path))[0][1].read_bytes()
    found, offset = [], 0
    while offset < len(data):
        length, _crc = struct.unpack_from("<II", data, offset)
        found.append(msgpack.unpackb(data[offset + 8:offset + 8 + length], raw=False))
        offset += 8 + length
    return found


@contextmanager
def _opened(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal.open(tmp_path, fsync=False)
    try:
        yield journal
    finally:
        journal.close()


def _old_frame(seq: int, ev: Event) -> bytes:
    """A frame as Kiln wrote every record before layouts: the payload a map."""
    entity, type_, version, payload = record_parts(ev)
    body = msgpack.packb([seq, time.time(), entity, type_, version, payload], use_bin_type=True)
    return struct.pack("<II", len(body), zlib.crc32(body)) + body


def test_an_events_record_is_stored_as_values_and_reads_back_as_its_payload(tmp_path: Path) -> None:
    events = _events()
    with _opened(tmp_path) as journal:
        committed = journal.append([NewRecord(*record_parts(ev)) for ev in events]).result(5)
        read = list(journal.read())
        stored = list(journal.read_stored())
    assert [r.payload for r in committed] == [r.payload for r in read] == [ev.payload() for ev in events]
    assert [type(b[5]) for b in _bodies(tmp_path)] == [list] * len(events)
    assert [row[5] for row in stored] == [list(ev.payload().values()) for ev in events]
    assert verify(tmp_path).ok


def test_a_journal_of_maps_then_values_replays_as_if_applied_live(tmp_path: Path) -> None:
    events = _events()[:5]
    directory = journal_dir(tmp_path)
    directory.mkdir(parents=True)
    segment_path(directory, 1).write_bytes(b"".join(_old_frame(i + 1, ev) for i, ev in enumerate(events[:3])))
    with _opened(tmp_path) as journal:
        journal.append([NewRecord(*record_parts(ev)) for ev in events[3:]]).result(5)
        assert [r.payload for r in journal.read()] == [ev.payload() for ev in events]
        assert [type(row[5]) for row in journal.read_stored()] == [dict] * 3 + [list] * 2
        live, replayed = (CatalogProjection(), TasksProjection()), (CatalogProjection(), TasksProjection())
        for projection in live:
            for ev in events:
                projection.apply(ev)
        log = EventLog(journal, NewRecord)
        for projection in replayed:
            log.add_projection(projection)
        assert log.apply_stored(journal.read_stored()) == 5 and log.projection_failures == 0
    assert [p.snapshot() for p in replayed] == [p.snapshot() for p in live]
    assert replayed[1].push("vh", "app", "p1") is not None


@pytest.mark.parametrize("payload", [["vh"], ["vh", "app", "extra"]], ids=["short", "long"])
def test_a_value_list_no_layout_explains_is_damage(tmp_path: Path, payload: list[str]) -> None:
    with _opened(tmp_path) as journal:
        journal.append([NewRecord(*record_parts(ev)) for ev in _events()[:2]]).result(5)
    path = list_segments(journal_dir(tmp_path))[0][1]
    body = msgpack.packb([3, time.time(), "app:vh/app", "AppDeleted", 1, payload], use_bin_type=True)
    with path.open("ab") as fh:
        fh.write(struct.pack("<II", len(body), zlib.crc32(body)) + body)
    with pytest.raises(JournalCorruptError, match="no layout of AppDeleted v1"):
        list(iter_stored(journal_dir(tmp_path)))
    report = verify(tmp_path)
    assert not report.ok and "no layout of AppDeleted v1" in report.problems[0]
