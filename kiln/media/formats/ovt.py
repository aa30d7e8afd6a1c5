"""OVT (OvenTransport), OME's origin → edge relay protocol: framing, control messages, media packets.

Pure: bytes and JSON in, values out (media spec §3). Everything a peer sends is checked here, so a
garbled header, an oversized unit or a describe with a wrong field type is an :class:`OvtError`
naming what was wrong, never a crash of the publisher or the pull.

The enum numbers are OME's C++ ordinals of v0.19/v0.20 (spec §3.5); they have moved between OME
releases, so they live in one table per generation (``GENERATIONS``) and peers of another
generation would need a table of their own.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from kiln.media.formats.codecs import aac, nal
from kiln.media.formats.codecs import h264 as h264c
from kiln.media.formats.codecs import h265 as h265c
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.model import Codec, MediaKind, Packet, Track


class OvtError(ValueError):
    """A peer sent something that is not OVT (framing, message or media unit)."""


HEADER = struct.Struct(">BBHQIH")
HEADER_SIZE = HEADER.size  # 18
MAX_PACKET = 32768
MAX_PAYLOAD = MAX_PACKET - HEADER_SIZE  # 32750
VERSION_BITS = 0x40
MARKER_BIT = 0x20
TYPE_REQUEST = 10
TYPE_RESPONSE = 20
TYPE_MEDIA = 30
PAYLOAD_TYPES = (TYPE_REQUEST, TYPE_RESPONSE, TYPE_MEDIA)
MAX_MESSAGE = 1 << 20     # a describe of many renditions stays far below this
MAX_MEDIA_UNIT = 32 << 20  # one access unit (a 4K keyframe is a few MB)
SIGNALLING_VERSION = 0x12


@dataclass(frozen=True)
class OvtHeader:
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    session_id: int
    length: int


def parse_header(data: bytes) -> OvtHeader:
    if len(data) != HEADER_SIZE:
        raise OvtError(f"OVT header needs {HEADER_SIZE} bytes, got {len(data)}")
    first, ptype, seq, ts, session, length = HEADER.unpack(data)
    if first & 0xC0 != VERSION_BITS:
        raise OvtError(f"OVT version {first >> 6} is not 1 (first byte 0x{first:02x})")
    if ptype not in PAYLOAD_TYPES:
        raise OvtError(f"OVT payload type {ptype} is unknown")
    if length > MAX_PAYLOAD:
        raise OvtError(f"OVT payload length {length} exceeds {MAX_PAYLOAD}")
    return OvtHeader(bool(first & MARKER_BIT), ptype, seq, ts, session, length)


def packetize(payload_type: int, unit: bytes, *, sequence: int = 0, timestamp: int = 0,
              session_id: int = 0) -> tuple[bytes, int]:
    """``unit`` as OVT packets (one bytes object), and the next sequence number (16-bit rolling)."""
    out = bytearray()
    view = memoryview(unit)
    pos = 0
    ts = timestamp & 0xFFFFFFFFFFFFFFFF
    while True:
        chunk = view[pos:pos + MAX_PAYLOAD]
        pos += len(chunk)
        last = pos >= len(view)
        out += HEADER.pack(VERSION_BITS | (MARKER_BIT if last else 0), payload_type, sequence & 0xFFFF, ts,
                           session_id & 0xFFFFFFFF, len(chunk))
        out += chunk
        sequence = (sequence + 1) & 0xFFFF
        if last:
            return bytes(out), sequence


@dataclass
class Reassembler:
    """Concatenates payloads per kind (messages, media) until a marker; bounded so garbage cannot grow it."""

    _parts: dict[bool, bytearray] = field(default_factory=lambda: {False: bytearray(), True: bytearray()})

    def feed(self, header: OvtHeader, payload: bytes) -> bytes | None:
        media = header.payload_type == TYPE_MEDIA
        buf = self._parts[media]
        buf += payload
        limit = MAX_MEDIA_UNIT if media else MAX_MESSAGE
        if len(buf) > limit:
            buf.clear()
            raise OvtError(f"OVT {'media unit' if media else 'message'} exceeds {limit} bytes")
        if not header.marker:
            return None
        unit = bytes(buf)
        buf.clear()
        return unit


# -- control messages -------------------------------------------------------------------------------
APPLICATIONS = ("describe", "play", "stop")


@dataclass(frozen=True)
class Request:
    id: int
    application: str
    target: str


@dataclass(frozen=True)
class Response:
    id: int
    application: str
    code: int
    message: str
    contents: dict[str, Any] | None = None


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _json_object(unit: bytes) -> dict[str, Any]:
    try:
        value = json.loads(unit.decode("utf-8"), parse_constant=_not_json)  # NaN, Infinity: Python's, not JSON
    except (UnicodeDecodeError, ValueError) as exc:
        raise OvtError(f"OVT message is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise OvtError("OVT message is not a JSON object")
    return value


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def encode_request(req: Request) -> bytes:
    return json.dumps({"id": req.id, "application": req.application, "target": req.target}).encode()


def parse_request(unit: bytes) -> Request:
    """OME's rules: id an unsigned int, application and target strings (else the origin answers 404)."""
    obj = _json_object(unit)
    rid: Any = obj.get("id")
    app, target = obj.get("application"), obj.get("target")
    if not _uint(rid):
        raise OvtError("OVT request id is not an unsigned integer")
    if not isinstance(app, str) or not isinstance(target, str):
        raise OvtError("OVT request needs string application and target")
    return Request(int(rid), app, target)


