"""Multiplex channels (OME's Multiplex provider): checking a profile, its ``.mux`` file, and the channel set.

A profile arrives as multiplexChannels JSON (POST) or as a ``{stream}.mux`` XML file in the app's MuxFilesDir.
Both are checked here into one :class:`kiln.events.multiplex.Multiplex`, with OME's error texts
(``multiplex_profile.cpp``); the XML is rendered back the way OME saves it. :class:`AppMultiplexes` decides the
API's commands on an app's channels: 400 ``Invalid request body`` for a body that is not an object, 403 when the
app has no Multiplex provider, 400 for a profile OME cannot read, 409 when the name is taken.

Refused by Kiln where OME accepts: a source URL that is not ``stream://{vhost}/{app}/{stream}`` (the only kind a
channel takes tracks from), and an output stream name that cannot name a file in MuxFilesDir.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from kiln.domain.errors import Conflict, Forbidden, Invalid, NotFound
from kiln.events.base import Event
from kiln.events.multiplex import STREAM_SCHEME, Multiplex, Playlist, Rendition, SourceStream, TrackMapping
from kiln.events.streams import MultiplexDefined, MultiplexRemoved

FILE_EXTENSION = "mux"


class MultiplexError(Invalid):
    """A profile OME would not load (400 through the API; a file with one is logged and skipped)."""


def _clean(value: str, what: str) -> str:
    """A text the ``.mux`` file must carry as given: XML 1.0 cannot hold control characters (and turns a CR into a
    LF), so a profile holding one would be written as a file that no longer reads back (OME writes it anyway)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF or ord(c) in (0xFFFE, 0xFFFF)
           for c in value):
        raise MultiplexError(f"{what} must not hold control characters: {value!r}")
    return value


def _name(value: str) -> str:
    if not value or "/" in value or value in (".", "..") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        # it names the channel's file in MuxFilesDir (and shows in log lines)
        raise MultiplexError(f"Invalid stream name: [{value}]")
    return value


def _url(value: str) -> str:
    """``stream://{vhost}/{app}/{stream}``: OME's ``ov::Url::Parse`` must read it; Kiln takes only stream URLs."""
    if not value.lower().startswith(STREAM_SCHEME):
        if "://" not in value:
            raise MultiplexError(f"Failed to parse url: {value}")
        raise MultiplexError(f"Kiln multiplexes only stream://{{vhost}}/{{app}}/{{stream}} sources: {value}")
    parts = value[len(STREAM_SCHEME):].split("/")
    if len(parts) != 3 or not all(parts):
        raise MultiplexError(f"Failed to parse url: {value}")
    return STREAM_SCHEME + "/".join(parts)


def _mapped(mappings: list[TrackMapping]) -> tuple[TrackMapping, ...]:
    """OME keeps a source's track map in a ``std::map`` by source track name: sorted, the first of a name kept."""
    kept: dict[str, TrackMapping] = {}
    for m in mappings:
        kept.setdefault(m.source_track_name, m)
    return tuple(kept[k] for k in sorted(kept))


def _check_renditions(playlists: list[Playlist], new_names: set[str], where: str) -> None:
    for playlist in playlists:
        for r in playlist.renditions:
            for kind, variant in (("video", r.video), ("audio", r.audio)):
                if variant and variant not in new_names:
                    raise MultiplexError(f"Failed to find {kind} variant name {variant} in {where}")


# --- JSON (the API) ---------------------------------------------------------------------------------------


def _text(value: Any, missing: str) -> str:
    """jsoncpp's ``asString``: strings as they are, numbers and booleans as text; null is missing."""
    if value is None:
        raise MultiplexError(missing)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return _clean(str(value), _what(missing))
    raise MultiplexError(f"{_what(missing)} must be a string")


def _what(missing: str) -> str:
    return missing.removeprefix("Failed to find ").removesuffix(" object").removesuffix(" node") or "a name"


