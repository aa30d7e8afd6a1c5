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

from kiln.journal import Journal, NewRecord, Record
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
    assert [type(seen[i]) for i in range(3)] == [OSError] * 3


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
