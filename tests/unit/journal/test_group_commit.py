"""Leader/follower group commit: the appending thread writes; appends that come during a commit ride the next one.

What a user of the journal relies on: a lone appender pays no hand-off to another thread; appenders that
come while a commit is under way do not wait for the disk in ``append`` and are carried, together, by
the next commit; a leader never commits for others without bound; an event loop never writes; close()
finishes everything queued; and a failed write fails the appends queued behind it.
"""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from pathlib import Path

import pytest

from kiln.journal import Journal, JournalFailedError, JournalRecordError, NewRecord, Record, verify
from kiln.journal.journal import LEAD_ROUNDS, defer_commits_while


def rec(n: int) -> NewRecord:
    return NewRecord("app:default/app", "Thing", 1, {"n": n})


def commit_held(journal: Journal) -> tuple[threading.Event, threading.Thread]:
    """A leader thread inside its commit of rec(0), held there until the event is set: appends made now queue
    behind it (waiting until it is inside, not only started: under load the test's own append could come first)."""
    release, inside = threading.Event(), threading.Event()

    def hold(_records: list[Record]) -> None:
        if not inside.is_set():
            inside.set()
            release.wait(10)

    journal.add_listener(hold)
    leader = threading.Thread(target=lambda: journal.append([rec(0)]))
    leader.start()
    assert inside.wait(10)
    return release, leader


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal.open(tmp_path, fsync=True)
    yield j
    j.close()


def test_a_lone_appender_commits_on_its_own_thread(journal: Journal) -> None:
    threads: list[str] = []
    journal.add_listener(lambda _records: threads.append(threading.current_thread().name))
    for n in range(3):
        journal.append([rec(n)]).result(5)
    assert threads == [threading.current_thread().name] * 3


def test_appends_during_a_commit_queue_and_share_the_next_one(journal: Journal) -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def slow_first_commit(records: list[Record]) -> None:
        batches.append([r.seq for r in records])
        if len(batches) == 1:
            assert release.wait(10)

    journal.add_listener(slow_first_commit)
    leader = threading.Thread(target=lambda: journal.append([rec(0)]).result(10))
    leader.start()
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:  # the leader is inside its commit, after the fsync
        time.sleep(0.001)
    # ten appenders while the leader is busy: append() returns at once, nothing is durable yet
    futures = [journal.append([rec(n), rec(n + 100)]) for n in range(1, 11)]
    assert not any(f.done() for f in futures)
    release.set()
    results = [f.result(10) for f in futures]
    leader.join(10)
    assert batches == [[1], list(range(2, 22))]  # one commit (one fsync) carried all ten
    assert [[r.seq for r in got] for got in results] == [[n, n + 1] for n in range(2, 22, 2)]
    assert [r.payload["n"] for r in journal.read(2)] == [v for n in range(1, 11) for v in (n, n + 100)]


def test_a_leader_hands_endless_work_to_the_standby_thread(journal: Journal) -> None:
    committers: list[str] = []
    more = [40]

    def append_more(_records: list[Record]) -> None:  # every commit queues another append
        committers.append(threading.current_thread().name)
        if more[0] > 0:
            more[0] -= 1
            journal.append([rec(more[0])])

    journal.add_listener(append_more)
    journal.append([rec(-1)]).result(5)  # returns although work keeps coming
    me = threading.current_thread().name
    assert committers[:LEAD_ROUNDS] == [me] * LEAD_ROUNDS
    deadline = time.monotonic() + 10
    while len(committers) < 41 and time.monotonic() < deadline:  # the standby commits the rest
        time.sleep(0.005)
    assert len(committers) == 41 and set(committers[LEAD_ROUNDS:]) == {"kiln-journal"}
    assert [r.seq for r in journal.read(1)] == list(range(1, 42))


def test_an_event_loop_thread_never_writes(journal: Journal) -> None:
    threads: list[str] = []
    journal.add_listener(lambda _records: threads.append(threading.current_thread().name))

    async def from_the_loop() -> list[Record]:
        return await asyncio.wrap_future(journal.append([rec(1)]))

    records = asyncio.run(from_the_loop())
    assert [r.seq for r in records] == [1] and threads == ["kiln-journal"]


def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    release, leader = commit_held(journal)
    queued = [journal.append([rec(n)]) for n in range(1, 6)]
    closer = threading.Thread(target=journal.close)
    closer.start()
    release.set()
    closer.join(10)
    leader.join(10)
    assert [f.result(0)[0].seq for f in queued] == [2, 3, 4, 5, 6]
    reopened = Journal.open(tmp_path, fsync=False)
    try:
        assert reopened.last_seq == 6
    finally:
        reopened.close()


def test_a_failed_write_fails_the_appends_queued_behind_it(journal: Journal, monkeypatch) -> None:
    release, leader = commit_held(journal)
    queued = journal.append([rec(1)])  # waits behind the leader's first commit

    def no_space(_data: bytes) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(journal, "_write", no_space)
    release.set()
    leader.join(10)
    with pytest.raises(JournalFailedError, match="I/O error"):
        queued.result(10)
    with pytest.raises(JournalFailedError):
        journal.append([rec(2)])


