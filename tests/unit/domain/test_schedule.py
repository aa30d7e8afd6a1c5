"""Scheduled channels: OME's schedule JSON and .sch files checked with its texts, and the app's channel set."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.domain.errors import Conflict, Forbidden, Invalid, NotFound
from kiln.domain.schedule import (
    AppSchedules,
    ChannelFileChanged,
    ChannelFileRemoved,
    CreateChannel,
    DeleteChannel,
    LoadChannelFile,
    PatchChannel,
    ScheduleError,
    parse_iso8601,
    patched_schedule,
    schedule_from_json,
    schedule_from_xml,
    schedule_to_xml,
)
from kiln.events.schedules import ChannelStream, Item, Program, Schedule
from kiln.events.streams import ScheduleDefined, ScheduleRemoved
from tests.unit.domain.given import given

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
NOW_MS = int(NOW * 1000)


def body(**extra: Any) -> dict[str, Any]:
    return {"stream": {"name": "tv1"}, "programs": [
        {"name": "p1", "scheduled": "2023-11-14T22:00:00.000Z", "repeat": True,
         "items": [{"url": "file://a.mp4", "start": 0, "duration": 60000}, {"url": "file://b.mp4"}]}], **extra}


def test_iso8601_times_as_ome_writes_them() -> None:
    assert parse_iso8601("2023-11-13T20:57:00.000+09") == parse_iso8601("2023-11-13T11:57:00Z")
    assert parse_iso8601("2022-03-14T15:10:0.0+09:00") == parse_iso8601("2022-03-14T06:10:00.000Z")
    assert parse_iso8601("1970-01-01T00:00:01.5Z") == 1500
    assert parse_iso8601("2023-09-27T13:21:15.123-01:30") == parse_iso8601("2023-09-27T14:51:15.123Z")
    with pytest.raises(ScheduleError, match="Failed to parse scheduled attribute"):
        parse_iso8601("tomorrow")


def test_json_is_read_with_ome_defaults() -> None:
    schedule = schedule_from_json(body(), NOW_MS)
    assert schedule.stream == ChannelStream("tv1", False, True, True)
    assert schedule.fallback is None
    assert schedule.programs == (Program("p1", "2023-11-14T22:00:00.000Z", parse_iso8601("2023-11-14T22:00:00Z"),
                                         True, (Item("file://a.mp4", 0, 60000), Item("file://b.mp4", 0, -1))),)
    assert schedule.to_json()["programs"][0]["items"][1] == {"url": "file://b.mp4", "start": 0, "duration": -1}


@pytest.mark.parametrize(("payload", "text"), [
    ([], "Invalid request body"),
    ({}, "Failed to find Stream object"),
    ({"stream": {"bypassTranscoder": True}}, "Failed to find Stream.Name object"),
    ({"stream": {"name": "x"}, "fallbackProgram": []}, "FallbackProgram must be an object"),
    ({"stream": {"name": "x"}, "programs": {}}, "programs must be an array"),
    ({"stream": {"name": "x"}, "programs": [{"items": []}]}, "Failed to find scheduled object, scheduled is required"),
    ({"stream": {"name": "x"}, "fallbackProgram": {"items": {}}}, "items must be an array"),
    ({"stream": {"name": "x"}, "fallbackProgram": {"items": [{"start": 0}]}},
     "Failed to find url object, url is required"),
    ({"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": "http://h/a.mp4"}]}},
     "Failed to parse url attribute, url must be file:// or stream://"),
    ({"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": "file://a.mp4", "duration": "long"}]}},
     "duration must be an integer"),
    ({"stream": {"name": "../x"}}, "Invalid stream name: [../x]"),
])
def test_bad_json_is_refused_with_ome_texts(payload: Any, text: str) -> None:
    with pytest.raises(Invalid) as caught:
        schedule_from_json(payload, NOW_MS)
    assert caught.value.text == text


def test_a_live_stream_item_is_read_and_written_back_as_given() -> None:
    live = {"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": "stream://default/app/cam"}]},
            "programs": [{"scheduled": "2000-01-01T00:00:00Z", "repeat": True, "items": [
                {"url": "file://a.mp4", "duration": 2000}, {"url": "stream://default/app/cam", "duration": 5000},
                {"url": "stream://default/other/cam2", "duration": -1, "fallbackOnErr": False}]}]}
    schedule = schedule_from_json(live, NOW_MS)
    assert schedule.fallback == (Item("stream://default/app/cam"),)
    assert schedule.programs[0].items[1:] == (Item("stream://default/app/cam", 0, 5000),
                                             Item("stream://default/other/cam2", 0, -1, False))
    assert schedule.to_json()["programs"][0]["items"][1] == {"url": "stream://default/app/cam", "start": 0,
                                                            "duration": 5000}
    xml = schedule_to_xml(schedule)
    assert b'<Item url="stream://default/app/cam" start="0" duration="5000" />' in xml
    assert schedule_from_xml(xml, "x") == schedule
    assert Schedule.from_stored(schedule.to_stored()) == schedule


@pytest.mark.parametrize("url", ["stream://default/app", "stream://default/app/cam/x", "stream:///app/cam",
                                 "stream://default/../cam", "stream://"])
def test_a_live_stream_item_must_name_vhost_app_and_stream(url: str) -> None:
    with pytest.raises(ScheduleError, match=r"stream://\{vhost\}/\{app\}/\{stream\}"):
        schedule_from_json({"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": url}]}}, NOW_MS)


def test_a_file_outside_the_media_root_is_refused() -> None:
    with pytest.raises(ScheduleError, match="under MediaRootDir"):
        schedule_from_json({"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": "file://../etc/x"}]}},
                           NOW_MS)


def test_programs_must_be_in_time_order_and_past_ones_are_dropped() -> None:
    programs = [{"scheduled": "2023-11-14T20:00:00Z", "items": []}, {"scheduled": "2023-11-14T21:00:00Z", "items": []},
                {"scheduled": "2023-11-14T23:00:00Z", "items": []}]
    kept = schedule_from_json({"stream": {"name": "x"}, "programs": programs}, NOW_MS).programs
    assert [p.scheduled for p in kept] == ["2023-11-14T21:00:00Z", "2023-11-14T23:00:00Z"]  # the first ended at 21:00
    with pytest.raises(ScheduleError, match="scheduled order"):
        schedule_from_json({"stream": {"name": "x"}, "programs": programs[::-1]}, NOW_MS)


def test_a_short_item_is_raised_to_one_second_as_ome_does() -> None:
    schedule = schedule_from_json({"stream": {"name": "x"}, "fallbackProgram": {"items": [
        {"url": "file://a.mp4", "duration": 10}]}}, NOW_MS)
    assert schedule.fallback == (Item("file://a.mp4", 0, 1000),)


def test_the_sch_file_round_trips_and_the_stream_is_named_after_the_file() -> None:
    schedule = schedule_from_json(body(fallbackProgram={"items": [{"url": "file://f.mp4"}]}), NOW_MS)
    xml = schedule_to_xml(schedule)
    assert b'<Program name="p1" scheduled="2023-11-14T22:00:00.000Z" repeat="true">' in xml
    assert b'<Item url="file://a.mp4" start="0" duration="60000" />' in xml
    assert schedule_from_xml(xml, "tv1") == schedule
    renamed = schedule_from_xml(xml, "other")
    assert renamed.name == "other" and renamed.programs == schedule.programs


def test_fallback_on_err_is_read_from_json_and_files_kept_where_false_and_never_shown() -> None:
    payload = body(fallbackProgram={"items": [{"url": "file://f.mp4", "fallbackOnErr": True}]})
    payload["programs"][0]["items"][1]["fallbackOnErr"] = False
    schedule = schedule_from_json(payload, NOW_MS)
    assert [i.fallback_on_err for i in schedule.programs[0].items] == [True, False]
    assert "fallbackOnErr" not in str(schedule.to_json())  # OME reads it and never shows it
    assert Schedule.from_stored(schedule.to_stored()) == schedule  # journaled with it
    xml = schedule_to_xml(schedule)
    assert xml.count(b"fallbackOnErr") == 1
    assert b'url="file://b.mp4" start="0" duration="-1" fallbackOnErr="false"' in xml
    assert schedule_from_xml(xml, "tv1") == schedule  # the file says what plays
    assert schedule_from_xml(xml.replace(b'"false"', b'"no"'), "tv1") == schedule  # pugixml's as_bool
    assert schedule_from_xml(xml.replace(b'"false"', b'"yes"'), "tv1").programs[0].items[1].fallback_on_err
    bad = body()
    bad["programs"][0]["items"][0]["fallbackOnErr"] = "false"
    with pytest.raises(ScheduleError, match="fallbackOnErr must be a boolean"):
        schedule_from_json(bad, NOW_MS)


def test_an_ome_sample_file_is_read() -> None:
    sample = b"""<?xml version="1.0"?>
