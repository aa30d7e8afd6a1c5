"""A live stream's OME JSON (rest-spec §8.3: GET stream) from a stream snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kiln.config.values import as_int, is_true
from kiln.timefmt import format_time


class MeterReading(Protocol):
    @property
    def bitrate_avg(self) -> int: ...
    @property
    def bitrate_latest(self) -> int: ...
    @property
    def framerate_avg(self) -> float: ...
    @property
    def framerate_latest(self) -> float: ...
    @property
    def has_bframes(self) -> bool: ...
    @property
    def key_frame_interval_avg(self) -> float: ...
    @property
    def key_frame_interval_latest(self) -> float: ...
    @property
    def frames_since_key(self) -> int: ...


class TrackSnapshot(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def codec(self) -> str: ...
    @property
    def bypass(self) -> bool: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def bitrate_conf(self) -> int: ...
    @property
    def framerate_conf(self) -> float: ...
    @property
    def key_frame_interval_conf(self) -> float: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def meter(self) -> MeterReading: ...
    @property
    def unavailable(self) -> str: ...
    @property
    def configured(self) -> bool: ...


class OutputSnapshot(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def tracks(self) -> Sequence[TrackSnapshot]: ...
    @property
    def playlists(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def warning(self) -> str: ...


class StreamSnapshot(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def created_time(self) -> float: ...
    @property
    def source_type(self) -> str: ...
    @property
    def source_url(self) -> str: ...
    @property
    def input_tracks(self) -> Sequence[TrackSnapshot]: ...
    @property
    def outputs(self) -> Sequence[OutputSnapshot]: ...


def stream_json(snap: StreamSnapshot) -> dict[str, Any]:
    inp: dict[str, Any] = {
        "createdTime": format_time(snap.created_time),
        "sourceType": snap.source_type,
        "tracks": [track_json(t) for t in snap.input_tracks],
    }
    if snap.source_url:
        inp["sourceUrl"] = snap.source_url
    outputs = [output_json(out) for out in snap.outputs]
    return {"name": snap.name, "input": inp, "outputs": outputs}


def output_json(out: OutputSnapshot) -> dict[str, Any]:
    shown: dict[str, Any] = {"name": out.name, "tracks": [track_json(t) for t in out.tracks],
                             "playlists": [playlist_json(p) for p in out.playlists]}
    if out.warning:
        shown["lastWarning"] = out.warning  # Kiln's addition (as on record tasks): OME clients ignore it
    return shown


def track_json(t: TrackSnapshot) -> dict[str, Any]:
    if t.kind == "Data":
        return {"id": t.id, "type": "Data"}
    if t.configured:
        return configured_track_json(t)
    m = t.meter
    out: dict[str, Any] = {"id": t.id, "type": t.kind}
    if t.name:
        out["name"] = t.name
    if t.kind == "Video":
        framerate = t.framerate_conf or m.framerate_avg
        out["video"] = {
            "bypass": t.bypass, "codec": t.codec,
            "width": t.width, "maxWidth": t.width, "height": t.height, "maxHeight": t.height,
            "bitrate": t.bitrate_conf or m.bitrate_avg, "bitrateConf": t.bitrate_conf,
            "bitrateAvg": m.bitrate_avg, "bitrateLatest": m.bitrate_latest,
            "framerate": float(round(framerate, 3)), "framerateConf": float(t.framerate_conf),
            "framerateAvg": float(round(m.framerate_avg, 3)),
            "framerateLatest": float(round(m.framerate_latest, 3)),
            "hasBframes": m.has_bframes,
            "keyFrameInterval": float(t.key_frame_interval_conf or round(m.key_frame_interval_avg, 3)),
            "keyFrameIntervalConf": float(t.key_frame_interval_conf),
            "keyFrameIntervalAvg": float(round(m.key_frame_interval_avg, 3)),
            "keyFrameIntervalLatest": float(m.key_frame_interval_latest),
            "deltaFramesSinceLastKeyFrame": m.frames_since_key,
        }
    elif t.kind == "Audio":
        out["audio"] = {
            "bypass": t.bypass, "codec": t.codec, "samplerate": t.sample_rate,
            "channel": t.channels, "bitrate": t.bitrate_conf or m.bitrate_avg,
            "bitrateConf": t.bitrate_conf, "bitrateAvg": m.bitrate_avg,
            "bitrateLatest": m.bitrate_latest,
        }
    if t.unavailable:
        out["unavailable"] = t.unavailable  # it ran, then stopped: measured values and why
    return out


def configured_track_json(t: TrackSnapshot) -> dict[str, Any]:
    """An encoded track whose encoder is not producing: its configured values, and why."""
    out: dict[str, Any] = {"id": t.id, "type": t.kind}
    if t.name:
        out["name"] = t.name
    if t.kind == "Video":
        out["video"] = {"bypass": False, "codec": t.codec, "width": t.width, "height": t.height,
                        "bitrate": t.bitrate_conf, "bitrateConf": t.bitrate_conf,
                        "framerate": t.framerate_conf, "framerateConf": t.framerate_conf}
    else:
        out["audio"] = {"bypass": False, "codec": t.codec, "samplerate": t.sample_rate, "channel": t.channels,
                        "bitrate": t.bitrate_conf, "bitrateConf": t.bitrate_conf}
    out["unavailable"] = t.unavailable
    return out


def playlist_json(p: Mapping[str, Any]) -> dict[str, Any]:
    raw_options = p.get("options")
    options: Mapping[str, Any] = raw_options if isinstance(raw_options, dict) else {}
    renditions = p.get("renditions") or p.get("rendition") or []
    if isinstance(renditions, dict):
        renditions = [renditions]
    out: dict[str, Any] = {
        "options": {"webrtcAutoAbr": is_true(options.get("webRtcAutoAbr", options.get("webrtcAutoAbr"))),
                    "hlsChunklistPathDepth": as_int(options.get("hlsChunklistPathDepth"), -1),
                    "enableTsPackaging": is_true(options.get("enableTsPackaging"))},
        "renditions": [],
    }
    for key in ("name", "fileName"):
        if p.get(key):
            out[key] = str(p[key])
    for r in renditions if isinstance(renditions, list) else []:
        if not isinstance(r, dict):
            continue
        item = {}
        for src, dst in (("name", "name"), ("video", "videoVariantName"), ("audio", "audioVariantName")):
            if r.get(src):
                item[dst] = str(r[src])
        out["renditions"].append(item)
    return out
