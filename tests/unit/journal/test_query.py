"""GET /v1/journal's reads: polling after a sequence number, the newest matches, filters, records on
disk only (older than the in-memory tail, across segments) and secrets masked."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.journal import Journal, NewRecord
from kiln.journal.query import JournalFilter, JournalQuery, QueryError, record_cost
from kiln.journal.records import Record
from kiln.journal.segments import journal_dir, list_segments


def new(n: int, entity: str = "app:default/app", type_: str = "AppCreated", **payload: object) -> NewRecord:
    return NewRecord(entity, type_, 1, {"n": n, **payload})


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path, segment_bytes=400, fsync=False)
    yield j
    j.close()


def attached(tmp_path: Path, journal: Journal, keep: int = 5000) -> JournalQuery:
    query = JournalQuery(journal_dir(tmp_path), keep=keep)
    query.start_at(journal.last_seq)
    journal.add_listener(query.on_durable)
    return query


def seqs(query: JournalQuery, **kwargs: object) -> list[int]:
    return [r["seq"] for r in query.query(JournalFilter(**kwargs)).records]  # type: ignore[arg-type]


def test_polling_after_a_sequence_number_gets_each_new_record_once(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    journal.append([new(i) for i in range(1, 6)]).result(5)
    first = query.query(JournalFilter(after=0, limit=3))
    assert [r["seq"] for r in first.records] == [1, 2, 3] and first.more and first.last_seq == 5
    assert seqs(query, after=3, limit=3) == [4, 5]
    assert query.query(JournalFilter(after=5)).records == []
    journal.append([new(6)]).result(5)
    assert seqs(query, after=5) == [6]


def test_without_after_the_newest_matches_come_oldest_first(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    entities = ["push:default/app/p" if i % 2 else "app:default/app" for i in range(1, 11)]
    journal.append([new(i, entity=e) for i, e in enumerate(entities, 1)]).result(5)
    result = query.query(JournalFilter(entity="push:", limit=3))
    assert [r["seq"] for r in result.records] == [5, 7, 9] and result.more
    assert {r["entity"] for r in result.records} == {"push:default/app/p"}


def test_type_and_since_filters(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    journal.append([new(1, type_="PushCreated"), new(2, type_="AppCreated")]).result(5)
    later = journal.append([new(3, type_="PushCreated")]).result(5)[0]
    assert seqs(query, types=frozenset({"PushCreated"})) == [1, 3]
    assert seqs(query, since=later.time) == [3]
    assert seqs(query, types=frozenset({"PushCreated", "AppCreated"}), after=1) == [2, 3]


def test_records_older_than_the_memory_tail_are_read_from_every_segment(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal, keep=4)
    for i in range(1, 31):
        journal.append([new(i, entity=f"stream:default/app/s{i % 3}")]).result(5)
    assert len(list_segments(journal_dir(tmp_path))) > 3  # the scan below crosses segment files
    assert seqs(query, after=0, limit=1000) == list(range(1, 31))
    assert seqs(query, after=10, limit=5) == [11, 12, 13, 14, 15]
    assert seqs(query, entity="stream:default/app/s1", limit=1000) == list(range(1, 31, 3))
    assert seqs(query, entity="stream:default/app/s0", limit=2) == [27, 30]


def test_the_memory_tail_is_bounded_by_bytes_as_well_as_by_count(tmp_path: Path, journal: Journal) -> None:
    """5,000 records stay in memory for the console, but a PATCH of an app keeps the app's whole configuration:
    the tail also stops at about ``keep_bytes``, and the records it let go are still answered from disk."""
    query = attached(tmp_path, journal)
    query.keep_bytes = 300_000
    config = {f"profile{i}": {"name": f"p{i}", "bitrate": i, "note": "x" * 200} for i in range(50)}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, 201):  # ~15 kB of JSON each, a payload of its own each (as decoded from a request)
            journal.append([new(n, "app:v/p", "AppPatched", config=json.loads(json.dumps(config)))]).result(5)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1_000_000, f"{held} bytes held after 200 records of ~15 kB"  # all 200 in memory: ~5 MB
    size = query.size()
    assert size.in_memory < 200 and size.in_memory_bytes <= 300_000
    assert seqs(query, limit=1000) == list(range(1, 201))
    assert seqs(query, after=0, limit=1000) == list(range(1, 201))
    assert query.query(JournalFilter(limit=1)).records[0]["payload"]["config"]["profile3"]["bitrate"] == 3


def test_record_cost_walks_deep_payloads_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    small = record_cost(Record(1, 0.0, "app:v/p", "AppPatched", 1, {"n": 1}))
    assert record_cost(Record(2, 0.0, "app:v/p", "AppPatched", 1, {"deep": deep})) > small + 100_000 * 56


def test_a_restarted_process_reads_earlier_records_from_disk(tmp_path: Path) -> None:
    first = Journal.open(tmp_path, segment_bytes=400, fsync=False)
    first.append([new(i) for i in range(1, 8)]).result(5)
    first.close()
    journal = Journal.open(tmp_path, segment_bytes=400, fsync=False)
    try:
        query = attached(tmp_path, journal)
        assert seqs(query, limit=3) == [5, 6, 7]
        assert seqs(query, after=5) == [6, 7]
        assert query.size().last_seq == 7 and query.size().in_memory == 0
        journal.append([new(8)]).result(5)
        assert seqs(query, after=5) == [6, 7, 8] and seqs(query, limit=2) == [7, 8]
    finally:
        journal.close()


def test_secrets_are_masked_also_where_a_later_record_repeats_them(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    journal.append([new(1, entity="push:default/app/yt", type_="PushCreated", stream_key="s3cr3tKEY"),
                    new(2, entity="push:default/app/yt", type_="PushStateChanged",
                        reason="connection refused by rtmp://example.com/live/s3cr3tKEY")]).result(5)
    created, failed = query.query(JournalFilter()).records
    assert created["payload"]["stream_key"] == "***"
    assert "s3cr3tKEY" not in failed["payload"]["reason"] and "rtmp://example.com/live/***" in \
        failed["payload"]["reason"]
    only_failure = query.query(JournalFilter(types=frozenset({"PushStateChanged"}))).records
    assert "s3cr3tKEY" not in str(only_failure)


def test_bytes_in_a_payload_become_json_text(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    journal.append([new(1, blob=b"\x00\xff")]).result(5)
    assert query.query(JournalFilter()).records[0]["payload"]["blob"] == "00ff"


@pytest.mark.parametrize("kwargs, text", [
    ({"limit": 0}, "limit must be between 1 and 1000"),
    ({"limit": 1001}, "limit must be between 1 and 1000"),
    ({"after": -1}, "after must be a sequence number"),
    ({"types": frozenset({"NoSuchEvent"})}, "Unknown event type: NoSuchEvent"),
])
def test_filters_that_mean_nothing_are_refused(kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(QueryError, match=text):
        JournalFilter(**kwargs)  # type: ignore[arg-type]


def test_size_counts_segments_and_bytes(tmp_path: Path, journal: Journal) -> None:
    query = attached(tmp_path, journal)
    journal.append([new(i) for i in range(1, 20)]).result(5)
    size = query.size()
    files = list_segments(journal_dir(tmp_path))
    assert (size.last_seq, size.segments) == (19, len(files))
    assert size.bytes == sum(p.stat().st_size for _s, p in files)


def test_startup_replay_fills_the_memory_tail_and_recovered_secrets_are_masked(tmp_path: Path) -> None:
    first = Journal.open(tmp_path, segment_bytes=400, fsync=False)
    first.append([new(1, entity="push:default/app/yt", type_="PushCreated", stream_key="k3y-from-before"),
                  *[new(i) for i in range(2, 8)]]).result(5)
    first.close()
    journal = Journal.open(tmp_path, segment_bytes=400, fsync=False)
    try:
        pushes = [{"streamKey": "k3y-from-before"}]  # what the service's tasks projection holds
        query = JournalQuery(journal_dir(tmp_path), keep=3, known_secrets=lambda: pushes)
        query.start_at(journal.last_seq)
        assert [r.seq for r in query.remembering(journal.read(1))] == list(range(1, 8))
        journal.add_listener(query.on_durable)
        assert query.size().in_memory == 3 and seqs(query, limit=2) == [6, 7]
        journal.append([new(8, entity="push:default/app/yt", type_="PushStateChanged",
                            reason="rtmp://example.com/live/k3y-from-before refused")]).result(5)
        (shown,) = query.query(JournalFilter(after=7)).records
        assert "k3y-from-before" not in shown["payload"]["reason"]
    finally:
        journal.close()