def encode_response(resp: Response) -> bytes:
    body: dict[str, Any] = {"id": resp.id, "application": resp.application, "code": resp.code,
                            "message": resp.message}
    if resp.contents is not None:
        body["contents"] = resp.contents
    return json.dumps(body, separators=(",", ":")).encode()


def parse_response(unit: bytes) -> Response:
    obj = _json_object(unit)
    rid: Any = obj.get("id")
    code: Any = obj.get("code")
    app, message = obj.get("application"), obj.get("message", "")
    if not _uint(rid) or not isinstance(app, str) or not _uint(code) or not isinstance(message, str):
        raise OvtError("OVT response needs id, application, code and message of the right types")
    contents = obj.get("contents")
    if contents is not None and not isinstance(contents, dict):
        raise OvtError("OVT response contents is not an object")
    return Response(int(rid), app, int(code), message, contents)


# -- enums (one table per OME generation) ------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    media_types: dict[MediaKind, int]
    codec_ids: dict[Codec, int]
    bitstreams: dict[Codec, int]  # what Kiln sends for each codec (the origin's normalised format)


V0_20 = Generation(
    media_types={MediaKind.VIDEO: 0, MediaKind.AUDIO: 1, MediaKind.DATA: 2, MediaKind.SUBTITLE: 3},
    codec_ids={Codec.NONE: 0, Codec.H264: 1, Codec.H265: 2, Codec.VP8: 3, Codec.VP9: 4, Codec.AV1: 5,
               Codec.AAC: 7, Codec.MP3: 8, Codec.OPUS: 9, Codec.JPEG: 10, Codec.PNG: 11, Codec.WEBP: 12},
    bitstreams={Codec.H264: 1, Codec.H265: 4, Codec.VP8: 6, Codec.AAC: 10, Codec.OPUS: 12, Codec.MP3: 14},
)
GENERATIONS = {"0.19": V0_20, "0.20": V0_20}
GEN = V0_20
FLAG_NONE, FLAG_KEY = 1, 2
PACKET_TYPE_OVT = 0
RELAYED = (Codec.H264, Codec.H265, Codec.VP8, Codec.AAC, Codec.OPUS, Codec.MP3)  # what Kiln relays


def _reverse(table: dict[Any, int]) -> dict[int, Any]:
    return {v: k for k, v in table.items()}


# -- media units (36-byte header + data) ------------------------------------------------------------
MEDIA_HEADER = struct.Struct(">IqqqBBBBI")
MEDIA_HEADER_SIZE = MEDIA_HEADER.size  # 36


@dataclass(frozen=True)
class MediaUnit:
    track_id: int
    pts: int
    dts: int
    duration: int
    media_type: int
    flag: int
    bitstream: int
    packet_type: int
    data: bytes

    @property
    def keyframe(self) -> bool:
        return self.flag == FLAG_KEY


