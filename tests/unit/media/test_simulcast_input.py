"""An input with several video tracks (WebRTC simulcast layers): the stream waits for every layer (a
bounded time) and its outputs take the largest one."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.live import LiveStream

TB = Fraction(1, 90000)
BYPASS = {"outputStreamName": "${OriginStreamName}", "encodes": {"videos": [{"bypass": True}]}}


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
    [video] = [t for t in stream.outputs["cam"].track_list() if t.kind is MediaKind.VIDEO]
    assert (video.width, video.height) == (960, 540)
    stream.ingest(Packet(1, 0, 0, TB, b"\0\0\0\1e", keyframe=True))
    stream.ingest(Packet(0, 0, 0, TB, b"\0\0\0\1e", keyframe=True))
    assert [p.track_id for p in stream.outputs["cam"].hub.gop_snapshot()] == [video.id]  # only the largest
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
    [video] = [t for t in stream.outputs["cam"].track_list() if t.kind is MediaKind.VIDEO]
    assert video.width == 480
    stream.end("test over")
