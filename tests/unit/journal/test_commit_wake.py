"""Threads blocked in ``result()`` (no timeout) wait on their commit's eventfd (kiln/journal/wake.py): every
one of them is woken by the commit that carries its append, with its records or the commit's error, and a
wait that starts after the commit returns at once."""

from __future__ import annotations

import errno
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kiln.journal import Journal, JournalFailedError, NewRecord, Record
from kiln.journal.wake import CommitWake


def rec(n: int) -> NewRecord:
    return NewRecord("app:default/app", "Thing", 1, {"n": n})


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal.open(tmp_path, fsync=True)
    yield j
    j.close()


def _hold_first_commit(journal: Journal) -> tuple[threading.Event, list[list[int]]]:
    """A listener that holds the first commit (after its fsync) until the event is set."""
    release, batches = threading.Event(), []

    def listener(records: list[Record]) -> None:
        batches.append([r.seq for r in records])
        if len(batches) == 1:
            assert release.wait(10)

    journal.add_listener(listener)
    return release, batches


def _blocked_waiters(futures: list[Future[list[Record]]], out: dict[int, Any]) -> list[threading.Thread]:
    def wait(index: int, future: Future[list[Record]]) -> None:
        try:
            out[index] = [r.seq for r in future.result()]  # no timeout: the eventfd wait
        except BaseException as exc:  # noqa: BLE001 - what the waiter saw is the point
            out[index] = exc

    threads = [threading.Thread(target=wait, args=(i, f), daemon=True) for i, f in enumerate(futures)]
    for thread in threads:
        thread.start()
    return threads


def test_every_thread_waiting_on_a_commit_is_woken_with_its_records(journal: Journal) -> None:
    release, batches = _hold_first_commit(journal)
    leader = threading.Thread(target=lambda: journal.append([rec(0)]).result())
    leader.start()
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:
        time.sleep(0.001)
    futures = [journal.append([rec(n)]) for n in range(1, 9)]
    seen: dict[int, Any] = {}
    waiters = _blocked_waiters(futures + futures[:2], seen)  # two threads wait on the same futures too
    time.sleep(0.05)
    assert seen == {} and not any(f.done() for f in futures)
    release.set()
    for thread in [leader, *waiters]:
        thread.join(10)
        assert not thread.is_alive()
    assert batches == [[1], list(range(2, 10))]
    assert seen == {**{i: [i + 2] for i in range(8)}, 8: [2], 9: [3]}
    assert journal.append([rec(9)]).result() == list(journal.read(10))  # a wait after the commit: at once


def test_a_failed_commit_wakes_its_waiters_with_the_error(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    release, batches = _hold_first_commit(journal)
    leader = threading.Thread(target=lambda: journal.append([rec(0)]))
    leader.start()
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:
        time.sleep(0.001)
    futures = [journal.append([rec(n)]) for n in range(1, 4)]
    seen: dict[int, Any] = {}
    waiters = _blocked_waiters(futures, seen)

    def broken(_data: bytes) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(journal, "_write", broken)
    release.set()
    for thread in [leader, *waiters]:
        thread.join(10)
        assert not thread.is_alive()
    assert [type(seen[i]) for i in range(3)] == [JournalFailedError] * 3
    assert all("I/O error" in str(seen[i]) for i in range(3))


def test_a_commit_wake_releases_every_waiter_before_and_after_it() -> None:
    wake = CommitWake()
    woken: list[int] = []
    early = [threading.Thread(target=lambda i=i: (wake.wait(), woken.append(i)), daemon=True) for i in range(5)]
    for thread in early:
        thread.start()
    time.sleep(0.05)
    assert woken == []
    wake.wake()
    for thread in early:
        thread.join(10)
        assert not thread.is_alive()
    wake.wait()  # after the wake: returns at once
    assert sorted(woken) == list(range(5))


def test_the_eventfd_lives_only_while_threads_wait(journal: Journal) -> None:
    """Futures may be kept for long: what they wait on must not hold a file descriptor after the wake."""
    before = len(os.listdir("/proc/self/fd"))
    release, batches = _hold_first_commit(journal)
    leader = threading.Thread(target=lambda: journal.append([rec(0)]).result())
    leader.start()
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:
        time.sleep(0.001)
    kept = [journal.append([rec(n)]) for n in range(1, 5)]
    seen: dict[int, Any] = {}
    waiters = _blocked_waiters(kept, seen)
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) <= before and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(os.listdir("/proc/self/fd")) == before + 1  # one eventfd for the whole commit
    release.set()
    for thread in [leader, *waiters]:
        thread.join(10)
    assert len(seen) == 4 and len(os.listdir("/proc/self/fd")) == before and all(f.done() for f in kept)


