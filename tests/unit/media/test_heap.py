"""The heap trimmer: one trim after a burst of streams ends, none without glibc."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

from kiln.media.heap import HeapTrimmer, keep_large_blocks_mapped


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
    assert _eventually(lambda: trimmer.trims == 1)
    assert calls == [0]
    trimmer.released()
    trimmer.close()  # a pending trim is cancelled on close
    assert trimmer.trims == 1


def test_the_real_trim_runs_here() -> None:
    """This machine has glibc: the trim really runs (and gives freed memory back)."""
    trimmer = HeapTrimmer(delay=0.0)
    big = [bytearray(64 * 1024) for _ in range(200)]
    del big
    trimmer.released()
    assert _eventually(lambda: trimmer.trims == 1)


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_no_full_collection_while_streams_are_live() -> None:
    done = threading.Event()
    live = [True]

    def trim(_pad: int) -> int:
        done.set()
        return 1

    trimmer = HeapTrimmer(delay=0.0, trim=trim, idle=lambda: not live[0])
    gc.disable()  # no automatic collection in between: only the trimmer's would count
    try:
        collections_before = gc.get_stats()[2]["collections"]
        trimmer.released()
        assert done.wait(10)
        assert gc.get_stats()[2]["collections"] == collections_before
        live[0] = False
        done.clear()
        trimmer.released()
        assert done.wait(10)
        assert gc.get_stats()[2]["collections"] > collections_before
    finally:
        gc.enable()


def test_large_blocks_are_kept_mapped_with_a_pinned_threshold() -> None:
    asked: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        asked.append((param, value))
        return 1

    assert keep_large_blocks_mapped(mallopt)
    assert asked == [(-3, 128 * 1024)]  # M_MMAP_THRESHOLD: a fixed value also stops glibc raising it
    assert keep_large_blocks_mapped() in (True, False)  # the real call (glibc or not) never raises
