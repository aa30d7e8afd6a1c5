"""Scheduled channels (OME's Schedule provider): checking a schedule, its ``.sch`` file, and the channel set.

A schedule arrives as scheduledChannels JSON (POST, PATCH) or as a ``{stream}.sch`` XML file in the app's
ScheduleFilesDir. Both are checked here into one :class:`kiln.events.schedules.Schedule`, with OME's error
texts (``schedule.cpp``); the XML is rendered back the way OME saves it. :class:`AppSchedules` decides the
API's commands on an app's channels: OME answers 403 when the app has no Schedule provider, 409 when the
name is taken, 400 for a schedule it cannot read.

``stream://{vhost}/{app}/{stream}`` items play another live stream of the server; ``audioMap`` labels the first
audio tracks of the files.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from calendar import timegm
from dataclasses import dataclass
from typing import Any

from kiln.domain.errors import Conflict, Forbidden, Invalid, NotFound
from kiln.events.base import Event
from kiln.events.schedules import (
    ERROR_TOLERANCE_MS,
    FILE_SCHEME,
    STREAM_SCHEME,
    AudioMapItem,
    ChannelStream,
    Item,
    Program,
    Schedule,
)
from kiln.events.streams import ScheduleDefined, ScheduleRemoved

FILE_EXTENSION = "sch"
MIN_ITEM_MS = 1000  # OME raises a configured duration of 0..1000 ms to 1000 ms
MAX_TOLERANCE_MS = 3_600_000  # a stream:// item may be silent at most an hour before it counts as ended
MAX_ITEM_MS = 10**12  # ~31 years: beyond it a seek's microseconds overflow FFmpeg's 64 bits

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?")


class ScheduleError(Invalid):
    """A schedule OME would not load (400 through the API; a file with one is logged and skipped)."""


def parse_iso8601(text: str) -> int:
    """Unix ms of OME's ISO 8601 times: ``2023-11-13T20:57:00.000+09``, ``…T15:10:0.0+09:00``, ``…Z``
    (no offset: UTC)."""
    m = _ISO.fullmatch(text.strip())
    if m is None:
        raise ScheduleError(f"Failed to parse scheduled attribute: Invalid ISO8601 format: {text}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise ScheduleError(f"Failed to parse scheduled attribute: Invalid ISO8601 format: {text}")
    frac = (m.group(7) or "0")[:3].ljust(3, "0")
    offset_s = 0
    zone = m.group(8)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset_s = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) > 2 else 0)
        offset_s = offset_s if zone[0] == "+" else -offset_s
    return (timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset_s) * 1000 + int(frac)


def _tolerance(value: int) -> int:
    if not 0 <= value <= MAX_TOLERANCE_MS:
        raise ScheduleError(f"errorToleranceDurationMs must be between 0 and {MAX_TOLERANCE_MS}: {value}")
    return value


def _stream_item(url: str, start: int, duration: int, fallback_on_err: bool) -> Item:
    """A live stream of the server (``stream://{vhost}/{app}/{stream}``), played for ``duration`` (-1: while it
    is live); ``start`` means nothing for it (OME reads it for files only) and is kept as given."""
    parts = url[len(STREAM_SCHEME):].split("/")
    if len(parts) != 3 or not all(parts) or any(p in (".", "..") for p in parts):
        raise ScheduleError(f"stream:// items name a stream as stream://{{vhost}}/{{app}}/{{stream}}: {url}")
    if duration > MAX_ITEM_MS:
        raise ScheduleError(f"duration must be at most {MAX_ITEM_MS} ms: {url}")
    if duration < -1:
        duration = -1
    elif 0 <= duration <= MIN_ITEM_MS:
        duration = MIN_ITEM_MS
    return Item(url, max(0, min(start, MAX_ITEM_MS)), duration, fallback_on_err)


def _item(url: str, start: int, duration: int, fallback_on_err: bool = True) -> Item:
    lower = url.lower()
    if lower.startswith(STREAM_SCHEME):
        return _stream_item(url, start, duration, fallback_on_err)
    if not lower.startswith(FILE_SCHEME):
        raise ScheduleError("Failed to parse url attribute, url must be file:// or stream://")
    path = url[len(FILE_SCHEME):]
    if not path or any(part == ".." for part in path.replace("\\", "/").split("/")):
        raise ScheduleError(f"file:// items name a file under MediaRootDir: {url}")
    if not 0 <= start <= MAX_ITEM_MS:
        raise ScheduleError(f"start must be between 0 and {MAX_ITEM_MS} ms: {url}")
    if duration > MAX_ITEM_MS:
        raise ScheduleError(f"duration must be at most {MAX_ITEM_MS} ms: {url}")
    if 0 <= duration <= MIN_ITEM_MS:
        duration = MIN_ITEM_MS
    return Item(url, start, duration, fallback_on_err)


def _program(name: str, scheduled: str, repeat: bool, items: tuple[Item, ...]) -> Program:
    return Program(name, scheduled, parse_iso8601(scheduled), repeat, items)


def _ordered(programs: list[Program]) -> tuple[Program, ...]:
    """Each program ends when the next begins (OME reads them in order), so they must be in time order."""
    for before, after in zip(programs, programs[1:], strict=False):
        if after.scheduled_ms <= before.scheduled_ms:
            raise ScheduleError(f"Programs must be in scheduled order: {after.scheduled} is not after "
                                f"{before.scheduled}")
    return tuple(programs)


def _without_past(programs: tuple[Program, ...], now_ms: int) -> tuple[Program, ...]:
    """OME drops programs of an API schedule that ended before now (the last one never ends)."""
    return tuple(p for i, p in enumerate(programs)
                 if i + 1 >= len(programs) or programs[i + 1].scheduled_ms >= now_ms)


# --- JSON (scheduledChannels bodies) ------------------------------------------------------------


def _int(value: Any, default: int, what: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{what} must be an integer")
    return value


def _bool(value: Any, default: bool, what: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ScheduleError(f"{what} must be a boolean")
    return value


def _json_items(parent: dict[str, Any]) -> tuple[Item, ...]:
    items = parent.get("items")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ScheduleError("items must be an array")
    out = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str):
            raise ScheduleError("Failed to find url object, url is required")
        out.append(_item(url, _int(item.get("start"), 0, "start"), _int(item.get("duration"), -1, "duration"),
                         _bool(item.get("fallbackOnErr"), True, "fallbackOnErr")))
    return tuple(out)


def _json_fallback(body: dict[str, Any]) -> tuple[Item, ...] | None:
    fallback = body.get("fallbackProgram")
    if fallback is None:
        return None
    if not isinstance(fallback, dict):
        raise ScheduleError("FallbackProgram must be an object")
    return _json_items(fallback)


def _json_programs(body: dict[str, Any], now_ms: int) -> tuple[Program, ...]:
    programs = body.get("programs")
    if programs is None:
        return ()
    if not isinstance(programs, list):
        raise ScheduleError("programs must be an array")
    out = []
    for program in programs:
        if not isinstance(program, dict) or not isinstance(program.get("scheduled"), str):
            raise ScheduleError("Failed to find scheduled object, scheduled is required")
        name = program.get("name")
        out.append(_program(name if isinstance(name, str) else "", program["scheduled"],
                            _bool(program.get("repeat"), False, "repeat"), _json_items(program)))
    return _without_past(_ordered(out), now_ms)


def schedule_from_json(body: Any, now_ms: int) -> Schedule:
    """POST scheduledChannels' body, checked as OME's ``Schedule::LoadFromJsonObject``."""
    if not isinstance(body, dict):
        raise Invalid("Invalid request body")
    stream = body.get("stream")
    if not isinstance(stream, dict):
        raise ScheduleError("Failed to find Stream object")
    name = stream.get("name")
    if not isinstance(name, str):
        raise ScheduleError("Failed to find Stream.Name object")
    if not name or "/" in name or name in (".", "..") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        # it names the channel's file in ScheduleFilesDir (and shows in log lines)
        raise ScheduleError(f"Invalid stream name: [{name}]")
    channel = ChannelStream(name, _bool(stream.get("bypassTranscoder"), False, "bypassTranscoder"),
                            _bool(stream.get("videoTrack"), True, "videoTrack"),
                            _bool(stream.get("audioTrack"), True, "audioTrack"),
                            _tolerance(_int(stream.get("errorToleranceDurationMs"), ERROR_TOLERANCE_MS,
                                            "errorToleranceDurationMs")),
                            audio_map=_json_audio_map(stream))
    return Schedule(channel, _json_fallback(body), _json_programs(body, now_ms))


def _json_audio_map(stream: dict[str, Any]) -> tuple[AudioMapItem, ...]:
    """``stream.audioMap`` as OME's ``LoadFromJsonObject`` reads it: an array (null: none) of items whose
    name, language and characteristics are strings (another type is refused: OME would throw reading it)."""
    found = stream.get("audioMap")
    if found is None:
        return ()
    if not isinstance(found, list):
        raise ScheduleError("audioMap must be an array")
    out = []
    for item in found:
        if not isinstance(item, dict):
            raise ScheduleError("audioMap item must be an object")
        values = []
        for key in ("name", "language", "characteristics"):
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise ScheduleError(f"audioMap item {key} must be a string")
            if value and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                # the .sch file could not hold it (XML), nor a playlist's quoted attribute
                raise ScheduleError(f"audioMap item {key} has a control character")
            values.append(value or "")
        out.append(AudioMapItem(*values))
    return tuple(out)


def patched_schedule(old: Schedule, body: Any, now_ms: int) -> Schedule:
    """PATCH: ``fallbackProgram`` and ``programs`` replace the old ones when present; ``stream`` may not change."""
    if not isinstance(body, dict):
        raise Invalid("Invalid request body")
    if "stream" in body:
        raise Invalid("Stream object could not be patched")
    fallback = _json_fallback(body) if "fallbackProgram" in body else old.fallback
    programs = _json_programs(body, now_ms) if "programs" in body else old.programs
    return Schedule(old.stream, fallback, programs)


# --- XML (.sch files) ---------------------------------------------------------------------------------


def _xml_bool(text: str | None, default: bool) -> bool:
    """pugixml's as_bool: true when the text starts with 1, t, T, y or Y."""
    if text is None:
        return default
    return text.strip()[:1] in ("1", "t", "T", "y", "Y")


