"""A multiplex channel's profile as plain data (OME's ``.mux`` file and multiplexChannels JSON).

Declared once here, as the schedule is, because three layers read it: the domain checks a request or a file into
one, events carry it (as :meth:`Multiplex.to_json`), and the media side builds the channel from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STREAM_SCHEME = "stream://"


@dataclass(frozen=True)
class TrackMapping:
    source_track_name: str  # a variant name of the source's output stream (an encode's Name, e.g. bypass_video)
    new_track_name: str
    bitrate_conf: int = 0
    framerate_conf: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sourceTrackName": self.source_track_name, "newTrackName": self.new_track_name}
        if self.bitrate_conf != 0:
            out["bitrateConf"] = self.bitrate_conf
        if self.framerate_conf != 0:
            out["framerateConf"] = self.framerate_conf
        return out


@dataclass(frozen=True)
class SourceStream:
    name: str
    url: str  # stream://{vhost}/{app}/{stream}
    track_map: tuple[TrackMapping, ...] = ()  # sorted by source track name, one per name (OME's std::map)

    @property
    def target(self) -> tuple[str, str, str]:
        """(vhost, app, stream) the URL names; checked when the profile was read."""
        vhost, app, stream = self.url[len(STREAM_SCHEME):].split("/")
        return vhost, app, stream

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url,
                "trackMap": [t.to_json() for t in self.track_map] if self.track_map else None}


@dataclass(frozen=True)
class Rendition:
    name: str
    video: str = ""  # a new track name, or "" (none)
    audio: str = ""
    video_index_hint: int = -1
    audio_index_hint: int = -1

    def to_json(self) -> dict[str, Any]:
        """OME's ToJsonObject: name, and video/audio when set (index hints are read, never written back)."""
        out: dict[str, Any] = {"name": self.name}
        if self.video:
            out["video"] = self.video
        if self.audio:
            out["audio"] = self.audio
        return out


@dataclass(frozen=True)
class Playlist:
    name: str
    file_name: str
    webrtc_auto_abr: bool = False
    hls_chunklist_path_depth: int = -1
    enable_ts_packaging: bool = False
    renditions: tuple[Rendition, ...] = ()

    def options_json(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if self.webrtc_auto_abr:
            out["webrtcAutoAbr"] = True
        if self.hls_chunklist_path_depth != -1:
            out["hlsChunklistPathDepth"] = self.hls_chunklist_path_depth
        if self.enable_ts_packaging:
            out["enableTsPackaging"] = True
        return out or None  # jsoncpp renders an object nobody set a key in as null

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "fileName": self.file_name, "options": self.options_json(),
                "renditions": [r.to_json() for r in self.renditions] if self.renditions else None}

    def to_profile(self) -> dict[str, Any]:
        """The playlist as an output profile's ``playlists`` entry (what the publishers read), with the index
        hints a rendition may give."""
        options: dict[str, Any] = {"webrtcAutoAbr": self.webrtc_auto_abr, "enableTsPackaging": self.enable_ts_packaging}
        if self.hls_chunklist_path_depth != -1:
            options["hlsChunklistPathDepth"] = self.hls_chunklist_path_depth
        renditions = []
        for r in self.renditions:
            rendition: dict[str, Any] = {"name": r.name}
            if r.video:
                rendition["video"] = r.video
            if r.audio:
                rendition["audio"] = r.audio
            if r.video_index_hint >= 0:
                rendition["videoIndexHint"] = r.video_index_hint
            if r.audio_index_hint >= 0:
                rendition["audioIndexHint"] = r.audio_index_hint
            renditions.append(rendition)
        return {"name": self.name, "fileName": self.file_name, "options": options, "renditions": renditions}


@dataclass(frozen=True)
class Multiplex:
    name: str  # the output stream's name
    bypass_transcoder: bool = True
    sources: tuple[SourceStream, ...] = ()
    playlists: tuple[Playlist, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """OME's ``MultiplexProfile::ToJsonObject`` (GET one, and what events store)."""
        out: dict[str, Any] = {"outputStream": {"name": self.name, "bypassTranscoder": self.bypass_transcoder},
                               "sourceStreams": [s.to_json() for s in self.sources] if self.sources else None}
        if self.playlists:
            out["playlists"] = [p.to_json() for p in self.playlists]
        return out

    def to_stored(self) -> dict[str, Any]:
        """What an event keeps: the JSON form plus the rendition index hints OME's JSON leaves out."""
        out = self.to_json()
        out["indexHints"] = [[[r.video_index_hint, r.audio_index_hint] for r in p.renditions] for p in self.playlists]
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Multiplex:
        """The profile an event stored (:meth:`to_stored`); trusted: it was checked before it was journaled."""
        hints = data.get("indexHints") or []
        playlists = []
        for i, p in enumerate(data.get("playlists") or []):
            options = p.get("options") or {}
            renditions = []
            for j, r in enumerate(p.get("renditions") or []):
                video_hint, audio_hint = hints[i][j] if i < len(hints) and j < len(hints[i]) else (-1, -1)
                renditions.append(Rendition(str(r["name"]), str(r.get("video", "")), str(r.get("audio", "")),
                                            int(video_hint), int(audio_hint)))
            playlists.append(Playlist(str(p["name"]), str(p["fileName"]), bool(options.get("webrtcAutoAbr", False)),
                                      int(options.get("hlsChunklistPathDepth", -1)),
                                      bool(options.get("enableTsPackaging", False)), tuple(renditions)))
        sources = tuple(
            SourceStream(str(s["name"]), str(s["url"]), tuple(
                TrackMapping(str(t["sourceTrackName"]), str(t["newTrackName"]), int(t.get("bitrateConf", 0)),
                             int(t.get("framerateConf", 0))) for t in s.get("trackMap") or []))
            for s in data.get("sourceStreams") or [])
        output = data["outputStream"]
        return cls(str(output["name"]), bool(output["bypassTranscoder"]), sources, tuple(playlists))