def test_a_settled_future_behaves_as_a_future_for_every_kind_of_waiter() -> None:
    """``settle`` takes no lock when nobody made the future's Condition; whoever waits or adds a callback
    before, during or after it still sees the result exactly once."""
    import asyncio
    from concurrent.futures import wait

    from kiln.journal.wake import DurableFuture

    early: DurableFuture[int] = DurableFuture()
    called: list[int] = []
    early.add_done_callback(lambda f: called.append(f.result()))
    waited: list[int] = []
    waiter = threading.Thread(target=lambda: waited.append(early.result(10)))
    waiter.start()
    early.settle(7)
    waiter.join(10)
    assert called == [7] and waited == [7] and early.done() and not early.cancelled()
    late: DurableFuture[int] = DurableFuture()
    late.settle(8)
    assert "_condition" not in late.__dict__  # nobody waited: no Condition was made
    late.add_done_callback(lambda f: called.append(f.result()))
    assert called == [7, 8] and late.result(0) == 8 and late.exception(0) is None
    assert wait([late], timeout=1).done == {late}

    async def awaited() -> int:
        pending: DurableFuture[int] = DurableFuture()
        asyncio.get_running_loop().call_later(0.01, pending.settle, 9)
        return await asyncio.wrap_future(pending)

    assert asyncio.run(awaited()) == 9
    failed: DurableFuture[int] = DurableFuture()
    failed.fail(OSError(errno.EIO, "I/O error"))
    with pytest.raises(OSError, match="I/O error"):
        failed.result()


def test_a_callback_added_while_settle_runs_is_called_once() -> None:
    """The moment ``settle`` cannot lock against: a callback added after it found no Condition and before it
    wrote the state (here from inside that write, as a thread switch there would)."""
    from concurrent.futures._base import FINISHED

    from kiln.journal.wake import DurableFuture

    calls: list[int] = []
    added: list[bool] = []

    class Interleaved(DurableFuture[int]):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "_state" and value == FINISHED and not added:
                added.append(True)
                self.add_done_callback(lambda f: calls.append(f.result(0)))  # reads the state: still pending
            super().__setattr__(name, value)

    future = Interleaved()
    future.settle(5)
    assert calls == [5] and future.result(0) == 5


def test_cancel_and_settle_decide_once_whichever_comes_first() -> None:
    from concurrent.futures import CancelledError

    from kiln.journal.wake import DurableFuture

    cancelled: DurableFuture[int] = DurableFuture()
    called: list[bool] = []
    cancelled.add_done_callback(lambda f: called.append(f.cancelled()))
    assert cancelled.cancel()
    cancelled.settle(1)  # the commit carried it anyway: its waiter is gone, nothing changes
    assert called == [True]
    with pytest.raises(CancelledError):
        cancelled.result(0)
    settled: DurableFuture[int] = DurableFuture()
    settled.settle(2)
    assert not settled.cancel() and settled.result(0) == 2


def test_callbacks_need_no_condition_and_each_runs_once_when_added_as_the_commit_settles() -> None:
    """Kiln adds a callback to every append's future (``_LoopReply``): it takes no Condition, and a callback
    added from another thread while the committing thread settles runs exactly once, on either thread."""
    from kiln.journal.wake import DurableFuture

    for _ in range(200):
        futures: list[DurableFuture[int]] = [DurableFuture() for _ in range(50)]
        calls: list[tuple[int, int]] = []
        go = threading.Barrier(2)

        def add(futures: list[DurableFuture[int]] = futures, calls: list[tuple[int, int]] = calls,
                go: threading.Barrier = go) -> None:
            go.wait()
            for index, future in enumerate(futures):
                future.add_done_callback(lambda f, index=index: calls.append((index, f.result(0))))
                future.add_done_callback(lambda f, index=index: calls.append((index, -1 if f.exception(0) is None
                                                                              else -2)))

        adder = threading.Thread(target=add)
        adder.start()
        go.wait()
        for index, future in enumerate(futures):
            future.settle(index)
        adder.join(10)
        assert sorted(calls) == sorted([(i, i) for i in range(50)] + [(i, -1) for i in range(50)])
        assert not any("_condition" in future.__dict__ for future in futures)