def _json_int(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MultiplexError(f"{what} must be an integer")
    return value


def _json_bool(value: Any, default: bool, what: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise MultiplexError(f"{what} must be a boolean")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MultiplexError(f"{what} must be an array")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MultiplexError(f"{what} must be an object")
    return value


def _json_sources(body: dict[str, Any]) -> tuple[tuple[SourceStream, ...], set[str]]:
    if body.get("sourceStreams") is None:
        raise MultiplexError("Failed to find sourceStreams object")
    sources = []
    new_names: set[str] = set()
    for item in _array(body["sourceStreams"], "sourceStreams"):
        item = _object(item, "sourceStreams item")
        name = _text(item.get("name"), "Failed to find sourceStreams/name object")
        url = _url(_text(item.get("url"), "Failed to find sourceStreams/url object"))
        if item.get("trackMap") is None:
            raise MultiplexError("Failed to find sourceStreams/trackMap object")
        mappings = []
        for track in _array(item["trackMap"], "trackMap"):
            track = _object(track, "trackMap item")
            source = _text(track.get("sourceTrackName"), "Failed to find sourceStreams/trackMap/sourceTrackName object")
            new = _text(track.get("newTrackName"), "Failed to find sourceStreams/trackMap/newTrackName object")
            mappings.append(TrackMapping(source, new, _json_int(track.get("bitrateConf"), "bitrateConf"),
                                         _json_int(track.get("framerateConf"), "framerateConf")))
            new_names.add(new)
        sources.append(SourceStream(name, url, _mapped(mappings)))
    return tuple(sources), new_names


def _json_playlists(body: dict[str, Any]) -> list[Playlist]:
    out = []
    for item in _array(body.get("playlists"), "playlists"):
        item = _object(item, "playlists item")
        name = _text(item.get("name"), "Failed to find playlists/name object")
        file_name = _text(item.get("fileName"), "Failed to find playlists/fileName object")
        options = item.get("options")
        options = {} if options is None else _object(options, "options")
        depth = options.get("hlsChunklistPathDepth")
        renditions = []
        for r in _array(item.get("renditions"), "renditions"):
            r = _object(r, "renditions item")
            rname = _text(r.get("name"), "Failed to find playlists/renditions/name object")
            video = "" if r.get("video") is None else _text(r["video"], "playlists/renditions/video")
            audio = "" if r.get("audio") is None else _text(r["audio"], "playlists/renditions/audio")
            video_hint = r.get("videoIndexHint")
            audio_hint = r.get("audioIndexHint")
            renditions.append(Rendition(rname, video, audio,
                                        -1 if video_hint is None else _json_int(video_hint, "videoIndexHint"),
                                        -1 if audio_hint is None else _json_int(audio_hint, "audioIndexHint")))
        out.append(Playlist(name, file_name, _json_bool(options.get("webrtcAutoAbr"), False, "webrtcAutoAbr"),
                            -1 if depth is None else _json_int(depth, "hlsChunklistPathDepth"),
                            _json_bool(options.get("enableTsPackaging"), False, "enableTsPackaging"),
                            tuple(renditions)))
    return out


def multiplex_from_json(body: Any) -> Multiplex:
    """POST multiplexChannels' body, checked as OME's ``MultiplexProfile::LoadFromJsonObject``."""
    if not isinstance(body, dict):
        raise Invalid("Invalid request body")
    output = body.get("outputStream")
    if output is None:
        raise MultiplexError("Failed to find outputStream object")
    output = _object(output, "outputStream")
    name = _name(_text(output.get("name"), "Failed to find outputStream/name object"))
    bypass = _json_bool(output.get("bypassTranscoder"), True, "bypassTranscoder")
    sources, new_names = _json_sources(body)
    playlists = _json_playlists(body)
    _check_renditions(playlists, new_names, "SourceStream/TrackMap object")
    return Multiplex(name, bypass, sources, tuple(playlists))


# --- XML (.mux files) ---------------------------------------------------------------------------------------


def _xml_bool(text: str | None, default: bool) -> bool:
    """pugixml's as_bool: true when the text starts with 1, t, T, y or Y."""
    if text is None:
        return default
    return text.strip()[:1] in ("1", "t", "T", "y", "Y")


def _xml_int(text: str | None, default: int) -> int:
    """pugixml's as_int: the leading integer, 0 when there is none."""
    if text is None:
        return default
    digits = text.strip()
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    n = 0
    for c in digits:
        if not c.isdigit():
            break
        n = n * 10 + int(c)
    return sign * n


_TRACK_MAP = "SourceStreams/SourceStream/TrackMap"


def _need(node: ET.Element, tag: str, missing: str) -> str:
    found = node.find(tag)
    if found is None:
        raise MultiplexError(missing)
    return _clean(found.text or "", _what(missing))


def multiplex_from_xml(data: bytes) -> Multiplex:
    """A ``.mux`` file, read as OME's ``MultiplexProfile::LoadFromXMLFile``."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MultiplexError(f"Failed to load schedule file: {exc}") from None  # (sic: OME's text)
    except (LookupError, ValueError) as exc:  # the XML declaration names an encoding expat cannot read
        raise MultiplexError(f"Failed to load schedule file: unsupported encoding: {exc}") from None
    if root.tag != "Multiplex":
        raise MultiplexError("Failed to find root node")
    output = root.find("OutputStream")
    if output is None:
        raise MultiplexError("Failed to find OutputStream node")
    name = _name(_need(output, "Name", "Failed to find Name node"))
    bypass = _xml_bool(output.findtext("BypassTranscoder"), True)
    sources = []
    new_names: set[str] = set()
    streams = root.find("SourceStreams")
    for node in streams.findall("SourceStream") if streams is not None else []:
        sname = _need(node, "Name", "Failed to find SourceStreams/SourceStream/Name node")
        url = _url(_need(node, "Url", "Failed to find SourceStreams/SourceStream/Url node"))
        mappings = []
        track_map = node.find("TrackMap")
        for track in track_map.findall("Track") if track_map is not None else []:
            source = _need(track, "SourceTrackName", f"Failed to find {_TRACK_MAP}/SourceTrackName node")
            new = _need(track, "NewTrackName", f"Failed to find {_TRACK_MAP}/NewTrackName node")
            mappings.append(TrackMapping(source, new, _xml_int(track.findtext("BitrateConf"), 0),
                                         _xml_int(track.findtext("FramerateConf"), 0)))
            new_names.add(new)
        sources.append(SourceStream(sname, url, _mapped(mappings)))
    playlists = []
    lists = root.find("Playlists")
    for node in lists.findall("Playlist") if lists is not None else []:
        pname = _need(node, "Name", "Failed to find Playlists/Playlist/Name node")
        file_name = _need(node, "FileName", "Failed to find Playlists/Playlist/FileName node")
        options = node.find("Options")
        opts = options if options is not None else ET.Element("Options")
        depth = opts.findtext("HLSChunklistPathDepth")
        if depth is None:
            depth = opts.findtext("HlsChunklistPathDepth")
        renditions = []
        for r in node.findall("Rendition"):
            rname = _need(r, "Name", "Failed to find Playlists/Playlist/Rendition/Name node")
            renditions.append(Rendition(rname, _clean(r.findtext("Video") or "", "Rendition/Video"),
                                        _clean(r.findtext("Audio") or "", "Rendition/Audio"),
                                        _xml_int(r.findtext("VideoIndexHint"), -1),
                                        _xml_int(r.findtext("AudioIndexHint"), -1)))
        playlists.append(Playlist(pname, file_name, _xml_bool(opts.findtext("WebRtcAutoAbr"), False),
                                  _xml_int(depth, -1), _xml_bool(opts.findtext("EnableTsPackaging"), False),
                                  tuple(renditions)))
    _check_renditions(playlists, new_names, "SourceStream/TrackMap/NewTrackName")
    return Multiplex(name, bypass, tuple(sources), tuple(playlists))


def multiplex_to_xml(mux: Multiplex) -> bytes:
    """The ``.mux`` file OME's ``SaveToXMLFile`` writes for this profile."""
    root = ET.Element("Multiplex")
    output = ET.SubElement(root, "OutputStream")
    ET.SubElement(output, "Name").text = mux.name
    ET.SubElement(output, "BypassTranscoder").text = _xml_text(mux.bypass_transcoder)
    streams = ET.SubElement(root, "SourceStreams")
    for source in mux.sources:
        node = ET.SubElement(streams, "SourceStream")
        ET.SubElement(node, "Name").text = source.name
        ET.SubElement(node, "Url").text = source.url
        track_map = ET.SubElement(node, "TrackMap")
        for m in source.track_map:
            track = ET.SubElement(track_map, "Track")
            ET.SubElement(track, "SourceTrackName").text = m.source_track_name
            ET.SubElement(track, "NewTrackName").text = m.new_track_name
            if m.bitrate_conf != 0:
                ET.SubElement(track, "BitrateConf").text = str(m.bitrate_conf)
            if m.framerate_conf != 0:
                ET.SubElement(track, "FramerateConf").text = str(m.framerate_conf)
    if mux.playlists:
        lists = ET.SubElement(root, "Playlists")
        for p in mux.playlists:
            node = ET.SubElement(lists, "Playlist")
            ET.SubElement(node, "Name").text = p.name
            ET.SubElement(node, "FileName").text = p.file_name
            options = ET.SubElement(node, "Options")
            if p.webrtc_auto_abr:
                ET.SubElement(options, "WebRtcAutoAbr").text = "true"
            if p.hls_chunklist_path_depth != -1:
                ET.SubElement(options, "HLSChunklistPathDepth").text = str(p.hls_chunklist_path_depth)
            if p.enable_ts_packaging:
                ET.SubElement(options, "EnableTsPackaging").text = "true"
            for r in p.renditions:
                rendition = ET.SubElement(node, "Rendition")
                ET.SubElement(rendition, "Name").text = r.name
                if r.video:
                    ET.SubElement(rendition, "Video").text = r.video
                if r.audio:
                    ET.SubElement(rendition, "Audio").text = r.audio
                if r.video_index_hint >= 0:  # Kiln keeps a hint the file gave (OME's save drops it)
                    ET.SubElement(rendition, "VideoIndexHint").text = str(r.video_index_hint)
                if r.audio_index_hint >= 0:
                    ET.SubElement(rendition, "AudioIndexHint").text = str(r.audio_index_hint)
    ET.indent(root, space="\t")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0"?>\n' + body + b"\n"


def _xml_text(value: bool) -> str:
    return "true" if value else "false"


# --- the app's channels -----------------------------------------------------------------------------------


NO_APPLICATION = "Could not get the multiplex application"


def channel_not_found_text(name: str) -> str:
    return f"Could not get the multiplex stream <{name}>"


@dataclass(frozen=True)
class CreateChannel:
    body: Any
    live_streams: frozenset[str] = frozenset()  # the app's live stream names (a channel may not take one)


@dataclass(frozen=True)
class DeleteChannel:
    name: str


@dataclass(frozen=True)
class LoadChannelFile:
    """A ``.mux`` file found in MuxFilesDir at start that no journaled channel names (OME loads those)."""

    multiplex: Multiplex
    live_streams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChangeChannelFile:
    """A channel's ``.mux`` file changed while Kiln runs: OME deletes the channel and creates it anew from it."""

    multiplex: Multiplex


@dataclass(frozen=True)
class RemoveChannelFile:
    """A channel's ``.mux`` file is gone from MuxFilesDir (seen missing three times in a row, as OME checks)."""

    name: str


ChannelCommand = CreateChannel | DeleteChannel | LoadChannelFile | ChangeChannelFile | RemoveChannelFile


class AppMultiplexes:
    """An app's multiplex channels, by output stream name. ``enabled``: the app has a Multiplex provider."""

    def __init__(self, vhost: str, app: str, enabled: bool) -> None:
        self.vhost = vhost
        self.app = app
        self.enabled = enabled
        self.channels: dict[str, Multiplex] = {}

    def channel(self, name: str) -> Multiplex:
        """OME's GET one and DELETE: 404 without the provider (no multiplex application), then by name."""
        if not self.enabled:
            raise NotFound(NO_APPLICATION)
        found = self.channels.get(name)
        if found is None:
            raise NotFound(channel_not_found_text(name))
        return found

    def decide(self, command: ChannelCommand, now: float) -> list[Event]:
        if isinstance(command, CreateChannel | LoadChannelFile):
            if isinstance(command, CreateChannel) and not isinstance(command.body, dict):
                raise Invalid("Invalid request body")
            if not self.enabled:
                raise Forbidden("Forbidden")
            mux = command.multiplex if isinstance(command, LoadChannelFile) else multiplex_from_json(command.body)
            if mux.name in self.channels or mux.name in command.live_streams:
                raise Conflict(f"Stream '{mux.name}' already exists")
            source = "file" if isinstance(command, LoadChannelFile) else "api"
            return [MultiplexDefined(self.vhost, self.app, mux.name, mux.to_stored(), now, source)]
        if isinstance(command, ChangeChannelFile):
            self.channel(command.multiplex.name)
            mux = command.multiplex
            return [MultiplexDefined(self.vhost, self.app, mux.name, mux.to_stored(), now, "file")]
        self.channel(command.name)
        reason = "file deleted" if isinstance(command, RemoveChannelFile) else "deleted by API"
        return [MultiplexRemoved(self.vhost, self.app, command.name, reason)]

    def apply(self, event: Event) -> None:
        if not isinstance(event, MultiplexDefined | MultiplexRemoved) \
                or (event.vhost, event.app) != (self.vhost, self.app):
            return
        if isinstance(event, MultiplexDefined):
            self.channels[event.name] = Multiplex.from_stored(event.multiplex)
        else:
            self.channels.pop(event.name, None)
