"""The log writer thread: logging never waits for a stderr that does not drain; what is queued is written
in order, what did not fit is counted in one line, and the text is what was true when it was logged."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import pytest

from kiln.log_writer import QueuedLogWriter

FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(f"kiln.test.{name}")
    log.handlers, log.propagate = [handler], False
    log.setLevel(logging.INFO)
    return log


def read_all(fd: int, until: bytes, timeout_s: float = 10) -> str:
    """Read ``fd`` (without blocking forever) until ``until`` has been read."""
    os.set_blocking(fd, False)
    got, deadline = b"", time.monotonic() + timeout_s
    while until not in got and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        got += chunk
    return got.decode()


def wait_until(predicate: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.001)
    assert predicate(), "condition not reached"  # type: ignore[operator]


def test_logging_returns_while_the_output_is_not_read(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = QueuedLogWriter(w, FORMAT, max_records=100)
    log = logger_with(writer, "blocked")
    line = "x" * 1000
    caller = threading.Thread(target=lambda: [log.info("line %d %s", i, line) for i in range(2_000)])
    caller.start()
    caller.join(10)  # 2 MB into a 64 KiB pipe nobody reads: a direct write would block here for good
    assert not caller.is_alive()
    assert writer.dropped > 0
    text = read_all(r, b"log lines dropped")
    lines = text.splitlines()
    assert lines[0] == f"INFO kiln.test.blocked line 0 {line}"
    numbers = [int(x.split()[3]) for x in lines if x.startswith("INFO")]
    assert numbers == sorted(numbers) and len(numbers) < 2_000
    writer.close()


def test_what_did_not_fit_is_counted_in_one_line_once_the_output_drains(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = QueuedLogWriter(w, FORMAT, max_records=10)
    log = logger_with(writer, "counted")
    big = "y" * 200_000  # larger than the pipe: the writer blocks in its first write
    log.info("first %s", big)
    wait_until(lambda: writer._queue.unfinished_tasks == 1 and writer._queue.empty())  # taken, being written
    for i in range(100):
        log.warning("w%d", i)
    assert writer.dropped == 90
    text = read_all(r, b"log lines dropped")
    assert [x for x in text.splitlines() if x.startswith("WARNING kiln.test")] == [
        f"WARNING kiln.test.counted w{i}" for i in range(10)]
    assert ("WARNING kiln.log_writer log lines dropped count=90: the log output was not being read "
            "(more than 10 lines waiting)") in text
    assert writer.dropped == 0
    writer.close()


def test_the_text_is_what_was_true_when_logged_and_other_handlers_see_the_record(
        pipe: tuple[int, int], caplog: pytest.LogCaptureFixture) -> None:
    r, w = pipe
    writer = QueuedLogWriter(w, FORMAT)
    log = logger_with(writer, "render")
    log.addHandler(caplog.handler)
    state = ["before"]
    try:
        raise ValueError("bad input")
    except ValueError:
        log.exception("state=%s", state)
    state[0] = "after"
    writer.flush()
    text = read_all(r, b"bad input")
    assert text.startswith("ERROR kiln.test.render state=['before']\nTraceback (most recent call last):")
    assert text.rstrip().endswith("ValueError: bad input")
    [record] = caplog.records
    assert record.exc_info is not None and record.args == (state,)
    writer.close()


def test_close_writes_everything_queued_first(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = QueuedLogWriter(w, FORMAT)
    log = logger_with(writer, "close")
    reader_text: list[str] = []
    reader = threading.Thread(target=lambda: reader_text.append(read_all(r, b"last")))
    reader.start()
    for i in range(500):
        log.info("n%d", i)
    log.info("last")
    writer.close()
    reader.join(10)
    assert [x.split()[-1] for x in reader_text[0].splitlines()] == [*(f"n{i}" for i in range(500)), "last"]
    assert not writer._thread.is_alive()


def test_close_returns_though_the_output_never_drains(pipe: tuple[int, int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    r, w = pipe
    writer = QueuedLogWriter(w, FORMAT, max_records=10)
    log = logger_with(writer, "stuck")
    log.info("%s", "z" * 200_000)
    for i in range(5):
        log.info("q%d", i)
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5
    assert writer._thread.is_alive()  # still in its write
    monkeypatch.setattr(logging, "raiseExceptions", False)  # the writes below fail (EPIPE): quietly
    os.close(r)  # the reader goes away: the write fails, the rest fail, the writer reaches its stop
    writer._thread.join(5)
    assert not writer._thread.is_alive()
