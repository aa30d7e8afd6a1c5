"""A scheduled channel's schedule as plain data (OME's ``.sch`` file and scheduledChannels JSON).

Declared once here, as specs are, because three layers read it: the domain checks a request into one,
events carry it (as its JSON, :meth:`Schedule.to_json`), and the media side plays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FILE_SCHEME = "file://"
STREAM_SCHEME = "stream://"
ERROR_TOLERANCE_MS = 500  # OME's Stream.ErrorToleranceDurationMs default


@dataclass(frozen=True)
class Item:
    url: str
    start_ms: int = 0
    duration_ms: int = -1  # -1: to the end of the file (a stream:// item: while the stream is live)
    fallback_on_err: bool = True  # OME's fallbackOnErr: the fallback program plays while this item cannot

    @property
    def file_path(self) -> str:
        """The path under MediaRootDir a ``file://`` URL names (OME appends it to the root as written)."""
        return self.url[len(FILE_SCHEME):] if self.url.lower().startswith(FILE_SCHEME) else ""

    @property
    def stream_target(self) -> tuple[str, str, str] | None:
        """(vhost, app, stream) a ``stream://`` URL names (checked when the schedule was read); None for files."""
        if not self.url.lower().startswith(STREAM_SCHEME):
            return None
        vhost, app, stream = self.url[len(STREAM_SCHEME):].split("/")
        return vhost, app, stream

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "start": self.start_ms, "duration": self.duration_ms}


@dataclass(frozen=True)
class Program:
    name: str
    scheduled: str      # as given (OME echoes it)
    scheduled_ms: int   # Unix time in ms
    repeat: bool
    items: tuple[Item, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "scheduled": self.scheduled, "repeat": self.repeat,
                "items": [i.to_json() for i in self.items]}


@dataclass(frozen=True)
class AudioMapItem:
    """One ``audioMap`` item: the channel's audio track at its position (the files' audio tracks in order)
    is shown to players under this name, language and characteristics."""

    name: str = ""
    language: str = ""
    characteristics: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language, "characteristics": self.characteristics}


@dataclass(frozen=True)
class ChannelStream:
    name: str
    bypass_transcoder: bool = False
    video_track: bool = True
    audio_track: bool = True
    error_tolerance_ms: int = ERROR_TOLERANCE_MS  # a stream:// item silent this long has ended (OME's Pop timeout)
    audio_map: tuple[AudioMapItem, ...] = ()  # empty: one audio track, unlabelled

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "bypassTranscoder": self.bypass_transcoder,
                               "videoTrack": self.video_track, "audioTrack": self.audio_track,
                               "errorToleranceDurationMs": self.error_tolerance_ms}
        if self.audio_map:  # only when set: a schedule without one reads (and is stored) as before AudioMap
            out["audioMap"] = [item.to_json() for item in self.audio_map]
        return out


@dataclass(frozen=True)
class Schedule:
    stream: ChannelStream
    fallback: tuple[Item, ...] | None = None  # None: no FallbackProgram element
    programs: tuple[Program, ...] = ()

    @property
    def name(self) -> str:
        return self.stream.name

    def program_end_ms(self, index: int) -> int | None:
        """A program ends when the next one is scheduled; the last never ends (None)."""
        return self.programs[index + 1].scheduled_ms if index + 1 < len(self.programs) else None

    def to_json(self) -> dict[str, Any]:
        """OME's JSON form (GET one, and what events store)."""
        out: dict[str, Any] = {"stream": self.stream.to_json()}
        if self.fallback is not None:
            out["fallbackProgram"] = {"name": "fallback", "scheduled": "1970-01-01T00:00:00Z", "repeat": True,
                                      "items": [i.to_json() for i in self.fallback]}
        out["programs"] = [p.to_json() for p in self.programs]
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Schedule:
        """The schedule an event stored (:meth:`to_json` output with ``scheduledMs`` added per program);
        trusted: it was checked before it was journaled."""
        s = data["stream"]
        fallback = data.get("fallbackProgram")
        audio_map = tuple(AudioMapItem(str(i["name"]), str(i["language"]), str(i["characteristics"]))
                          for i in s.get("audioMap") or ())
        return cls(ChannelStream(str(s["name"]), bool(s["bypassTranscoder"]), bool(s["videoTrack"]),
                                 bool(s["audioTrack"]),
                                 int(s.get("errorToleranceDurationMs", ERROR_TOLERANCE_MS)),  # older events: none
                                 audio_map=audio_map),
                   None if fallback is None else tuple(_item(i) for i in fallback["items"]),
                   tuple(Program(str(p["name"]), str(p["scheduled"]), int(p["scheduledMs"]), bool(p["repeat"]),
                                 tuple(_item(i) for i in p["items"])) for p in data.get("programs", [])))

    def to_stored(self) -> dict[str, Any]:
        """:meth:`to_json` with what OME reads but never shows: each program's ``scheduledMs``, and
        ``fallbackOnErr`` on the items where it is false."""
        out = self.to_json()
        for stored, program in zip(out["programs"], self.programs, strict=True):
            stored["scheduledMs"] = program.scheduled_ms
            _store_items(stored["items"], program.items)
        if self.fallback is not None:
            _store_items(out["fallbackProgram"]["items"], self.fallback)
        return out


def _store_items(stored: list[dict[str, Any]], items: tuple[Item, ...]) -> None:
    for data, item in zip(stored, items, strict=True):
        if not item.fallback_on_err:
            data["fallbackOnErr"] = False


def _item(data: dict[str, Any]) -> Item:
    return Item(str(data["url"]), int(data["start"]), int(data["duration"]), bool(data.get("fallbackOnErr", True)))
