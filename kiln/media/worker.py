"""The one lifecycle of a media worker thread: start, ask to stop, join with a timeout, report a crash.

Pulls, pushes and recordings each run one blocking loop (a demuxer, a socket, a file) on a daemon
thread of their own. The loop handles the failures it expects (a source that ends, a destination
that refuses, a full disk) and returns; anything else is a bug, logged here with its traceback and
handed to ``on_crash`` once, so the owner can tell its actor instead of dying silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiln.control_cpu import free_thread

log = logging.getLogger(__name__)


class WorkerThread:
    def __init__(self, name: str, body: Callable[[], None],
                 on_crash: Callable[[Exception], None] | None = None) -> None:
        self.name = name
        self._body = body
        self._on_crash = on_crash
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end; it sees :attr:`stopping` (or wakes from :meth:`wait`) and returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (a retry backoff), ending early when a stop is asked; True if it was."""
        return self._stop.wait(seconds)

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (never from the thread itself, which would deadlock); True once ended."""
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def on_worker_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        free_thread()  # an actor may have started it: not on the actors' CPU (kiln/control_cpu.py)
        try:
            self._body()
        except Exception as exc:  # a bug must not end the thread silently
            log.exception("worker crashed name=%s", self.name)
            if self._on_crash is not None:
                try:
                    self._on_crash(exc)
                except Exception:
                    log.exception("worker crash report failed name=%s", self.name)
