"""An input with several video tracks (WebRTC simulcast layers): the stream waits for every layer (a
bounded time); a bypass encode makes one output track per layer (one group, largest first), an encode
takes the largest; playlists pick a layer by VideoIndexHint."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.groups import named_track
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream

TB = Fraction(1, 90000)
BYPASS = {"outputStreamName": "${OriginStreamName}", "encodes": {"videos": [{"name": "src", "bypass": True}]}}


def _layer(track_id: int, width: int, height: int) -> Track:
    return Track(track_id, MediaKind.VIDEO, Codec.H264, TB, width=width, height=height)


def _stream() -> LiveStream:
    stream = LiveStream("default", "app", "cam", source_type="WebRTC", source_url="", profiles=[BYPASS])
    stream.on_metadata({"videocodecid": "webrtc"})
    stream.expected_video_tracks = 3
    return stream


def test_the_stream_starts_once_every_layer_is_described_and_outputs_the_largest() -> None:
    stream = _stream()
    stream.on_track(_layer(0, 240, 134))
    stream.on_track(_layer(1, 960, 540))
    assert not stream.started
    stream.on_track(_layer(2, 480, 270))
    assert stream.started
    videos = [t for t in stream.outputs["cam"].track_list() if t.kind is MediaKind.VIDEO]
    assert [(t.name, t.width) for t in videos] == [("src", 960), ("src", 480), ("src", 240)]
    seen: list[int] = []
    stream.outputs["cam"].hub.subscribe(CallbackSubscriber("test", lambda p: seen.append(p.track_id)),
                                        from_keyframe=False)
    stream.ingest(Packet(1, 0, 0, TB, b"\0\0\0\1e", keyframe=True))
    stream.ingest(Packet(0, 0, 0, TB, b"\0\0\0\1e", keyframe=True))
    assert seen == [videos[0].id, videos[2].id]  # each layer's packets go to its own output track
    assert named_track(videos, "src") is videos[0] and named_track(videos, "src", "2") is videos[2]
    assert named_track(videos, "src", 3) is None and named_track(videos, "src", "x") is None
    assert named_track(videos, "other") is None
    stream.end("test over")


def test_a_layer_that_never_comes_delays_the_start_only_a_little() -> None:
    stream = _stream()
    stream.on_track(_layer(0, 480, 270))
    stream.on_track(_layer(1, 240, 134))
    for i in range(50):  # 30 fps: the start comes after 1.5 s of media without the third layer
        stream.ingest(Packet(0, i * 3000, i * 3000, TB, b"\0\0\0\1e", keyframe=i == 0))
        if stream.started:
            break
    assert stream.started and 1.5 <= i * 3000 / 90000 < 1.6
    videos = [t for t in stream.outputs["cam"].track_list() if t.kind is MediaKind.VIDEO]
    assert [t.width for t in videos] == [480, 240]
    stream.end("test over")


def test_an_encode_takes_the_largest_layer_and_a_single_video_input_is_unchanged() -> None:
    profile = {"outputStreamName": "${OriginStreamName}_copy", "encodes": {"videos": [{"bypass": True}]}}
    single = LiveStream("default", "app", "one", source_type="Rtmp", source_url="", profiles=[profile])
    single.on_metadata({"videocodecid": 7})
    single.on_track(_layer(0, 640, 360))
    single.on_track(_layer(1, 320, 180))  # a second video track of a non-simulcast input: not a group
    assert [t.width for t in single.outputs["one_copy"].track_list() if t.kind is MediaKind.VIDEO] == [640]
    single.end("test over")
