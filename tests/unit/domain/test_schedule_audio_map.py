"""A scheduled channel's ``audioMap`` (OME's ``Stream.AudioMap``): read from JSON and ``.sch`` files as OME reads
them, journaled, written back in the file, shown in GET; a schedule without one reads and is stored as before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.domain.schedule import ScheduleError, schedule_from_json, schedule_from_xml, schedule_to_xml
from kiln.events.schedules import AudioMapItem, Schedule

NOW_MS = 1_700_000_000_000
ENGLISH = {"name": "English", "language": "en", "characteristics": "public.accessibility.describes-video"}


def _body(audio_map: Any) -> dict[str, Any]:
    return {"stream": {"name": "tv1", "audioMap": audio_map},
            "fallbackProgram": {"items": [{"url": "file://two_tones.mp4"}]}}


def test_the_map_is_read_journaled_shown_and_written_back_to_the_file() -> None:
    schedule = schedule_from_json(_body([ENGLISH, {"name": "Korean", "language": "ko"}]), NOW_MS)
    assert schedule.stream.audio_map == (
        AudioMapItem("English", "en", "public.accessibility.describes-video"), AudioMapItem("Korean", "ko", ""))
    assert schedule.to_json()["stream"]["audioMap"] == [ENGLISH, {"name": "Korean", "language": "ko",
                                                                  "characteristics": ""}]
    assert Schedule.from_stored(schedule.to_stored()) == schedule
    xml = schedule_to_xml(schedule)
    assert (b"<AudioMap>\n\t\t\t<Item>\n\t\t\t\t<Name>English</Name>\n\t\t\t\t<Language>en</Language>\n"
            b"\t\t\t\t<Characteristics>public.accessibility.describes-video</Characteristics>") in xml
    assert schedule_from_xml(xml, "tv1") == schedule


def test_an_ome_file_with_a_map_is_read() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<Schedule><Stream><Name>today</Name><BypassTranscoder>false</BypassTranscoder><VideoTrack>true</VideoTrack>
<AudioTrack>true</AudioTrack>
<AudioMap><Item><Name>English</Name><Language>en</Language></Item>
<Item><Name>Korean</Name><Language>ko</Language><Characteristics>public.alternate</Characteristics></Item></AudioMap>
</Stream><FallbackProgram><Item url="file://a.mp4" /></FallbackProgram></Schedule>"""
    stream = schedule_from_xml(xml, "today").stream
    assert stream.audio_map == (AudioMapItem("English", "en"), AudioMapItem("Korean", "ko", "public.alternate"))


def test_without_a_map_nothing_changes() -> None:
    for audio_map in (None, []):
        schedule = schedule_from_json(_body(audio_map), NOW_MS)
        assert schedule.stream.audio_map == ()
        assert "audioMap" not in schedule.to_json()["stream"] and b"AudioMap" not in schedule_to_xml(schedule)
    empty = b"<Schedule><Stream><AudioMap/></Stream><FallbackProgram><Item url='file://a.mp4'/></FallbackProgram>" \
            b"</Schedule>"
    assert schedule_from_xml(empty, "x").stream.audio_map == ()


@pytest.mark.parametrize(("audio_map", "text"), [
    ({"name": "English"}, "audioMap must be an array"),
    ("English", "audioMap must be an array"),
    (["English"], "audioMap item must be an object"),
    ([{"name": 1}], "audioMap item name must be a string"),
    ([{"name": "x", "language": ["en"]}], "audioMap item language must be a string"),
    ([{"name": "Eng\nlish"}], "audioMap item name has a control character"),
])
def test_a_bad_map_is_refused_with_a_clear_text(audio_map: Any, text: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_json(_body(audio_map), NOW_MS)
    assert caught.value.text == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={k: st.one_of(st.text(max_size=6), st.none(), st.integers())
                                                    for k in ("name", "language", "characteristics")}), max_size=3))
def test_a_map_is_refused_or_round_trips_through_the_file(audio_map: list[dict[str, Any]]) -> None:
    try:
        schedule = schedule_from_json(_body(audio_map), NOW_MS)
    except ScheduleError:
        return
    assert schedule_from_xml(schedule_to_xml(schedule), "tv1") == schedule