def _xml_int(text: str | None, default: int, what: str) -> int:
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise ScheduleError(f"{what} must be an integer: {text}") from None


def _xml_items(parent: ET.Element) -> tuple[Item, ...]:
    out = []
    for node in parent.findall("Item"):
        url = node.get("url")
        if url is None:
            raise ScheduleError("Failed to find url attribute, url is required")
        out.append(_item(url, _xml_int(node.get("start"), 0, "start"), _xml_int(node.get("duration"), -1, "duration"),
                         _xml_bool(node.get("fallbackOnErr"), True)))
    return tuple(out)


def schedule_from_xml(data: bytes, file_stem: str) -> Schedule:
    """A ``{file_stem}.sch`` file, read as OME's ``Schedule::LoadFromXMLFile``: the stream is named after the file."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ScheduleError(f"Failed to load schedule file: {exc}") from None
    except (LookupError, ValueError) as exc:  # the XML declaration names an encoding expat cannot read
        raise ScheduleError(f"Failed to load schedule file: unsupported encoding: {exc}") from None
    if root.tag != "Schedule":
        raise ScheduleError("Failed to find Schedule node")
    stream = root.find("Stream")
    if stream is None:
        raise ScheduleError("Failed to read Stream node")
    audio_map = tuple(AudioMapItem(node.findtext("Name") or "", node.findtext("Language") or "",
                                   node.findtext("Characteristics") or "")
                      for node in stream.findall("AudioMap/Item"))
    channel = ChannelStream(file_stem, _xml_bool(stream.findtext("BypassTranscoder"), False),
                            _xml_bool(stream.findtext("VideoTrack"), True),
                            _xml_bool(stream.findtext("AudioTrack"), True),
                            _tolerance(_xml_int(stream.findtext("ErrorToleranceDurationMs"), ERROR_TOLERANCE_MS,
                                                "ErrorToleranceDurationMs")),
                            audio_map=audio_map)
    fallback_node = root.find("FallbackProgram")
    programs = []
    for node in root.findall("Program"):
        scheduled = node.get("scheduled")
        if scheduled is None:
            raise ScheduleError("Failed to find scheduled attribute, scheduled is required")
        programs.append(_program(node.get("name", ""), scheduled, _xml_bool(node.get("repeat"), False),
                                 _xml_items(node)))
    return Schedule(channel, None if fallback_node is None else _xml_items(fallback_node), _ordered(programs))


def schedule_to_xml(schedule: Schedule) -> bytes:
    """The ``.sch`` file OME's ``SaveToXMLFile`` writes for this schedule."""
    root = ET.Element("Schedule")
    stream = ET.SubElement(root, "Stream")
    for tag, value in (("Name", schedule.stream.name), ("BypassTranscoder", schedule.stream.bypass_transcoder),
                       ("VideoTrack", schedule.stream.video_track), ("AudioTrack", schedule.stream.audio_track),
                       ("ErrorToleranceDurationMs", str(schedule.stream.error_tolerance_ms))):
        ET.SubElement(stream, tag).text = _xml_text(value)
    if schedule.stream.audio_map:  # OME writes an empty AudioMap element too; a file without one stays as it was
        audio_map = ET.SubElement(stream, "AudioMap")
        for entry in schedule.stream.audio_map:
            item = ET.SubElement(audio_map, "Item")
            for tag, text in (("Name", entry.name), ("Language", entry.language),
                              ("Characteristics", entry.characteristics)):
                ET.SubElement(item, tag).text = text

    def items(parent: ET.Element, of: tuple[Item, ...]) -> None:
        for item in of:
            attributes = {"url": item.url, "start": str(item.start_ms), "duration": str(item.duration_ms)}
            if not item.fallback_on_err:  # OME reads it and never writes it: kept, so the file says what plays
                attributes["fallbackOnErr"] = "false"
            ET.SubElement(parent, "Item", attributes)

    if schedule.fallback is not None:
        items(ET.SubElement(root, "FallbackProgram"), schedule.fallback)
    for program in schedule.programs:
        items(ET.SubElement(root, "Program", {"name": program.name, "scheduled": program.scheduled,
                                              "repeat": _xml_text(program.repeat)}), program.items)
    ET.indent(root, space="\t")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0"?>\n' + body + b"\n"


