"""How late the event loop runs a timer: a loop blocked by a slow handler shows up here first.

A task sleeps ``INTERVAL_S`` and measures how much later than asked it woke; the last and the largest
lag are kept for the exporter.
"""

from __future__ import annotations

import asyncio
import time

INTERVAL_S = 0.5


class LoopLag:
    def __init__(self) -> None:
        self.last_s = 0.0
        self.max_s = 0.0
        self.samples = 0

    async def run(self, interval_s: float = INTERVAL_S) -> None:
        """Sample until cancelled (started with the listeners, on the loop it watches)."""
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(interval_s)
            lag = max(0.0, time.perf_counter() - asked - interval_s)
            self.last_s = lag
            self.max_s = max(self.max_s, lag)
            self.samples += 1
