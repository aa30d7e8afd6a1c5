"""The channel files watcher: which looks report a file changed or gone, and the thread that looks."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.actors.channel_files import ChannelFileKind
from kiln.actors.file_watch import GONE_AFTER_LOOKS, DirectoryState, FilesDirWatcher, Seen, look
from kiln.actors.schedules import SCHEDULE_FILES
from kiln.domain.errors import Invalid
from kiln.events.schedules import Schedule

SCH = b"""<?xml version="1.0"?>
<Schedule><Stream><Name>x</Name></Stream><FallbackProgram><Item url="file://%s.mp4"/></FallbackProgram></Schedule>
"""


def test_a_new_or_changed_file_is_reported_once_and_a_gone_one_after_three_looks() -> None:
    state = DirectoryState()
    a, a2, b = Seen(1, 10, 7), Seen(2, 10, 7), Seen(1, 5, 8)
    assert state.update({"a": a, "b": b}) == (["a", "b"], [])  # the first look reports every file
    assert state.update({"a": a, "b": b}) == ([], [])
    assert state.update({"a": a2, "b": b}) == (["a"], [])      # mtime changed
    for _ in range(GONE_AFTER_LOOKS - 1):
        assert state.update({"b": b}) == ([], [])
    assert state.update({"b": b}) == ([], ["a"])
    assert state.update({"b": b}) == ([], [])                  # reported once


def test_a_file_saved_by_deleting_and_writing_anew_is_a_change_not_a_deletion() -> None:
    state = DirectoryState()
    state.update({"a": Seen(1, 10, 7)})
    assert state.update({}) == ([], [])                        # vi's ":wq": deleted ...
    assert state.update({"a": Seen(3, 12, 9)}) == (["a"], [])  # ... and written anew (another inode)
    for _ in range(GONE_AFTER_LOOKS - 1):
        assert state.update({"a": Seen(3, 12, 9)}) == ([], [])  # the count of looks without it started over


def test_look_lists_regular_sch_files_by_stem(tmp_path: Path) -> None:
    (tmp_path / "a.sch").write_bytes(b"")
    (tmp_path / ".hidden.sch").write_bytes(b"")
    (tmp_path / "a.sch.123.4.tmp").write_bytes(b"")  # Kiln's own temporary name while it writes
    (tmp_path / "notes.txt").write_bytes(b"")
    (tmp_path / "dir.sch").mkdir()
    (tmp_path / "dangling.sch").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe.sch")
    found = look(tmp_path, "sch")
    assert found is not None and list(found) == ["a"]
    assert found["a"].inode == (tmp_path / "a.sch").stat().st_ino
    assert look(tmp_path / "absent", "sch") == {}
    assert look(tmp_path / "a.sch", "sch") is None  # not a directory: unlisted, which says nothing about what is gone


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_watcher_thread_reports_files_written_changed_refused_and_deleted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    changed: list[Schedule] = []
    gone: list[str] = []
    lock = threading.Lock()

    def on_changed(schedule: Schedule, looked: float) -> None:
        with lock:
            changed.append(schedule)

    def on_gone(name: str, looked: float) -> None:
        with lock:
            gone.append(name)

    files = tmp_path / "schedules"  # made after the watcher started, as an operator would
    watcher = FilesDirWatcher("default/tv", files, SCHEDULE_FILES, on_changed, on_gone, every_s=0.02)
    watcher.start()
    try:
        files.mkdir()
        (files / "ch.sch").write_bytes(SCH % b"red")
        wait_until(lambda: len(changed) == 1, "the new file")
        assert changed[0].name == "ch" and changed[0].fallback is not None  # named after the file
        assert changed[0].fallback[0].url == "file://red.mp4"
        with caplog.at_level(logging.WARNING, logger="kiln.actors.file_watch"):
            (files / "bad.sch").write_bytes(b"<Schedule><Stream>")
            wait_until(lambda: "schedule file refused" in caplog.text, "the bad file refused")
        (files / "ch.sch").write_bytes(SCH % b"blue" + b"\n")
        wait_until(lambda: len(changed) == 2, "the changed file")
        assert changed[1].fallback is not None and changed[1].fallback[0].url == "file://blue.mp4"
        (files / "ch.sch").unlink()
        wait_until(lambda: gone == ["ch"], "the deleted file")
        assert [s.name for s in changed] == ["ch", "ch"]  # the refused file reported nothing
    finally:
        watcher.stop()
    assert watcher.join(5)


def test_a_deleted_file_reports_the_channel_it_defined_which_need_not_be_its_stem(tmp_path: Path) -> None:
    """OME names a multiplex channel after the file's OutputStream, not after the file."""

    def read(data: bytes, stem: str) -> str:
        text = data.decode().strip()
        if not text:
            raise Invalid("empty")
        return text

    kind = ChannelFileKind("named", "namedDir", "x", read, str.encode, lambda name: name)
    reports: list[tuple[str, str]] = []
    lock = threading.Lock()

    def note(what: str) -> Callable[[str, float], None]:
        def report(name: str, looked: float) -> None:
            assert looked <= time.monotonic()
            with lock:
                reports.append((what, name))
        return report

    (tmp_path / "file.x").write_text("alpha")
    (tmp_path / "empty.x").write_text("")
    watcher = FilesDirWatcher("default/tv", tmp_path, kind, note("changed"), note("gone"), every_s=0.02)
    watcher.start()
    try:
        wait_until(lambda: ("changed", "alpha") in reports, "the file read")
        (tmp_path / "file.x").unlink()
        (tmp_path / "empty.x").unlink()  # never read: no channel to report gone
        wait_until(lambda: ("gone", "alpha") in reports, "the file gone")
    finally:
        watcher.stop()
    assert watcher.join(5)
    assert reports == [("changed", "alpha"), ("gone", "alpha")]
