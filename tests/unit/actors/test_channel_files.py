"""A scheduled channel's .sch file at start: the journal's schedule, whatever stood there."""

from __future__ import annotations

from pathlib import Path

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
