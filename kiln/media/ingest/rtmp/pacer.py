"""Publishers' sockets read together on one timer tick, not each whenever bytes arrive: once there are many.

A live RTMP publisher sends a message about every 13 ms (30 fps video plus audio), often header
and body in separate writes, so reading on readiness wakes the event loop about 60 times a second
per stream (1,260 wake-ups/s for 20 streams). Measured on this 2-core machine (issue 16), most of
a wake-up's cost is not the work but the cold CPU cache it starts from: the same messages cost
8 us each replayed back to back and 38 us when 4 MB (the L2) was touched between reads, about
what they cost live (bench/rtmp_parse.py ``--cold``). So once enough publishers are live (see
:data:`PACE_AT`), every publishing socket gets a high receive low-water mark (SO_RCVLOWAT: the
kernel does not report it readable for a few bytes, but still at once for EOF, an error or a burst
past the mark), and the pacer reads them all on one tick: one wake-up for all of them, on a warm
cache, for at most ``interval`` of added latency while the bytes wait in the kernel's buffer.
With fewer publishers the sockets are read on arrival: the CPU a tick saves there is small and
the latency it adds is what a WebRTC viewer notices. The handshake and commands before the
publish are always read on readiness.

A switch never loses or reorders bytes: the transport and the tick read the same kernel buffer, on
the loop thread, each handing what it read to ``data_received`` before returning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

READ_TICK_S = 0.050
"""1.5 frames at 30 fps, a tenth of an LL-HLS part (0.5 s). Longer ticks read more messages per socket per
wake-up (each read starts on a cold cache, and costs a syscall and an ACK): ``bench/ingest.py --only kiln-bare``,
20 streams, compiled, CPU-s per stream-minute by tick (temporarily patched, interleaved runs, load 5-14): 20 ms
0.122-0.130, 40 ms 0.094-0.108, 50 ms 0.088, 60 ms 0.082-0.084, 100 ms 0.072-0.078. The latency it adds, from
a publisher's write to the packet in Kiln (``bench/rtmp_parse.py --latency --tick``, 20 Nagle publishers): 20 ms
p50 11 / p99 42 ms, 40 ms 22 / 74, 50 ms 30 / 59. 50 ms keeps Kiln's ingest within 2x of nginx-rtmp (issue 16)
when nginx measures low (0.045); the latency stays small next to LL-HLS's parts, and a WebRTC viewer of an RTMP
publisher sees it only from :data:`PACE_AT` publishers on."""

PACE_AT = 8
"""Publishers from which every publishing socket is read on the tick. The tick's cost, its added ingest latency
(:data:`READ_TICK_S`), is the same for every publisher at any count; its saving grows with the count
(measured with the 20 ms tick): ``bench/ingest.py --only kiln-bare --seconds 15``, read on arrival vs paced,
pure Python, in % of one core: 1 stream 1.2 / 1.3 (mostly Kiln idle), 4 streams 2.0-2.1 / 1.7-2.0, 8 streams
2.9-3.2 / 2.1-2.7, 20 streams 6.0 / 4.7. Below 8 it saves at most a few tenths of a percent of a core; 8 keeps
20 streams (issue 16's ingest bench) paced with room for the hysteresis below."""

UNPACE_BELOW = 6
"""Pacing stops when fewer than this many publish: two below :data:`PACE_AT`, so one publisher coming and
going at the threshold does not move every socket on and off the tick each time."""


class ReadPacer:
    """Knows every publishing connection; from ``pace_at`` of them until fewer than ``unpace_below`` remain,
    tells each to pace (``pace(True)``) and calls its ``poll`` every ``interval`` seconds on the loop thread
    (one timer for all)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = READ_TICK_S, *,
                 pace_at: int = PACE_AT, unpace_below: int = UNPACE_BELOW) -> None:
        if not 0 < unpace_below <= pace_at:
            raise ValueError(f"need 0 < unpace_below ({unpace_below}) <= pace_at ({pace_at})")
        self._loop = loop
        self.interval = interval
        self.pace_at = pace_at
        self.unpace_below = unpace_below
        self._members: dict[int, tuple[Callable[[], None], Callable[[bool], None]]] = {}
        self._polls: list[Callable[[], None]] = []  # while pacing: every member's poll, in joining order
        self.pacing = False
        self._timer: asyncio.TimerHandle | None = None
        self.ticks = 0  # wake-ups (tests, benches)
        self.switches = 0  # times pacing started or stopped (tests, logs)

    def add(self, key: int, poll: Callable[[], None], pace: Callable[[bool], None]) -> None:
        """A publish started: ``pace(on)`` moves its socket onto or off the tick, ``poll`` reads it."""
        self._members[key] = (poll, pace)
        if self.pacing:
            pace(True)
            self._polls.append(poll)
        elif len(self._members) >= self.pace_at:
            self._switch(True)

    def remove(self, key: int) -> None:
        """A publish ended (its socket is no longer read on the tick)."""
        member = self._members.pop(key, None)
        if member is None or not self.pacing:
            return
        self._polls.remove(member[0])
        if len(self._members) < self.unpace_below:
            self._switch(False)

    def __len__(self) -> int:
        """Connections read on the tick now."""
        return len(self._polls)

    @property
    def publishers(self) -> int:
        return len(self._members)

    def _switch(self, on: bool) -> None:
        self.pacing = on
        self.switches += 1
        members = list(self._members.values())
        self._polls = [poll for poll, _ in members] if on else []
        if on and self._timer is None:
            self._timer = self._loop.call_later(self.interval, self._tick)
        elif not on and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, pace in members:
            pace(on)
        log.info("rtmp read pacing %s publishers=%d tick_ms=%.0f", "on" if on else "off", len(members),
                 self.interval * 1000)

    def _tick(self) -> None:
        self.ticks += 1
        polls = self._polls
        self._timer = self._loop.call_later(self.interval, self._tick) if polls else None
        for poll in list(polls):
            poll()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._members.clear()
        self._polls = []
        self.pacing = False
