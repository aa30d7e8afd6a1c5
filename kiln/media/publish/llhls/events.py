"""``sendEvent`` bodies: validation with OME's messages (rest-spec §11.1) and the ID3 tag to inject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.media.formats.id3 import Id3Frame, build_id3v24_tag

FORMATS = ("id3v2", "cue", "scte35")
EVENT_TYPES = ("video", "audio", "event")


class EventBodyError(ValueError):
    """A sendEvent body OME refuses (400); ``text`` is OME's message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class StreamEvent:
    event_format: str
    event_type: str
    urgent: bool
    events: list[dict[str, Any]]
    tag: bytes = b""      # the ID3v2.4 tag (id3v2 only)


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_event(body: Any) -> StreamEvent:
    obj = body if isinstance(body, dict) else {}
    fmt, events = obj.get("eventFormat"), obj.get("events")
    if not isinstance(fmt, str) or not isinstance(events, list) or not events:
        raise EventBodyError("eventFormat(string) and events(array) are required")
    fmt_l = fmt.lower()
    if fmt_l not in FORMATS:
        raise EventBodyError(f"eventFormat is not supported: [{fmt}]")
    tag = b""
    if fmt_l == "id3v2":
        frames: list[Id3Frame] = []
        for ev in events:
            ev = ev if isinstance(ev, dict) else {}
            frame_type = ev.get("frameType")
            if not isinstance(frame_type, str):
                raise EventBodyError("frameType is required in events")
            info = _text(ev.get("info"))
            data = _text(ev.get("data"))
            if frame_type.upper() == "TXXX":
                frames.append(Id3Frame.txxx(info, data))
            elif frame_type.upper() == "PRIV":
                frames.append(Id3Frame.priv(info, data.encode("utf-8")))
            elif frame_type.startswith("T"):
                if len(frame_type.encode("utf-8")) != 4:
                    raise EventBodyError(f"frameType is not supported: [{frame_type}]")
                frames.append(Id3Frame.text(frame_type, data))
            else:
                raise EventBodyError(f"frameType is not supported: [{frame_type}]")
        tag = build_id3v24_tag(frames)
    elif fmt_l == "cue":
        first = events[0] if isinstance(events[0], dict) else {}
        if not isinstance(first.get("cueType"), str):
            raise EventBodyError("cueType is required in events")
        if first["cueType"] not in ("out", "cont", "in"):
            raise EventBodyError(f"cueType is not supported: [{first['cueType']}]")
    else:
        first = events[0] if isinstance(events[0], dict) else {}
        command = first.get("spliceCommand", "spliceInsert")
        if command != "spliceInsert":
            raise EventBodyError("Now only spliceInsert is supported")
        if not _uint(first.get("id")):
            raise EventBodyError("id is required in events")
        if not isinstance(first.get("type"), str):
            raise EventBodyError("type is required in events")
        if first["type"] not in ("out", "in"):
            raise EventBodyError("type must be 'out' or 'in'")
    event_type = obj.get("eventType", "event")
    if not isinstance(event_type, str):
        raise EventBodyError("eventType must be string")
    if event_type.lower() not in EVENT_TYPES:
        raise EventBodyError(f"eventType is not supported: [{event_type}]")
    urgent = obj.get("urgent") is True
    return StreamEvent(fmt_l, event_type.lower(), urgent, [e for e in events if isinstance(e, dict)], tag)
