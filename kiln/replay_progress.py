"""Progress lines while startup replays a long journal tail, so a slow start never looks like a hang.

Nothing is logged for a replay that finishes within the first interval (the usual case: the
``kiln recovered`` line says it all); after that, one line per interval with how far it got, the
rate and an estimate of what is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("kiln.replay")

T = TypeVar("T")
INTERVAL = 2.0


def with_progress(records: Iterable[T], first_seq: int, last_seq: int, *, seq_of: Callable[[T], int],
                  interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> Iterator[T]:
    """``records`` unchanged, logging ``journal replay progress`` every ``interval`` seconds."""
    total = max(0, last_seq - first_seq + 1)
    started = clock()
    next_report = started + interval
    done = 0
    for record in records:
        yield record
        done += 1
        if done & 0x3FF == 0 or done == total:  # look at the clock every 1024 records
            now = clock()
            if now >= next_report:
                next_report = now + interval
                _report(done, total, seq_of(record), last_seq, now - started)
    if clock() - started >= interval:
        log.info("journal replay done records=%d seconds=%.1f", done, clock() - started)


def _report(done: int, total: int, seq: int, last_seq: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    left = max(0, total - done)
    eta = f"{left / rate:.0f}s" if rate > 0 else "unknown"
    percent = 100.0 * done / total if total else 100.0
    log.info("journal replay progress records=%d/%d percent=%.1f seq=%d/%d rate=%.0f/s eta=%s", done, total,
             percent, seq, last_seq, rate, eta)


def lists_with_progress(lists: Iterable[list[T]], first_seq: int, last_seq: int, *, seq_of: Callable[[T], int],
                        interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> Iterator[list[T]]:
    """``with_progress`` for records in lists (``Journal.read_stored_lists``): the clock is read once per list."""
    total = max(0, last_seq - first_seq + 1)
    started = clock()
    next_report = started + interval
    done = 0
    for records in lists:
        yield records
        done += len(records)
        now = clock()
        if now >= next_report and records:
            next_report = now + interval
            _report(done, total, seq_of(records[-1]), last_seq, now - started)
    if clock() - started >= interval:
        log.info("journal replay done records=%d seconds=%.1f", done, clock() - started)
