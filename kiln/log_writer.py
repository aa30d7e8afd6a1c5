"""Log lines written by a thread of their own, so a stderr that blocks never stops the server.

A full pipe (``kiln serve 2>&1 | less`` left paused, a container runtime logging in blocking mode, a log
shipper that fell behind) blocks ``write``. Written from the event loop or an actor, that stopped the whole
API (measured: with stderr a pipe nobody read, the 549th start/stop push pair never got an answer). Records
are now rendered to text where they are logged (their arguments may change later) and queued for a writer
thread, bounded: while the writer is stuck, records beyond ``QUEUE_MAX`` are dropped and counted, and the
writer logs how many once it can write again. ``logging.shutdown`` (at exit) flushes what is queued, waiting at
most ``FLUSH_TIMEOUT_S`` for a stderr that does not drain. The writer writes to the file descriptor itself: a
thread stuck in a write then holds no lock that the exit needs (a ``StreamHandler``'s lock or ``sys.stderr``'s
buffer), so a server whose stderr never drains still stops.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import time

QUEUE_MAX = 10_000
FLUSH_TIMEOUT_S = 2.0


class QueuedLogWriter(logging.Handler):
    """Writes every record, formatted, to the file descriptor ``fd`` on the ``kiln-log-writer`` thread."""

    def __init__(self, fd: int, formatter: logging.Formatter, max_records: int = QUEUE_MAX) -> None:
        super().__init__()
        self.fd = fd
        self.setFormatter(formatter)
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(max_records)
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        # a daemon: a stderr blocked for good must not keep the process from exiting
        self._thread = threading.Thread(target=self._run, name="kiln-log-writer", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Records dropped so far and not yet reported."""
        with self._dropped_lock:
            return self._dropped

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue.put_nowait(self._rendered(record))
        except queue.Full:
            with self._dropped_lock:
                self._dropped += 1
        except Exception:
            self.handleError(record)

    def _rendered(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy with the message and any traceback as text: other handlers see the record unchanged, and
        what is written later is what was true when it was logged."""
        out = copy.copy(record)
        out.msg, out.args = record.getMessage(), None
        if record.exc_info:
            if not record.exc_text:
                out.exc_text = self.format_exception(record)
            out.exc_info = None
        return out

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    return
                self._write(record)
                if self._queue.empty():
                    self._report_dropped()
            finally:
                self._queue.task_done()

    def _report_dropped(self) -> None:
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            self._write(logging.makeLogRecord({
                "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": f"log lines dropped count={dropped}: the log output was not being read "
                       f"(more than {self._queue.maxsize} lines waiting)"}))

    def format_exception(self, record: logging.LogRecord) -> str:
        assert record.exc_info
        return (self.formatter or logging.Formatter()).formatException(record.exc_info)

    def _write(self, record: logging.LogRecord) -> None:
        try:
            data = memoryview((self.format(record) + "\n").encode("utf-8", "backslashreplace"))
            while data:
                data = data[os.write(self.fd, data):]
        except Exception:
            self.handleError(record)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until what was queued is written (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return
                done.wait(left)

    def close(self) -> None:
        """Flush, then stop the writer (it stays, a daemon, if stderr never drains)."""
        if self._thread.is_alive():
            self.flush()
            try:
                self._queue.put(None, timeout=0.1)
            except queue.Full:
                pass
            self._thread.join(0.5)
        super().close()
