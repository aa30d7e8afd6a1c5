"""Consumers ask the WebRTC publisher for a keyframe through LiveStream (a new viewer, a transcoder start):
the request becomes a PLI at the next video packet, never faster than the pipeline's rate limit."""

from __future__ import annotations

from typing import Any

from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.live import LiveStream
from tests.unit.ingest.webrtc.rtp_media import h264_frames, rtp_packets

BYPASS = {"outputStreamName": "${OriginStreamName}", "encodes": {"videos": [{"bypass": True}]}}
ENCODE = {"outputStreamName": "${OriginStreamName}_low",
          "encodes": {"videos": [{"codec": "h264", "width": 160, "height": 90, "bitrate": 100000,
                                  "framerate": 15}]}}


class _Session:
    """What PublishSession does with the pipeline's output."""

    def __init__(self, stream: LiveStream) -> None:
        self.stream = stream

    def on_track(self, track: Track) -> None:
        self.stream.on_track(track)

    def on_packet(self, packet: Packet) -> None:
        self.stream.ingest(packet)


def _publish(profiles: list[dict[str, Any]]) -> tuple[LiveStream, IngestPipeline]:
    """A WebRTC-like publisher wired as PublishSession wires it: pipeline → LiveStream, hook → pipeline."""
    stream = LiveStream("default", "app", "cam", source_type="WebRTC", source_url="", profiles=profiles)
    stream.on_metadata({"videocodecid": "webrtc"})
    pipe = IngestPipeline(_Session(stream), gate_s=0.0, keyframe_interval_s=0.5, keyframe_every_s=0.0)  # no timer
    stream.set_keyframe_source(pipe.request_keyframe)
    return stream, pipe


def test_a_new_viewer_of_an_output_gets_a_pli_sent_to_the_publisher_at_the_next_video_packet() -> None:
    stream, pipe = _publish([BYPASS])
    video = pipe.add_track(Codec.H264, 90000)
    packets = rtp_packets(h264_frames(60), frame_s=1 / 30)  # one keyframe, at the start
    start = packets[0].arrival
    first = [p for p in packets if p.arrival - start < 1.0]
    rest = packets[len(first):]
    plis = [round(p.arrival - start, 2) for p in first if pipe.rtp(video, p)]
    assert stream.started and plis == [0.0]  # only the start's request: the timer is off
    asked = stream.outputs["cam"].request_keyframe("webrtc viewer")
    plis = [round(p.arrival - start, 2) for p in rest if pipe.rtp(video, p)]
    assert asked and plis == [round(rest[0].arrival - start, 2)]  # at the next packet, and once
    assert stream.keyframe_requests == {"webrtc viewer": 1}
    stream.end("test over")


def test_requests_are_bounded_by_the_pipeline_rate_limit() -> None:
    stream, pipe = _publish([BYPASS])
    video = pipe.add_track(Codec.H264, 90000)
    packets = rtp_packets(h264_frames(60), frame_s=1 / 30)
    sent = []
    for p in packets:  # a consumer asking at every packet (e.g. viewers arriving in a burst)
        stream.request_keyframe("webrtc viewer")
        if pipe.rtp(video, p):
            sent.append(p.arrival)
    assert len(sent) == 4 and all(b - a >= 0.5 for a, b in zip(sent, sent[1:], strict=False))  # 2 s: ≤ 2/s
    stream.end("test over")


def test_a_transcoder_start_asks_for_a_keyframe_and_an_audio_only_one_does_not() -> None:
    stream, pipe = _publish([ENCODE])
    video = pipe.add_track(Codec.H264, 90000)
    packets = rtp_packets(h264_frames(30), frame_s=1 / 30)
    try:
        plis = [p.arrival - packets[0].arrival for p in packets if pipe.rtp(video, p)]
        assert stream.started and stream.keyframe_requests == {"transcoder start": 1}
        assert len(plis) == 2 and plis[1] >= 0.5  # the start's own, then the transcoder's after the rate limit
    finally:
        stream.end("test over")
    audio_only = LiveStream("default", "app", "mic", source_type="WebRTC", source_url="", profiles=[
        {"outputStreamName": "${OriginStreamName}_aac", "encodes": {"audios": [{"codec": "aac", "bitrate": 64000,
                                                                                  "samplerate": 48000,
                                                                                  "channel": 2}]}}])
    audio_only.set_keyframe_source(lambda: None)
    try:
        audio_only.on_metadata({"audiocodecid": "webrtc"})
        audio_only.on_track(Track(0, MediaKind.AUDIO, Codec.OPUS, pipe.tracks[video].clock.time_base,
                                  sample_rate=48000, channels=2))
        assert audio_only.started and audio_only.keyframe_requests == {}
    finally:
        audio_only.end("test over")


def test_a_source_that_cannot_be_asked_says_so() -> None:
    rtmp = LiveStream("default", "app", "rtmp", source_type="Rtmp", source_url="", profiles=[BYPASS])
    assert rtmp.request_keyframe("webrtc viewer") is False and rtmp.keyframe_requests == {}
    asked: list[int] = []
    rtmp.set_keyframe_source(lambda: asked.append(1))
    rtmp.end("gone")
    assert rtmp.request_keyframe("webrtc viewer") is False and not asked  # an ended stream asks nobody
