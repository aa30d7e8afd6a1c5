"""The journal's promises: numbering, durability order, torn tails, damage, segments, snapshots."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kiln.journal import (
    Journal,
    JournalClosedError,
    JournalCorruptError,
    NewRecord,
    Record,
    SnapshotStore,
    verify,
)
from kiln.journal.framing import encode_frame
from kiln.journal.reader import iter_stored, scan_segment, scan_tail
from kiln.journal.segments import journal_dir, list_segments


def rec(n: int, entity: str = "app:default/app") -> NewRecord:
    return NewRecord(entity, "Thing", 1, {"n": n, "blob": b"\x00\x01", "nested": {"k": [1, 2]}})


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal.open(tmp_path, fsync=False)
    yield j
    j.close()


def test_append_numbers_records_and_read_returns_them(tmp_path: Path, journal: Journal) -> None:
    first = journal.append([rec(1), rec(2)]).result(5)
    second = journal.append([rec(3)]).result(5)
    assert [r.seq for r in first] == [1, 2] and [r.seq for r in second] == [3]
    assert journal.last_seq == 3
    back = list(journal.read(2))
    assert [r.seq for r in back] == [2, 3]
    assert back[0].payload == {"n": 2, "blob": b"\x00\x01", "nested": {"k": [1, 2]}}
    assert back[0].entity == "app:default/app" and back[0].type == "Thing" and back[0].version == 1


def test_committed_records_are_frozen_records_equal_to_what_is_read_back(journal: Journal) -> None:
    """The commit builds records through their slots (journal.py): they must be the same frozen Records."""
    import dataclasses

    from kiln.events import tasks as te
    from kiln.events.codec import record_parts

    event = te.PushStateChanged("default", "app", "push-1", "started", "stream started", 1.5)
    committed = journal.append([rec(1), NewRecord(*record_parts(event))]).result(5)
    assert committed == list(journal.read(1))
    assert all(type(r) is Record for r in committed)
    assert committed[1] == Record(2, committed[1].time, *record_parts(event))
    with pytest.raises(dataclasses.FrozenInstanceError):
        committed[0].seq = 9  # type: ignore[misc]
    assert encode_frame(committed[1]) == encode_frame(list(journal.read(2))[0])  # the layout frame, both ways


def test_listeners_see_records_before_the_future_completes(journal: Journal) -> None:
    seen: list[int] = []
    journal.add_listener(lambda records: seen.extend(r.seq for r in records))
    records = journal.append([rec(1), rec(2)]).result(5)
    assert seen == [r.seq for r in records] == [1, 2]


def test_a_failing_listener_does_not_lose_the_append(journal: Journal) -> None:
    def boom(_records: list[Record]) -> None:
        raise RuntimeError("listener bug")

    journal.add_listener(boom)
    assert [r.seq for r in journal.append([rec(1)]).result(5)] == [1]


def test_concurrent_appends_get_a_gapless_sequence(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=True)
    results: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(50):
            got = journal.append([rec(k * 1000 + i)]).result(10)
            with lock:
                results.extend(r.seq for r in got)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.close()
    assert sorted(results) == list(range(1, 201))
    assert [r.seq for r in Journal.open(tmp_path).read()] == list(range(1, 201))


def test_reopen_continues_numbering(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([rec(1), rec(2)]).result(5)
    j.close()
    j = Journal.open(tmp_path, fsync=False)
    assert j.last_seq == 2
    assert [r.seq for r in j.append([rec(3)]).result(5)] == [3]
    j.close()


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.close()
    with pytest.raises(JournalClosedError):
        j.append([rec(1)])


def test_segments_roll_over_and_read_spans_them(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, segment_bytes=300, fsync=False)
    for i in range(30):
        j.append([rec(i)]).result(5)
    j.close()
    segments = list_segments(journal_dir(tmp_path))
    assert len(segments) > 3
    assert segments[0][0] == 1 and all(name.name.endswith(".kjl") for _, name in segments)
    j = Journal.open(tmp_path, segment_bytes=300, fsync=False)
    assert [r.seq for r in j.read(17)] == list(range(17, 31))
    assert [r.payload["n"] for r in j.read()] == list(range(30))
    j.close()
    assert verify(tmp_path).ok and verify(tmp_path).records == 30


def _only_segment(tmp_path: Path) -> Path:
    (_, path), = list_segments(journal_dir(tmp_path))
    return path


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_tail_is_cut_and_earlier_records_survive(tmp_path: Path, cut: int) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([rec(1), rec(2), rec(3)]).result(5)
    j.close()
    path = _only_segment(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    assert verify(tmp_path).ok and verify(tmp_path).torn_tail
    j = Journal.open(tmp_path, fsync=False)
    assert j.open_report.truncated_bytes > 0 and j.open_report.truncated_file == str(path)
    assert [r.seq for r in j.read()] == [1, 2]
    assert [r.seq for r in j.append([rec(4)]).result(5)] == [3]
    j.close()
    assert [r.payload["n"] for r in Journal.open(tmp_path).read()] == [1, 2, 4]


def test_damage_in_the_middle_stops_with_file_and_offset(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([rec(1), rec(2), rec(3)]).result(5)
    j.close()
    path = _only_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF  # inside the first record's body
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as err:
        Journal.open(tmp_path, fsync=False)
    assert str(path) in str(err.value) and "byte 0" in str(err.value) and "checksum" in str(err.value)
    assert path.read_bytes() == bytes(data)  # nothing was modified
    report = verify(tmp_path)
    assert not report.ok and str(path) in report.problems[0]


def test_a_sequence_gap_is_damage(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, segment_bytes=100, fsync=False)
    for i in range(8):
        j.append([rec(i)]).result(5)
    j.close()
    segments = list_segments(journal_dir(tmp_path))
    assert len(segments) >= 3
    segments[1][1].unlink()
    report = verify(tmp_path)
    assert not report.ok and "was expected" in report.problems[0]


def test_snapshots_round_trip_and_skip_damage(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    assert store.load_latest() is None
    store.save(10, {"catalog": {"a": [1, 2]}})
    newest = store.save(20, {"catalog": {"a": [3]}})
    store.save(5, {"old": True})
    assert store.load_latest() == (20, {"catalog": {"a": [3]}})
    newest.write_bytes(newest.read_bytes()[:-2])
    assert store.load_latest() == (10, {"catalog": {"a": [1, 2]}})


def test_read_stored_gives_the_records_fields_from_any_sequence(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, segment_bytes=300, fsync=False)
    for i in range(30):
        j.append([rec(i)]).result(5)
    for from_seq in (1, 2, 13, 17, 30, 31):
        assert list(j.read_stored(from_seq)) == [r.as_list() for r in j.read(from_seq)]
        assert [fields[0] for fields in j.read_stored(from_seq)] == list(range(from_seq, 31))
    j.close()


def test_damage_before_the_replay_start_is_still_found(tmp_path: Path) -> None:
    """Frames before ``from_seq`` are not decoded, but their checksums are still checked."""
    j = Journal.open(tmp_path, fsync=False)
    j.append([rec(1), rec(2), rec(3)]).result(5)
    j.close()
    path = _only_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF  # inside the first record's body
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="checksum"):
        list(iter_stored(journal_dir(tmp_path), 3))


@pytest.mark.parametrize("cut", [0, 1, 9, 20])
def test_opening_scans_the_tail_as_the_full_check_does(tmp_path: Path, cut: int) -> None:
    j = Journal.open(tmp_path, fsync=False)
    for i in range(5):
        j.append([rec(i)]).result(5)
    j.close()
    path = _only_segment(tmp_path)
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    assert scan_tail(path, 1) == scan_segment(path, 1, tail=True)


def test_a_tail_whose_numbering_does_not_add_up_is_damage(tmp_path: Path) -> None:
    directory = journal_dir(tmp_path)
    directory.mkdir(parents=True)
    path = directory / f"{1:020d}.kjl"
    path.write_bytes(b"".join(encode_frame(Record(seq, 1.0, "e", "Thing", 1, {"n": seq})) for seq in (1, 2, 5)))
    with pytest.raises(JournalCorruptError, match="sequence 5 where 3 was expected"):
        scan_tail(path, 1)
    with pytest.raises(JournalCorruptError, match="sequence 5 where 3 was expected"):
        Journal.open(tmp_path, fsync=False)


def test_bytes_appended_and_bytes_after_measure_the_tail_a_restart_replays(tmp_path: Path) -> None:
    """GET /v1/status tells what a restart would replay without reading a file: the bytes this process wrote, and
    at startup an estimate of the tail already there from the segments' sizes."""
    j = Journal.open(tmp_path, segment_bytes=300, fsync=False)
    for i in range(30):
        j.append([rec(i)]).result(5)
    segments = list_segments(journal_dir(tmp_path))
    total = sum(path.stat().st_size for _, path in segments)
    assert len(segments) > 3 and j.bytes_appended == total
    assert j.bytes_after(0) == total and j.bytes_after(30) == 0
    boundary = segments[2][0] - 1  # a snapshot at the record before a segment begins: exactly the later segments
    assert j.bytes_after(boundary) == sum(path.stat().st_size for _, path in segments[2:])
    assert j.bytes_after(boundary) < j.bytes_after(boundary - 1) < j.bytes_after(boundary - 2) <= total
    j.close()
    reopened = Journal.open(tmp_path, segment_bytes=300, fsync=False)
    assert reopened.bytes_appended == 0 and reopened.bytes_after(0) == total
    reopened.close()
