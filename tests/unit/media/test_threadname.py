"""Threads started after ``name_threads_as_they_start`` carry their Python name at the OS level."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.media.threadname import name_threads_as_they_start

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and pthread names are Linux")


@pytest.fixture
def hook() -> Iterator[None]:
    before = threading.getprofile()
    name_threads_as_they_start()
    try:
        yield
    finally:
        threading.setprofile(before)  # type: ignore[arg-type]


def _os_name_of(name: str, target_seen: list[str]) -> str:
    ready, leave = threading.Event(), threading.Event()

    def body() -> None:
        target_seen.append(threading.current_thread().name)
        ready.set()
        leave.wait(10)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        return Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()
    finally:
        leave.set()
        thread.join(10)


def test_a_thread_started_after_the_hook_has_its_python_name_cut_to_15_bytes(hook: None) -> None:
    seen: list[str] = []
    assert _os_name_of("webrtc-send:cam", seen) == "webrtc-send:cam"
    assert _os_name_of("transcode-default/app/cam-1", seen) == "transcode-defau"
    assert seen == ["webrtc-send:cam", "transcode-default/app/cam-1"]  # the target still ran, unprofiled


def test_the_hook_leaves_no_profiler_behind_in_the_thread(hook: None) -> None:
    left: list[object] = []

    def body() -> None:
        left.append(sys.getprofile())

    thread = threading.Thread(target=body, name="kiln-probe")
    thread.start()
    thread.join(10)
    assert left == [None]


def test_without_the_hook_a_thread_keeps_the_process_name() -> None:
    before = threading.getprofile()  # a test that ran ``kiln serve`` in this process may have left the hook set
    threading.setprofile(None)  # type: ignore[arg-type]
    try:
        seen: list[str] = []
        assert _os_name_of("kiln-unnamed", seen) != "kiln-unnamed"
    finally:
        threading.setprofile(before)  # type: ignore[arg-type]
