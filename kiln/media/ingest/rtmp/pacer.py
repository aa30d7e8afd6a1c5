"""Publishers' sockets read together on one timer tick, not each whenever bytes arrive.

A live RTMP publisher sends a message about every 13 ms (30 fps video plus audio), often header
and body in separate writes, so reading on readiness wakes the event loop about 60 times a second
per stream (1,260 wake-ups/s for 20 streams). Measured on this 2-core machine (issue 16), most of
a wake-up's cost is not the work but the cold CPU cache it starts from: the same messages cost
8 us each replayed back to back and 38 us when 4 MB (the L2) was touched between reads, about
what they cost live (bench/rtmp_parse.py ``--cold``). So once a publish has started, its socket
gets a high receive low-water mark (SO_RCVLOWAT: the kernel does not report it readable for a
few bytes, but still at once for EOF, an error or a burst past the mark), and the pacer reads
every publishing socket on one tick: one wake-up for all of them, on a warm cache, for at most
``interval`` of added latency while the bytes wait in the kernel's buffer. The handshake and
commands before the publish are read on readiness as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

READ_TICK_S = 0.020  # < 1 frame at 30 fps, 4 % of an LL-HLS part (0.5 s); 20 streams: 70 wake-ups/s (10 ms: 118)


class ReadPacer:
    """Calls each registered ``poll`` every ``interval`` seconds on the loop thread (one timer for all)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = READ_TICK_S) -> None:
        self._loop = loop
        self.interval = interval
        self._polls: dict[int, Callable[[], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.ticks = 0  # wake-ups (tests, benches)

    def add(self, key: int, poll: Callable[[], None]) -> None:
        self._polls[key] = poll
        if self._timer is None:
            self._timer = self._loop.call_later(self.interval, self._tick)

    def remove(self, key: int) -> None:
        self._polls.pop(key, None)

    def __len__(self) -> int:
        return len(self._polls)

    def _tick(self) -> None:
        self.ticks += 1
        polls = self._polls
        self._timer = self._loop.call_later(self.interval, self._tick) if polls else None
        for poll in list(polls.values()):
            poll()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._polls.clear()
