"""The live tail of durable records: history then live, in order, never a gap or a repeat, and a slow
reader cut off instead of buffered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kiln.journal import Journal, NewRecord
from kiln.journal.feed import JournalFeed, Tail


def rec(i: int) -> NewRecord:
    return NewRecord(f"stream:default/app/s{i}", "StreamCreated", 1, {"name": f"s{i}"})


def append(journal: Journal, n: int, start: int = 0) -> None:
    journal.append([rec(start + i) for i in range(n)]).result(5)


async def collect(tail: Tail, until_seq: int, timeout: float = 10.0) -> list[int]:
    seqs: list[int] = []
    while not seqs or seqs[-1] < until_seq:
        batch = await asyncio.wait_for(tail.batch(), timeout)
        assert batch is not None, "cut off unexpectedly"
        seqs += [r.seq for r in batch]
    return seqs


def test_history_then_live_without_gap_or_repeat(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal, batch_records=4)
    append(journal, 10)

    async def run() -> list[int]:
        tail = feed.tail(3)
        first = await collect(tail, 10)
        await asyncio.to_thread(append, journal, 5, 10)
        second = await collect(tail, 15)
        tail.close()
        return first + second

    assert asyncio.run(run()) == list(range(3, 16))
    assert feed.open_tails == 0
    journal.close()


def test_a_tail_from_the_future_waits_for_its_first_record(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal)
    append(journal, 2)

    async def run() -> list[int]:
        tail = feed.tail(feed.last_seq + 1)
        waiting = asyncio.ensure_future(tail.batch())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await asyncio.to_thread(append, journal, 3, 2)
        batch = await asyncio.wait_for(waiting, 10)
        assert batch is not None
        seqs = [r.seq for r in batch]
        if seqs[-1] < 5:
            seqs += await collect(tail, 5)
        return seqs

    assert asyncio.run(run()) == [3, 4, 5]
    journal.close()


def test_a_slow_live_reader_is_cut_off_and_resumes_by_seq(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal, buffer_records=8)

    async def run() -> list[int]:
        tail = feed.tail(1)
        await asyncio.to_thread(append, journal, 3)
        seqs = await collect(tail, 3)           # live now
        for i in range(5):                      # 20 records while the reader reads nothing: over its buffer
            await asyncio.to_thread(append, journal, 4, 3 + 4 * i)
        assert await asyncio.wait_for(tail.batch(), 10) is None
        assert feed.cut_offs == 1 and feed.open_tails == 0
        resumed = feed.tail(tail.next_seq)
        seqs += await collect(resumed, 23)
        resumed.close()
        return seqs

    assert asyncio.run(run()) == list(range(1, 24))
    journal.close()


def test_catching_up_under_a_stream_of_appends_is_never_cut_off(tmp_path: Path) -> None:
    """While a tail reads history its buffer may fill: the files have those records, nothing is lost."""
    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal, buffer_records=4, batch_records=16)
    append(journal, 200)

    async def run() -> list[int]:
        tail = feed.tail(1)
        writer = asyncio.ensure_future(asyncio.to_thread(lambda: [append(journal, 5, 200 + 5 * i) for i in range(40)]))
        seqs: list[int] = []
        while not seqs or seqs[-1] < 400:
            batch = await asyncio.wait_for(tail.batch(), 10)
            assert batch is not None
            seqs += [r.seq for r in batch]
        await writer
        tail.close()
        return seqs

    assert asyncio.run(run()) == list(range(1, 401))
    journal.close()


def test_records_are_shown_in_the_journal_view_with_secrets_masked(tmp_path: Path) -> None:
    from kiln.events.redact import Redactor

    journal = Journal.open(tmp_path, fsync=False)
    feed = JournalFeed(journal)
    journal.append([NewRecord("push:default/app/yt", "PushCreated", 1,
                              {"id": "yt", "stream_key": "abc123"})]).result(5)
    record = next(journal.read(1))
    view = feed.view(record, Redactor())
    assert view["seq"] == 1 and view["type"] == "PushCreated" and view["entity"] == "push:default/app/yt"
    assert view["payload"] == {"id": "yt", "stream_key": "***"}
    journal.close()