def test_an_append_that_cannot_be_stored_fails_alone_and_the_journal_goes_on(journal: Journal, tmp_path: Path) -> None:
    """msgpack stores no int beyond 64 bits (a webhook's ``lifetime`` of 10**29 ms reached an AdmissionAllowed):
    that made the commit a failed write, which stopped the journal, so every later command failed until a restart."""
    release, leader = commit_held(journal)
    good = journal.append([rec(1)])  # these three ride the same commit, behind the leader's first
    bad = journal.append([rec(2), NewRecord("admission:default/app/s", "Thing", 1, {"n": 10**29})])
    after = journal.append([rec(3)])
    release.set()
    leader.join(10)
    with pytest.raises(JournalRecordError, match="Integer value out of range"):
        bad.result(10)
    assert [r.seq for r in good.result(10)] == [2] and [r.seq for r in after.result(10)] == [3]
    alone = journal.append([NewRecord("x", "Thing", 1, {"n": 2**64})])  # alone on its commit: the same
    assert isinstance(alone.exception(10), JournalRecordError)
    assert [r.seq for r in journal.append([rec(4)]).result(10)] == [4]
    journal.close()
    reopened = Journal.open(tmp_path, fsync=False)
    try:
        assert [(r.seq, r.payload["n"]) for r in reopened.read(1)] == [(1, 0), (2, 1), (3, 3), (4, 4)]
    finally:
        reopened.close()
    assert verify(tmp_path).ok


def test_a_cancelled_append_is_still_written_and_later_appends_go_on(journal: Journal) -> None:
    release, leader = commit_held(journal)
    cancelled = journal.append([rec(1)])  # queued behind the leader's commit
    assert cancelled.cancel()  # as wrap_future does when the asyncio task awaiting it is cancelled
    release.set()
    leader.join(10)
    assert [r.seq for r in journal.append([rec(2)]).result(10)] == [3]
    assert [r.payload["n"] for r in journal.read(1)] == [0, 1, 2]


def test_a_thread_with_work_waiting_hands_its_commit_to_the_standby(journal: Journal) -> None:
    threads: list[str] = []
    journal.add_listener(lambda _records: threads.append(threading.current_thread().name))
    waiting = [True]

    def serve() -> None:  # a thread serving a queue, as an actor serves its mailbox
        defer_commits_while(lambda: waiting[0])
        journal.append([rec(1)]).result(5)  # more work waits: the standby commits it
        waiting[0] = False
        journal.append([rec(2)]).result(5)  # nothing waits: it commits itself

    server = threading.Thread(target=serve, name="serving")
    server.start()
    server.join(10)
    assert threads == ["kiln-journal", "serving"]


def test_the_threads_a_commit_woke_share_the_next_commit_together(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """16 threads blocked in result() on one commit each append again shortly after they are woken: the next
    commit waits for their appends and carries them in one fsync, instead of committing the first to return
    alone while the rest queue behind it."""
    import kiln.journal.journal as journal_module

    monkeypatch.setattr(journal_module, "GATHER_LIMIT", 10.0)
    monkeypatch.setattr(journal_module, "GATHER_GAP", 0.5)  # the pause below is not "they stopped coming"
    journal = Journal.open(tmp_path, fsync=True)
    batches: list[list[str]] = []
    release = threading.Event()

    def hold_first(records: list[Record]) -> None:
        batches.append([r.payload["n"] for r in records])
        if len(batches) == 1:
            assert release.wait(10)

    journal.add_listener(hold_first)
    leader = threading.Thread(target=lambda: journal.append([rec(-1)]).result(10), daemon=True)
    leader.start()
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:  # the leader is inside its commit, after the fsync
        time.sleep(0.001)
    futures = [journal.append([rec(n)]) for n in range(16)]  # queued: the next commit carries them
    waiting = threading.Barrier(17)

    def writer(index: int) -> None:
        waiting.wait(10)
        futures[index].result()  # blocked on the commit's wake-up
        time.sleep(0.02)  # some work before the next append: the commit thread could start without it
        journal.append([rec(100 + index)]).result()

    try:
        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(16)]
        for thread in threads:
            thread.start()
        waiting.wait(10)
        deadline = time.monotonic() + 10
        while journal._wake._waiters < 16 and time.monotonic() < deadline:  # noqa: SLF001 - all 16 blocked
            time.sleep(0.001)
        release.set()
        for thread in [leader, *threads]:
            thread.join(10)
            assert not thread.is_alive()
    finally:
        release.set()
        journal.close()
    assert batches[:2] == [[-1], list(range(16))]
    assert len(batches[2]) >= 14  # one commit, one fsync for 7/8 of them at least (the rest may come later)
    assert sorted(n for batch in batches[2:] for n in batch) == list(range(100, 116))