def encode_media(unit: MediaUnit) -> bytes:
    return MEDIA_HEADER.pack(unit.track_id, unit.pts, unit.dts, unit.duration, unit.media_type, unit.flag,
                             unit.bitstream, unit.packet_type, len(unit.data)) + unit.data


def parse_media(data: bytes) -> MediaUnit:
    if len(data) < MEDIA_HEADER_SIZE:
        raise OvtError(f"OVT media unit shorter than its {MEDIA_HEADER_SIZE}-byte header ({len(data)})")
    tid, pts, dts, dur, mtype, flag, bitstream, ptype, length = MEDIA_HEADER.unpack_from(data)
    if length != len(data) - MEDIA_HEADER_SIZE:
        raise OvtError(f"OVT media data length {length} != {len(data) - MEDIA_HEADER_SIZE} bytes received")
    return MediaUnit(tid, pts, dts, dur, mtype, flag, bitstream, ptype, data[MEDIA_HEADER_SIZE:])


# -- media payload conversion (Kiln's model <-> OME's normalised wire formats) ----------------------
H264_AUD = b"\x00\x00\x00\x01\x09\xf0"
H265_AUD = b"\x00\x00\x00\x01\x46\x01\x50"
_H264_PARAMS = frozenset({7, 8, 9})      # SPS, PPS, AUD: in-band copies of what the config holds
_H265_PARAMS = frozenset({32, 33, 34, 35})  # VPS, SPS, PPS, AUD


def _params_annexb(track: Track) -> bytes:
    try:
        if track.codec is Codec.H264:
            avc = h264c.parse_avcc(track.config)
            sets = [*avc.sps, *avc.pps]
        else:
            hevc = h265c.parse_hvcc(track.config)
            sets = [*hevc.nals_of(32), *hevc.nals_of(33), *hevc.nals_of(34)]
    except ValueError:  # CodecConfigError included: the in-band copies in the packets still carry them
        return b""
    return b"".join(b"\x00\x00\x00\x01" + bytes(s) for s in sets)


