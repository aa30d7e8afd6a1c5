"""A scheduled channel's .sch file at start: the journal's schedule, whatever stood there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import kiln.actors.channel_files as channel_files_module
from kiln.actors.schedules import ChannelFiles
from kiln.domain.schedule import schedule_from_json, schedule_to_xml


def files(tmp_path: Path) -> ChannelFiles:
    return ChannelFiles("default/tv", {"providers": {"schedule": {"scheduleFilesDir": "sch"}}}, tmp_path)


def test_a_missing_or_different_file_is_written_from_the_journal(tmp_path: Path) -> None:
    journaled = schedule_from_json({"stream": {"name": "ch"}, "fallbackProgram": {"items": [{"url": "file://a.mp4"}]}},
                                   0)
    channel_files = files(tmp_path)
    channel_files.restore(journaled)
    path = tmp_path / "sch" / "ch.sch"
    assert path.read_bytes() == schedule_to_xml(journaled)
    # a PATCH wrote its file, then kill -9 took its event: the journal's schedule is what plays
    patched = schedule_from_json({"stream": {"name": "ch"}, "fallbackProgram": {"items": [{"url": "file://b.mp4"}]}},
                                 0)
    path.write_bytes(schedule_to_xml(patched))
    channel_files.restore(journaled)
    assert path.read_bytes() == schedule_to_xml(journaled)


def test_a_look_begun_before_kiln_s_own_write_or_delete_ended_is_stale(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A watcher's look that began while Kiln was still writing the file may have read the old file: stale. Only a
    look begun after the write (or delete) ended is news."""
    schedule = schedule_from_json({"stream": {"name": "ch"}, "fallbackProgram": {"items": [{"url": "file://a.mp4"}]}},
                                  0)
    channel_files = files(tmp_path)
    assert not channel_files.stale("ch", time.monotonic())  # never written by Kiln: every look is news
    during: list[float] = []
    real_write = channel_files_module.write_replacing

    def write_and_look(path: Path, data: bytes) -> None:
        during.append(time.monotonic())  # a look begins while the file is being replaced
        real_write(path, data)

    monkeypatch.setattr(channel_files_module, "write_replacing", write_and_look)
    channel_files.write(schedule)
    assert channel_files.stale("ch", during[0])
    assert not channel_files.stale("ch", time.monotonic())
    assert not channel_files.stale("other", during[0])  # per channel
    before_delete = time.monotonic()
    channel_files.remove("ch")
    assert channel_files.stale("ch", before_delete)
    assert not channel_files.stale("ch", time.monotonic())
