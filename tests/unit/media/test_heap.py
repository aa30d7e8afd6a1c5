"""The heap trimmer: one trim after a burst of streams ends, none without glibc."""

from __future__ import annotations

import threading

from kiln.media.heap import HeapTrimmer


def test_a_burst_of_releases_costs_one_trim_after_the_quiet_delay() -> None:
    calls: list[int] = []
    done = threading.Event()

    def trim(pad: int) -> int:
        calls.append(pad)
        done.set()
        return 1

    trimmer = HeapTrimmer(delay=0.2, trim=trim)
    for _ in range(20):
        trimmer.released()
    assert done.wait(10)
    assert calls == [0] and trimmer.trims == 1
    trimmer.released()
    trimmer.close()  # a pending trim is cancelled on close
    assert trimmer.trims == 1


def test_the_real_trim_runs_here() -> None:
    """This machine has glibc: the trim really runs (and gives freed memory back)."""
    trimmer = HeapTrimmer(delay=0.0)
    big = [bytearray(64 * 1024) for _ in range(200)]
    del big
    trimmer.released()
    for _ in range(1000):
        if trimmer.trims:
            break
        threading.Event().wait(0.01)
    assert trimmer.trims == 1