def _xml_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# --- the app's channels -----------------------------------------------------------------------------------


def channel_not_found_text(vhost: str, app: str, name: str) -> str:
    """OME's controllers look the channel up as a stream first: its 404 is the stream's."""
    return f"Could not find the stream: [{vhost}/#{vhost}#{app}/{name}]"


@dataclass(frozen=True)
class CreateChannel:
    body: Any
    live_streams: frozenset[str] = frozenset()  # the app's live stream names (a channel may not take one)


@dataclass(frozen=True)
class PatchChannel:
    name: str
    body: Any


@dataclass(frozen=True)
class DeleteChannel:
    name: str


@dataclass(frozen=True)
class LoadChannelFile:
    """A ``.sch`` file found in ScheduleFilesDir at start that no journaled channel names (OME loads those)."""

    schedule: Schedule
    live_streams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChannelFileChanged:
    """A ``.sch`` file written or changed in ScheduleFilesDir while Kiln runs: OME adds or updates the channel."""

    schedule: Schedule
    live_streams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChannelFileRemoved:
    """A channel's ``.sch`` file deleted while Kiln runs: OME deletes the channel."""

    name: str


ChannelCommand = (CreateChannel | PatchChannel | DeleteChannel | LoadChannelFile | ChannelFileChanged
                  | ChannelFileRemoved)


