"""The one worker lifecycle pulls, pushes and recordings share: a stop ends a backoff wait at once,
a join from the worker's own thread does not deadlock, a crash is logged and reported once."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from kiln.media.worker import WorkerThread


def test_stop_ends_a_wait_at_once_and_join_sees_the_thread_end() -> None:
    waited: list[bool] = []
    worker: WorkerThread

    def body() -> None:
        waited.append(worker.wait(30))

    worker = WorkerThread("test-worker", body)
    worker.start()
    assert worker.alive and not worker.stopping
    assert [t.daemon for t in threading.enumerate() if t.name == "test-worker"] == [True]
    began = time.monotonic()
    worker.stop()
    assert worker.join(5) is True
    assert time.monotonic() - began < 2 and waited == [True] and not worker.alive


def test_join_from_the_worker_itself_returns_instead_of_deadlocking() -> None:
    joined: list[bool] = []
    worker: WorkerThread

    def body() -> None:
        joined.append(worker.join(0.1))  # e.g. a hook that stops its own session

    worker = WorkerThread("test-self-join", body)
    worker.start()
    assert worker.join(5) and joined == [False]


def test_a_crash_is_logged_with_its_traceback_and_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    reported: list[Exception] = []

    def body() -> None:
        raise ValueError("a bug")

    worker = WorkerThread("test-crash", body, reported.append)
    with caplog.at_level(logging.ERROR, logger="kiln.media.worker"):
        worker.start()
        assert worker.join(5)
    assert [str(e) for e in reported] == ["a bug"]
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["worker crashed name=test-crash"]


def test_a_failing_crash_report_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    def body() -> None:
        raise ValueError("a bug")

    def report(exc: Exception) -> None:
        raise RuntimeError("the owner is gone")

    worker = WorkerThread("test-crash-report", body, report)
    with caplog.at_level(logging.ERROR, logger="kiln.media.worker"):
        worker.start()
        assert worker.join(5)
    assert [r.getMessage() for r in caplog.records] == ["worker crashed name=test-crash-report",
                                                         "worker crash report failed name=test-crash-report"]
