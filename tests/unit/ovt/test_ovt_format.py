"""OVT wire format: framing, messages, media units, describe, against real H.264/AAC bitstreams."""

from __future__ import annotations

import json
import struct
from fractions import Fraction

import pytest

from kiln.media.formats import ovt
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.model import Codec, Packet
from tests.unit.codecs.media import encode_aac, encode_video


def frames(data: bytes) -> list[tuple[ovt.OvtHeader, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        header = ovt.parse_header(data[pos:pos + ovt.HEADER_SIZE])
        pos += ovt.HEADER_SIZE
        out.append((header, data[pos:pos + header.length]))
        pos += header.length
    return out


def test_header_layout_is_omes_18_bytes_big_endian() -> None:
    wire, nxt = ovt.packetize(ovt.TYPE_MEDIA, b"abc", sequence=7, timestamp=90000, session_id=5)
    assert wire[:ovt.HEADER_SIZE] == bytes([0x60, 30]) + struct.pack(">HQIH", 7, 90000, 5, 3)
    assert wire[ovt.HEADER_SIZE:] == b"abc" and nxt == 8


def test_a_large_unit_is_split_at_32750_bytes_and_reassembled() -> None:
    unit = bytes(range(256)) * 300  # 76800 bytes: three fragments
    wire, nxt = ovt.packetize(ovt.TYPE_MEDIA, unit, sequence=0xFFFF)
    parts = frames(wire)
    assert [h.length for h, _ in parts] == [32750, 32750, 76800 - 65500]
    assert [h.marker for h, _ in parts] == [False, False, True]
    assert [h.sequence for h, _ in parts] == [0xFFFF, 0, 1] and nxt == 2  # 16-bit rolling
    r = ovt.Reassembler()
    assert [r.feed(h, p) for h, p in parts][:2] == [None, None]
    r2 = ovt.Reassembler()
    results = [r2.feed(h, p) for h, p in parts]
    assert results[-1] == unit


def test_messages_and_media_reassemble_separately() -> None:
    media1, _ = ovt.packetize(ovt.TYPE_MEDIA, b"M" * 40000)
    msg, _ = ovt.packetize(ovt.TYPE_RESPONSE, b'{"id":1}')
    m = frames(media1)
    r = ovt.Reassembler()
    assert r.feed(*m[0]) is None
    assert r.feed(*frames(msg)[0]) == b'{"id":1}'
    assert r.feed(*m[1]) == b"M" * 40000


@pytest.mark.parametrize("raw, why", [
    (bytes([0x80, 30]) + bytes(16), "version"),
    (bytes([0x40, 99]) + bytes(16), "payload type"),
    (bytes([0x40, 30]) + bytes(14) + struct.pack(">H", 32751), "exceeds"),
    (b"GET / HTTP/1.1\r\n", "needs 18 bytes"),
])
def test_bad_headers_are_ovt_errors(raw: bytes, why: str) -> None:
    with pytest.raises(ovt.OvtError, match=why):
        ovt.parse_header(raw)


def test_reassembly_is_bounded() -> None:
    r = ovt.Reassembler()
    header = ovt.OvtHeader(False, ovt.TYPE_REQUEST, 0, 0, 0, ovt.MAX_PAYLOAD)
    with pytest.raises(ovt.OvtError, match="exceeds"):
        for _ in range(ovt.MAX_MESSAGE // ovt.MAX_PAYLOAD + 2):
            r.feed(header, bytes(ovt.MAX_PAYLOAD))


def test_requests_and_responses_round_trip_and_bad_ones_are_refused() -> None:
    req = ovt.Request(1, "describe", "ovt://h:9000/app/s?x=1")
    assert ovt.parse_request(ovt.encode_request(req)) == req
    resp = ovt.Response(2, "play", 200, "ok", {"a": 1})
    assert ovt.parse_response(ovt.encode_response(resp)) == resp
    for bad in (b"\xff\xfe", b"[1]", b'{"id":-1,"application":"play","target":"x"}',
                b'{"id":true,"application":"play","target":"x"}', b'{"id":1,"application":3,"target":"x"}'):
        with pytest.raises(ovt.OvtError):
            ovt.parse_request(bad)
    with pytest.raises(ovt.OvtError):
        ovt.parse_response(b'{"id":1,"application":"play","code":"200","message":""}')


def test_media_unit_header_is_36_bytes_and_length_is_checked() -> None:
    unit = ovt.MediaUnit(3, -5, -7, 10, 0, 2, 1, 0, b"xyz")
    wire = ovt.encode_media(unit)
    assert len(wire) == 36 + 3 and wire[:4] == b"\x00\x00\x00\x03" and wire[28:32] == bytes([0, 2, 1, 0])
    assert ovt.parse_media(wire) == unit and unit.keyframe
    with pytest.raises(ovt.OvtError, match="length"):
        ovt.parse_media(wire + b"!")
    with pytest.raises(ovt.OvtError, match="shorter"):
        ovt.parse_media(wire[:20])


def _h264_track() -> tuple[object, list[tuple[bool, bytes]]]:
    enc = encode_video("libx264")
    track = describe_track(0, Codec.H264, enc.extradata, Fraction(1, 90000))
    track.name = "bypass_video"
    return track, list(enc.packets)


def test_h264_goes_out_annexb_with_aud_and_parameter_sets_and_comes_back_identical() -> None:
    track, packets = _h264_track()
    encoder = ovt.WireEncoder(track)  # type: ignore[arg-type]
    key, data = packets[0]
    assert key
    unit = encoder.unit(Packet(0, 3000, 0, Fraction(1, 90000), data, keyframe=True))
    assert unit.data.startswith(ovt.H264_AUD + b"\x00\x00\x00\x01\x67")  # AUD, then SPS
    assert unit.bitstream == 1 and unit.flag == ovt.FLAG_KEY and unit.media_type == 0
    back = ovt.packet_from_unit(ovt.parse_media(ovt.encode_media(unit)), track)  # type: ignore[arg-type]
    assert back.data == data and back.keyframe and (back.pts, back.dts) == (3000, 0)
    delta = encoder.unit(Packet(0, 6000, 3000, Fraction(1, 90000), packets[1][1]))
    assert b"\x00\x00\x00\x01\x67" not in delta.data[:12] and delta.flag == ovt.FLAG_NONE


def test_aac_goes_out_as_adts_and_comes_back_raw() -> None:
    enc = encode_aac()
    track = describe_track(1, Codec.AAC, enc.extradata, Fraction(1, 48000))
    raw = enc.packets[0][1]
    unit = ovt.WireEncoder(track).unit(Packet(1, 1024, 1024, Fraction(1, 48000), raw))
    assert unit.bitstream == 10 and unit.data[0] == 0xFF and len(unit.data) == len(raw) + 7
    assert ovt.packet_from_unit(unit, track).data == raw


def test_describe_round_trips_tracks_and_playlists() -> None:
    video, _ = _h264_track()
    enc = encode_aac()
    audio = describe_track(1, Codec.AAC, enc.extradata, Fraction(1, 48000))
    audio.name = "aac_audio"
    playlist = {"name": "default", "fileName": "master", "options": {"webRtcAutoAbr": True},
                "renditions": [{"name": "bypass", "video": "bypass_video", "audio": "aac_audio"}]}
    contents = ovt.describe_contents("default", "app", "s", "uuid-1",
                                     [ovt.track_json(video), ovt.track_json(audio)],  # type: ignore[arg-type]
                                     [ovt.playlist_json(playlist)])
    contents = json.loads(json.dumps(contents))  # through JSON, as on the wire
    assert contents["version"] == 0x12 and contents["stream"]["appName"] == "#default#app"
    d = ovt.parse_describe(contents)
    assert [(t.id, t.name, t.codec, t.width, t.sample_rate) for t in d.tracks] == [
        (0, "bypass_video", Codec.H264, 320, 0), (1, "aac_audio", Codec.AAC, 0, 48000)]
    assert d.tracks[0].config == video.config  # type: ignore[attr-defined]
    assert d.playlists[0]["renditions"] == playlist["renditions"]
    assert d.playlists[0]["fileName"] == "master" and d.stream_name == "s"


@pytest.mark.parametrize("mutate, why", [
    (lambda c: c.pop("stream"), "no stream"),
    (lambda c: c["stream"].pop("tracks"), "tracks"),
    (lambda c: c["stream"]["tracks"][0].update(timebaseDen="90000"), "timebaseDen"),
    (lambda c: c["stream"]["tracks"][0].update(timebaseDen=0), "time base"),
    (lambda c: c["stream"]["tracks"][0].pop("videoTrack"), "videoTrack"),
    (lambda c: c["stream"]["tracks"][0].update(decoderConfig="%%%"), "base64"),
    (lambda c: c["stream"]["tracks"][0].update(decoderConfig="AAAA"), "track 0"),
    (lambda c: c["stream"]["playlists"].append({"name": 1}), "playlist"),
    (lambda c: c["stream"]["tracks"].append(dict(c["stream"]["tracks"][0])), "share an id"),
])
def test_bad_describes_are_refused_with_what_is_wrong(mutate: object, why: str) -> None:
    video, _ = _h264_track()
    contents = json.loads(json.dumps(ovt.describe_contents("v", "a", "s", "u", [ovt.track_json(video)], [])))  # type: ignore[arg-type]
    mutate(contents)  # type: ignore[operator]
    with pytest.raises(ovt.OvtError, match=why):
        ovt.parse_describe(contents)


def test_a_framerate_no_json_holds_is_unknown_and_nan_on_the_wire_is_refused() -> None:
    """An origin's NaN or Infinity framerate became the edge's framerateConf, and no answer could render it: every
    GET of the edge's stream was a 500 ('Out of range float values are not JSON compliant')."""
    video, _ = _h264_track()
    for framerate in (float("nan"), float("inf")):
        data = ovt.track_json(video)  # type: ignore[arg-type]
        data["videoTrack"]["framerate"] = framerate
        [track] = ovt.parse_describe(ovt.describe_contents("v", "a", "s", "u", [data], [])).tracks
        assert track.framerate_conf == 0.0
    with pytest.raises(ovt.OvtError, match="not JSON"):
        ovt.parse_response(b'{"id":1,"application":"describe","code":200,"message":"ok",'
                           b'"contents":{"framerate":NaN}}')


def test_unrelayed_tracks_are_skipped_with_a_reason() -> None:
    video, _ = _h264_track()
    data = ovt.track_json(video)  # type: ignore[arg-type]
    data.update(id=9, mediaType=2, codecId=0)
    d = ovt.parse_describe(ovt.describe_contents("v", "a", "s", "u", [data], []))
    assert d.tracks == [] and d.skipped == ["track 9: media type 2 is not relayed"]