class AppSchedules:
    """An app's scheduled channels, by stream name. ``enabled``: the app has a Schedule provider."""

    def __init__(self, vhost: str, app: str, enabled: bool) -> None:
        self.vhost = vhost
        self.app = app
        self.enabled = enabled
        self.channels: dict[str, Schedule] = {}

    def channel(self, name: str) -> Schedule:
        found = self.channels.get(name)
        if found is None:
            raise NotFound(channel_not_found_text(self.vhost, self.app, name))
        return found

    def decide(self, command: ChannelCommand, now: float) -> list[Event]:
        now_ms = int(now * 1000)
        if isinstance(command, ChannelFileChanged | ChannelFileRemoved):
            return self._decide_file(command, now)
        if isinstance(command, CreateChannel | LoadChannelFile):
            if isinstance(command, CreateChannel) and not isinstance(command.body, dict):
                raise Invalid("Invalid request body")
            if not self.enabled:
                raise Forbidden("Forbidden")
            schedule = command.schedule if isinstance(command, LoadChannelFile) \
                else schedule_from_json(command.body, now_ms)
            if schedule.name in self.channels or schedule.name in command.live_streams:
                raise Conflict(f"Stream '{schedule.name}' already exists")
            source = "file" if isinstance(command, LoadChannelFile) else "api"
            return [ScheduleDefined(self.vhost, self.app, schedule.name, schedule.to_stored(), now, source)]
        if isinstance(command, PatchChannel):
            if not isinstance(command.body, dict):
                raise Invalid("Invalid request body")
            old = self.channel(command.name)
            if not self.enabled:
                raise Forbidden("Forbidden")
            new = patched_schedule(old, command.body, now_ms)
            return [ScheduleDefined(self.vhost, self.app, new.name, new.to_stored(), now, "api")]
        self.channel(command.name)
        if not self.enabled:
            raise Forbidden("Forbidden")
        return [ScheduleRemoved(self.vhost, self.app, command.name, "deleted by API")]

    def _decide_file(self, command: ChannelFileChanged | ChannelFileRemoved, now: float) -> list[Event]:
        """What a change in the directory means: nothing when the file says what the channel already is (Kiln's
        own writes, an editor saving the same schedule, a file gone whose channel the API deleted)."""
        if not self.enabled:
            raise Forbidden("Forbidden")
        if isinstance(command, ChannelFileRemoved):
            if command.name not in self.channels:
                return []
            return [ScheduleRemoved(self.vhost, self.app, command.name, "schedule file deleted")]
        schedule = command.schedule
        current = self.channels.get(schedule.name)
        if current == schedule:
            return []
        if current is None and schedule.name in command.live_streams:
            raise Conflict(f"Stream '{schedule.name}' already exists")
        return [ScheduleDefined(self.vhost, self.app, schedule.name, schedule.to_stored(), now, "file")]

    def apply(self, event: Event) -> None:
        if not isinstance(event, ScheduleDefined | ScheduleRemoved) or (event.vhost, event.app) != (self.vhost,
                                                                                                   self.app):
            return
        if isinstance(event, ScheduleDefined):
            self.channels[event.name] = Schedule.from_stored(event.schedule)
        else:
            self.channels.pop(event.name, None)
