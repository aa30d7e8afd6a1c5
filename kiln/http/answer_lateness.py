"""How late a player port hands its part-tied answers to the kernel: Kiln's own side of a viewer's lateness.

Why: bench/llhls.py measures lateness at the client (part downloaded minus the write of its last frame), which
also holds the client's own CPU time, the kernel's delivery and, on a shared machine, whatever the other jobs
take; alone it cannot say whether Kiln, the load generator or the kernel is late. Here every answer tied to a
part (a blocked reload woken by its track's new part, a GET of its track's newest part) is timed from the moment
the part became available (LlhlsStream) to the moment its last byte was handed to the kernel: at the write
when the socket took it all, else when the transport's write buffer drained (looked at every DRAIN_CHECK_S).
Quantiles are logged per WINDOW_S (``llhls answer lateness window``), so a reader compares them with the
client's over the same seconds. Cost: a clock read and a bucket count per answer (~1 µs of ~50).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kiln.metrics.histogram import Histogram

log = logging.getLogger(__name__)

WINDOW_S = 5.0
DRAIN_CHECK_S = 0.002
# ms: 5 ms steps up to the 100 ms target and beyond, so a p99 near it is read to within a step
BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 110, 120, 130, 140,
    150, 175, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000)


class AnswerLateness:
    """One listener's windows of part-tied answer lateness (reloads and part GETs apart)."""

    def __init__(self, listener: str) -> None:
        self.listener = listener
        self.reloads = Histogram(BOUNDS_MS)
        self.parts = Histogram(BOUNDS_MS)
        self.buffered = 0  # answers the socket did not take at once (their time is taken when they drain)
        self._draining: list[tuple[Any, float, bool]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._start = time.monotonic()

    def sent(self, loop: asyncio.AbstractEventLoop, transport: Any, ready: float, reload: bool) -> None:
        """An answer tied to a part that became available at ``ready`` (time.monotonic) was just written."""
        now = time.monotonic()
        if transport.get_write_buffer_size():
            self.buffered += 1
            self._draining.append((transport, ready, reload))
            if self._timer is None:
                self._timer = loop.call_later(DRAIN_CHECK_S, self._check, loop)
        else:
            (self.reloads if reload else self.parts).observe((now - ready) * 1000)
        if now - self._start >= WINDOW_S:
            self._log(now)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = time.monotonic()
        left = []
        for entry in self._draining:
            transport, ready, reload = entry
            if transport.is_closing():
                continue  # gone before its answer left: not an answer the client had
            if transport.get_write_buffer_size():
                left.append(entry)
            else:
                (self.reloads if reload else self.parts).observe((now - ready) * 1000)
        self._draining = left
        if left:
            self._timer = loop.call_later(DRAIN_CHECK_S, self._check, loop)

    def _log(self, now: float) -> None:
        reloads, parts = self.reloads, self.parts
        log.info("llhls answer lateness window listener=%s seconds=%.1f reloads=%d reload_ms_p50=%.1f "
                 "reload_ms_p99=%.1f parts=%d part_ms_p50=%.1f part_ms_p99=%.1f part_ms_max=%.1f buffered=%d",
                 self.listener, now - self._start, reloads.count, reloads.quantile(0.5), reloads.quantile(0.99),
                 parts.count, parts.quantile(0.5), parts.quantile(0.99), parts.peak, self.buffered)
        self.reloads = Histogram(BOUNDS_MS)
        self.parts = Histogram(BOUNDS_MS)
        self.buffered = 0
        self._start = now