class WireEncoder:
    """One track's packets as an origin sends them (spec §3.4): H.264/H.265 Annex-B with an AUD and,
    before a keyframe, the parameter sets; AAC with ADTS headers (raw when ADTS cannot carry it)."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.media_type = GEN.media_types[track.kind]
        self.bitstream = GEN.bitstreams.get(track.codec, 0)
        self.params = _params_annexb(track) if track.codec in (Codec.H264, Codec.H265) else b""
        self.aud = H264_AUD if track.codec is Codec.H264 else H265_AUD
        self.asc: aac.AudioSpecificConfig | None = None
        if track.codec is Codec.AAC:
            try:
                self.asc = aac.parse_asc(track.config)
                aac.build_adts_header(self.asc, 0)
            except ValueError:
                self.asc, self.bitstream = None, 8  # AAC_RAW

    def unit(self, packet: Packet) -> MediaUnit:
        data: bytes = packet.data
        codec = self.track.codec
        if codec in (Codec.H264, Codec.H265):
            data = self.aud + (self.params if packet.keyframe else b"") + nal.length_prefixed_to_annexb(data)
        elif self.asc is not None:
            try:
                data = aac.build_adts_header(self.asc, len(data)) + data
            except ValueError:  # a frame too long for ADTS: sent raw (the edge accepts both)
                pass
        return MediaUnit(self.track.id, packet.pts, packet.dts, packet.duration, self.media_type,
                         FLAG_KEY if packet.keyframe else FLAG_NONE, self.bitstream, PACKET_TYPE_OVT, data)


def packet_from_unit(unit: MediaUnit, track: Track) -> Packet:
    """What an edge ingests: length-prefixed NALs without in-band AUD/parameter sets, raw AAC."""
    data = unit.data
    if track.codec in (Codec.H264, Codec.H265):
        if nal.is_annexb(data):
            drop = _H264_PARAMS if track.codec is Codec.H264 else _H265_PARAMS
            kind = h264c.nal_type if track.codec is Codec.H264 else h265c.nal_type
            nals = [n for n in nal.split_annexb(data) if n and kind(n) not in drop]
            data = nal.to_length_prefixed(nals)
    elif track.codec is Codec.AAC and len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        try:
            header = aac.parse_adts_header(data)
        except (CodecConfigError, ValueError) as exc:
            raise OvtError(f"OVT AAC unit has a bad ADTS header: {exc}") from None
        data = data[header.header_length:]
    return Packet(track.id, unit.pts, unit.dts, track.time_base, bytes(data), keyframe=unit.keyframe)


# -- describe -------------------------------------------------------------------------------------------
def track_json(track: Track, bitrate: int = 0, framerate: float = 0.0) -> dict[str, Any]:
    tb = track.time_base
    layout = {1: 0x4, 2: 0x3, 6: 0x60F}.get(track.channels, 0)
    return {"id": track.id, "name": track.name, "codecId": GEN.codec_ids.get(track.codec, 0),
            "mediaType": GEN.media_types[track.kind], "timebaseNum": tb.numerator, "timebaseDen": tb.denominator,
            "bitrate": bitrate or track.bitrate_conf, "startFrameTime": 0, "lastFrameTime": 0,
            "videoTrack": {"framerate": framerate or track.framerate_conf, "width": track.width,
                           "height": track.height},
            "audioTrack": {"samplerate": track.sample_rate, "sampleFormat": 8 if track.kind is MediaKind.AUDIO else 0,
                           "layout": layout},
            "decoderConfig": base64.b64encode(track.config).decode()}


def playlist_json(playlist: dict[str, Any]) -> dict[str, Any]:
    """An output profile's playlist (OME's API JSON) in describe's shape."""
    options = playlist.get("options") if isinstance(playlist.get("options"), dict) else {}
    raw = playlist.get("renditions") or playlist.get("rendition") or []
    renditions = [r for r in (raw if isinstance(raw, list) else [raw]) if isinstance(r, dict)]
    return {"name": str(playlist.get("name") or ""), "fileName": str(playlist.get("fileName") or ""),
            "options": {"webrtcAutoAbr": bool((options or {}).get("webRtcAutoAbr", False)),
                        "hlsChunklistPathDepth": int((options or {}).get("hlsChunklistPathDepth", -1)),
                        "enableTsPackaging": bool((options or {}).get("enableTsPackaging", False))},
            "renditions": [{"name": str(r.get("name") or ""), "videoTrackName": str(r.get("video") or ""),
                            "videoIndexHint": -1, "audioTrackName": str(r.get("audio") or ""),
                            "audioIndexHint": -1} for r in renditions]}


def describe_contents(vhost: str, app: str, stream: str, uuid: str, tracks: list[dict[str, Any]],
                      playlists: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": SIGNALLING_VERSION,
            "stream": {"appName": f"#{vhost}#{app}", "streamName": stream, "originStreamUUID": uuid,
                       "playlists": playlists, "tracks": tracks}}


@dataclass(frozen=True)
class Described:
    app_name: str
    stream_name: str
    tracks: list[Track]            # the relayed tracks (video and audio Kiln can carry)
    skipped: list[str]             # why other described tracks are not relayed
    playlists: list[dict[str, Any]]  # back in OME's API JSON shape (name, fileName, options, renditions)
    bitrates: dict[int, int] = field(default_factory=dict)


_TRACK_FIELDS = (("id", int), ("name", str), ("codecId", int), ("mediaType", int), ("timebaseNum", int),
                 ("timebaseDen", int), ("bitrate", int), ("startFrameTime", int), ("lastFrameTime", int))


def _checked(obj: dict[str, Any], fields: tuple[tuple[str, type], ...], what: str) -> None:
    for key, kind in fields:
        value = obj.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise OvtError(f"OVT describe: {what} field {key!r} missing or not {kind.__name__}")