<Schedule><Stream><Name>stream</Name><BypassTranscoder>false</BypassTranscoder><VideoTrack>true</VideoTrack>
<AudioTrack>false</AudioTrack></Stream>
<FallbackProgram><Item url="file://hevc.mov" /><Item url="file://avc.mov" /></FallbackProgram>
<Program name="2" scheduled="2022-03-14T15:10:0.0+09:00" repeat="true">
<Item url="file://sample.mp4" start="0" duration="60000" /></Program></Schedule>"""
    schedule = schedule_from_xml(sample, "stream")
    assert schedule.stream == ChannelStream("stream", False, True, False)
    assert schedule.fallback == (Item("file://hevc.mov"), Item("file://avc.mov"))
    assert schedule.programs[0].repeat and schedule.programs[0].scheduled_ms == parse_iso8601("2022-03-14T06:10:00Z")


@pytest.mark.parametrize(("xml", "text"), [
    (b"<Schedule>", "Failed to load schedule file"),
    (b"<Other/>", "Failed to find Schedule node"),
    (b"<Schedule/>", "Failed to read Stream node"),
    (b"<Schedule><Stream/><Program><Item url='file://a'/></Program></Schedule>",
     "Failed to find scheduled attribute, scheduled is required"),
    (b"<Schedule><Stream/><FallbackProgram><Item/></FallbackProgram></Schedule>",
     "Failed to find url attribute, url is required"),
    (b"<Schedule><Stream/><FallbackProgram><Item url='stream://default/x'/></FallbackProgram></Schedule>",
     "stream:// items name a stream as"),
])
def test_bad_files_are_refused(xml: bytes, text: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        schedule_from_xml(xml, "x")
    assert caught.value.text.startswith(text)


def channels(enabled: bool = True) -> AppSchedules:
    return AppSchedules("default", "app", enabled)


def defined(payload: dict[str, Any] | None = None, source: str = "api") -> ScheduleDefined:
    schedule = schedule_from_json(payload or body(), NOW_MS)
    return ScheduleDefined("default", "app", schedule.name, schedule.to_stored(), NOW, source)


def test_create_defines_the_channel_with_its_schedule() -> None:
    app = channels()
    given(app).when(CreateChannel(body()), now=NOW).then(defined())
    assert app.channel("tv1") == schedule_from_json(body(), NOW_MS)
    assert Schedule.from_stored(defined().schedule) == app.channel("tv1")


def test_create_is_forbidden_without_a_schedule_provider_after_the_body_check() -> None:
    given(channels(False)).when(CreateChannel(body()), now=NOW).refused(Forbidden, "Forbidden")
    given(channels(False)).when(CreateChannel("x"), now=NOW).refused(Invalid, "Invalid request body")


def test_a_taken_name_is_a_conflict() -> None:
    given(channels(), defined()).when(CreateChannel(body()), now=NOW).refused(Conflict, "Stream 'tv1' already exists")
    given(channels()).when(CreateChannel(body(), frozenset({"tv1"})), now=NOW).refused(Conflict)
    given(channels(), defined()).when(LoadChannelFile(schedule_from_json(body(), NOW_MS)), now=NOW).refused(Conflict)


def test_patch_replaces_programs_or_fallback_and_never_the_stream() -> None:
    app = channels()
    patch = {"fallbackProgram": {"items": [{"url": "file://f.mp4"}]}}
    given(app, defined()).when(PatchChannel("tv1", patch), now=NOW).then(defined(body(**patch)))
    given(app).when(PatchChannel("tv1", {"stream": {"name": "tv1"}}), now=NOW).refused(
        Invalid, "Stream object could not be patched")
    given(app).when(PatchChannel("nope", patch), now=NOW).refused(
        NotFound, "Could not find the stream: [default/#default#app/nope]")
    given(app).when(PatchChannel("tv1", {"programs": 1}), now=NOW).refused(Invalid, "programs must be an array")


def test_delete_removes_the_channel() -> None:
    app = channels()
    given(app, defined()).when(DeleteChannel("tv1"), now=NOW).then(
        ScheduleRemoved("default", "app", "tv1", "deleted by API"))
    assert app.channels == {}
    given(app).when(DeleteChannel("tv1"), now=NOW).refused(NotFound)


def test_a_file_found_at_start_is_defined_as_from_a_file() -> None:
    given(channels()).when(LoadChannelFile(schedule_from_json(body(), NOW_MS)), now=NOW).then(defined(source="file"))


def test_a_file_written_while_running_adds_or_updates_its_channel_and_its_deletion_removes_it() -> None:
    app = channels()
    first = schedule_from_json(body(), NOW_MS)
    given(app).when(ChannelFileChanged(first), now=NOW).then(defined(source="file"))
    # Kiln's own write of the same schedule, or an editor saving without change: nothing happens
    given(app).when(ChannelFileChanged(schedule_from_xml(schedule_to_xml(first), "tv1")), now=NOW).then()
    patched = body(fallbackProgram={"items": [{"url": "file://f.mp4"}]})
    given(app).when(ChannelFileChanged(schedule_from_json(patched, NOW_MS)), now=NOW).then(
        defined(patched, source="file"))
    given(app).when(ChannelFileRemoved("tv1"), now=NOW).then(
        ScheduleRemoved("default", "app", "tv1", "schedule file deleted"))
    assert app.channels == {}
    given(app).when(ChannelFileRemoved("tv1"), now=NOW).then()  # the API deleted it (and its file) already


def test_a_file_naming_a_live_stream_is_a_conflict_and_a_file_needs_the_provider() -> None:
    schedule = schedule_from_json(body(), NOW_MS)
    given(channels()).when(ChannelFileChanged(schedule, frozenset({"tv1"})), now=NOW).refused(
        Conflict, "Stream 'tv1' already exists")
    given(channels(), defined()).when(ChannelFileChanged(schedule, frozenset({"tv1"})), now=NOW).then()  # its own
    given(channels(False)).when(ChannelFileChanged(schedule), now=NOW).refused(Forbidden)
    given(channels(False)).when(ChannelFileRemoved("tv1"), now=NOW).refused(Forbidden)


@pytest.mark.parametrize("name", ["a\x00b", "line\nbreak", "tab\there", "del\x7f"])
def test_a_name_no_file_can_have_is_refused(name: str) -> None:
    with pytest.raises(ScheduleError, match="Invalid stream name"):
        schedule_from_json({"stream": {"name": name}}, NOW_MS)


@pytest.mark.parametrize("item", [{"url": "file://a.mp4", "start": 10**15}, {"url": "file://a.mp4", "duration": 10**15},
                                  {"url": "file://a.mp4", "start": -1}])
def test_start_and_duration_are_bounded(item: dict[str, Any]) -> None:
    with pytest.raises(ScheduleError, match="must be"):
        schedule_from_json({"stream": {"name": "x"}, "fallbackProgram": {"items": [item]}}, NOW_MS)
    xml = ("<Schedule><Stream/><FallbackProgram><Item " + " ".join(f'{k}="{v}"' for k, v in item.items())
           + "/></FallbackProgram></Schedule>").encode()
    with pytest.raises(ScheduleError, match="must be"):
        schedule_from_xml(xml, "x")


def test_the_error_tolerance_of_live_items_is_read_written_and_bounded() -> None:
    assert schedule_from_json({"stream": {"name": "x"}}, NOW_MS).stream.error_tolerance_ms == 500  # OME's default
    schedule = schedule_from_json({"stream": {"name": "x", "errorToleranceDurationMs": 2000}}, NOW_MS)
    assert schedule.stream.error_tolerance_ms == 2000
    assert schedule.to_json()["stream"]["errorToleranceDurationMs"] == 2000  # OME shows it
    assert b"<ErrorToleranceDurationMs>2000</ErrorToleranceDurationMs>" in schedule_to_xml(schedule)
    assert schedule_from_xml(schedule_to_xml(schedule), "x") == schedule
    stored = schedule.to_stored()
    del stored["stream"]["errorToleranceDurationMs"]  # an event journaled before Kiln read it
    assert Schedule.from_stored(stored).stream.error_tolerance_ms == 500
    for bad in (-1, 3_600_001):
        with pytest.raises(ScheduleError, match="errorToleranceDurationMs must be between 0 and 3600000"):
            schedule_from_json({"stream": {"name": "x", "errorToleranceDurationMs": bad}}, NOW_MS)
    with pytest.raises(ScheduleError, match="ErrorToleranceDurationMs must be an integer"):
        schedule_from_xml(b"<Schedule><Stream><ErrorToleranceDurationMs>soon</ErrorToleranceDurationMs></Stream>"
                          b"</Schedule>", "x")


def test_a_patch_may_bring_live_stream_items() -> None:
    old = schedule_from_json(body(), NOW_MS)
    new = patched_schedule(old, {"fallbackProgram": {"items": [{"url": "stream://default/app/cam", "duration": -1}]}},
                           NOW_MS)
    assert new.fallback == (Item("stream://default/app/cam", 0, -1),) and new.programs == old.programs
    with pytest.raises(ScheduleError, match="stream://"):
        patched_schedule(old, {"fallbackProgram": {"items": [{"url": "stream://cam"}]}}, NOW_MS)