def _parse_track(obj: Any) -> Track | str:
    if not isinstance(obj, dict):
        raise OvtError("OVT describe: a track is not an object")
    _checked(obj, _TRACK_FIELDS, "track")
    kind = _reverse(GEN.media_types).get(obj["mediaType"])
    codec = _reverse(GEN.codec_ids).get(obj["codecId"])
    if kind not in (MediaKind.VIDEO, MediaKind.AUDIO):
        return f"track {obj['id']}: media type {obj['mediaType']} is not relayed"
    sub = obj.get("videoTrack" if kind is MediaKind.VIDEO else "audioTrack")
    if not isinstance(sub, dict):
        raise OvtError(f"OVT describe: track {obj['id']} has no {kind.value.lower()}Track object")
    if codec not in RELAYED or codec.kind is not kind:
        return f"track {obj['id']}: codec id {obj['codecId']} is not relayed"
    num, den = obj["timebaseNum"], obj["timebaseDen"]
    if num <= 0 or den <= 0:
        raise OvtError(f"OVT describe: track {obj['id']} has time base {num}/{den}")
    config_text = obj.get("decoderConfig", "")
    try:
        config = base64.b64decode(config_text, validate=True) if isinstance(config_text, str) else b""
    except ValueError:
        raise OvtError(f"OVT describe: track {obj['id']} decoderConfig is not base64") from None
    try:
        track = describe_track(obj["id"], codec, config, Fraction(num, den))
    except CodecConfigError as exc:
        raise OvtError(f"OVT describe: track {obj['id']}: {exc}") from None
    track.name = obj["name"]
    if kind is MediaKind.VIDEO:
        fr = sub.get("framerate")
        # a NaN or an infinity here made every GET of the edge's stream a 500 (no JSON holds one): 0, not known
        track.framerate_conf = float(fr) if isinstance(fr, int | float) and not isinstance(fr, bool) \
            and math.isfinite(fr) else 0.0
        w: Any = sub.get("width")
        h: Any = sub.get("height")
        if not track.width and _uint(w) and _uint(h):
            track.width, track.height = w, h
    elif not track.sample_rate and _uint(sub.get("samplerate")):
        track.sample_rate = int(sub["samplerate"])
    track.bitrate_conf = obj["bitrate"]
    return track


def _parse_playlist(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise OvtError("OVT describe: a playlist is not an object")
    _checked(obj, (("name", str), ("fileName", str), ("options", dict), ("renditions", list)), "playlist")
    renditions = []
    for r in obj["renditions"]:
        if not isinstance(r, dict):
            raise OvtError("OVT describe: a rendition is not an object")
        _checked(r, (("name", str), ("videoTrackName", str), ("audioTrackName", str)), "rendition")
        rendition = {"name": r["name"]}
        if r["videoTrackName"]:
            rendition["video"] = r["videoTrackName"]
        if r["audioTrackName"]:
            rendition["audio"] = r["audioTrackName"]
        renditions.append(rendition)
    opts = obj["options"]
    options = {"webRtcAutoAbr": bool(opts.get("webrtcAutoAbr", False)),
               "hlsChunklistPathDepth": opts.get("hlsChunklistPathDepth", -1)
               if isinstance(opts.get("hlsChunklistPathDepth", -1), int) else -1,
               "enableTsPackaging": bool(opts.get("enableTsPackaging", False))}
    return {"name": obj["name"], "fileName": obj["fileName"], "options": options, "renditions": renditions}


def parse_describe(contents: Any) -> Described:
    """The edge's checks (spec §3.3): required fields with the right JSON types, else OvtError."""
    if not isinstance(contents, dict) or not isinstance(contents.get("stream"), dict):
        raise OvtError("OVT describe has no stream object")
    stream = contents["stream"]
    _checked(stream, (("appName", str), ("streamName", str), ("tracks", list)), "stream")
    tracks: list[Track] = []
    skipped: list[str] = []
    for obj in stream["tracks"]:
        parsed = _parse_track(obj)
        (skipped.append if isinstance(parsed, str) else tracks.append)(parsed)  # type: ignore[arg-type]
    if len({t.id for t in tracks}) != len(tracks):
        raise OvtError("OVT describe: two tracks share an id")
    raw_playlists = stream.get("playlists", [])
    if not isinstance(raw_playlists, list):
        raise OvtError("OVT describe: playlists is not an array")
    playlists = [_parse_playlist(p) for p in raw_playlists]
    return Described(stream["appName"], stream["streamName"], tracks, skipped, playlists)
