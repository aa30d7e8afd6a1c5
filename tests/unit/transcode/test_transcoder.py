"""The transcoder wired into LiveStream: a 640x360 H.264 + AAC clip in, encoded tracks out of the output hubs."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

import av
import pytest

from kiln.http.views.stream import stream_json
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.model import Codec, Packet
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import LiveStream
from kiln.media.transcode.settings import output_size, video_settings
from tests.unit.transcode.clip import Clip, make_clip


def abr_profile(name: str = "${OriginStreamName}_abr") -> dict[str, Any]:
    return {"name": "abr", "outputStreamName": name, "encodes": {
        "videos": [
            {"name": "v360", "codec": "h264", "width": "320", "height": "180", "bitrate": "300K",
             "keyFrameInterval": "15", "preset": "faster"},
            {"name": "v180", "codec": "h264", "width": "160", "bitrate": "100K", "keyFrameInterval": "15"},
            {"name": "v_bad", "codec": "vp9", "bitrate": "1M"},
        ],
        "audios": [
            {"name": "aac", "codec": "aac", "bitrate": "96000", "samplerate": "44100", "channel": "1"},
            {"name": "opus", "codec": "opus", "bitrate": "64000", "samplerate": "48000", "channel": "2"},
        ]}}


def bypass_profile() -> dict[str, Any]:
    return {"name": "same", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": [{"name": "bypass_video", "bypass": "true"}],
        "audios": [{"name": "aac_audio", "codec": "aac", "bitrate": "128000", "bypassIfMatch": {"codec": "eq"}},
                   {"name": "opus", "codec": "opus", "bitrate": "64000", "samplerate": "48000", "channel": "2"}]}}


def run(clip: Clip, profiles: list[dict[str, Any]]) -> tuple[LiveStream, dict[str, dict[int, list[Packet]]]]:
    live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=profiles)
    live.on_track(clip.video)
    live.on_track(clip.audio)
    assert live.started
    subs = {}
    for name, out in live.outputs.items():
        subs[name] = Subscriber(f"test:{name}", max_packets=100_000)
        out.hub.subscribe(subs[name], from_keyframe=False)
    for packet in clip.packets:
        live.ingest(packet)
    live.transcoder.finish()
    assert live.transcoder.join(60)
    got: dict[str, dict[int, list[Packet]]] = {}
    for name, sub in subs.items():
        by_track: dict[int, list[Packet]] = defaultdict(list)
        for p in sub.drain():
            by_track[p.track_id].append(p)
        got[name] = by_track
    live.end("test over")
    return live, got


def decode_sizes(config: bytes, packets: list[Packet], count: int = 5) -> set[tuple[int, int]]:
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = config
    sizes = set()
    for p in packets[:count]:
        for frame in ctx.decode(av.Packet(p.data)):
            sizes.add((frame.width, frame.height))
    for frame in ctx.decode(None):
        sizes.add((frame.width, frame.height))
    return sizes


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(640, 360, seconds=2.0)


@pytest.fixture(scope="module")
def abr(clip: Clip) -> tuple[LiveStream, dict[str, dict[int, list[Packet]]]]:
    return run(clip, [abr_profile()])


def test_video_renditions_have_the_configured_sizes_and_gop(abr: Any, clip: Clip) -> None:
    live, got = abr
    out = live.outputs["cam_abr"]
    v360, v180, bad = out.tracks[0], out.tracks[1], out.tracks[2]
    assert (v360.track.width, v360.track.height, v360.track.codec) == (320, 180, Codec.H264)
    assert (v180.track.width, v180.track.height) == (160, 90)  # width only: the input's 16:9 kept
    assert v360.track.codec_string.startswith("avc1.") and v360.track.time_base == Fraction(1, 90000)
    in_frames = sum(1 for p in clip.packets if p.track_id == 0)
    for ot, size in ((v360, (320, 180)), (v180, (160, 90))):
        packets = got["cam_abr"][ot.id]
        assert len(packets) == in_frames  # every frame, flushed at the end of the input
        assert decode_sizes(ot.track.config, packets) == {size}
        keys = [i for i, p in enumerate(packets) if p.keyframe]
        assert keys == list(range(0, in_frames, 15))
        dts = [p.dts for p in packets]
        assert dts == sorted(dts) and len(set(dts)) == len(dts)
        first_in = next(p for p in clip.packets if p.track_id == 0)
        assert packets[0].pts == first_in.pts * 90  # 1/1000 → 1/90000, same timeline as the input
    assert bad.track is None and "vp9" in bad.unavailable


def test_audio_encodes_carry_parseable_configs(abr: Any) -> None:
    live, got = abr
    out = live.outputs["cam_abr"]
    aac, opus = out.tracks[3], out.tracks[4]
    parsed = describe_track(9, Codec.AAC, aac.track.config, aac.track.time_base)
    assert (parsed.sample_rate, parsed.channels) == (44100, 1) and aac.track.time_base == Fraction(1, 44100)
    parsed = describe_track(9, Codec.OPUS, opus.track.config, opus.track.time_base)
    assert (parsed.sample_rate, parsed.channels) == (48000, 2)
    opus_packets = got["cam_abr"][opus.id]
    assert 95 <= len(opus_packets) <= 105  # 2 s of 20 ms frames
    aac_packets = got["cam_abr"][aac.id]
    assert 84 <= len(aac_packets) <= 90  # 2 s of 1024-sample frames at 44.1 kHz
    ctx = av.CodecContext.create("aac", "r")
    ctx.extradata = aac.track.config
    frames = [f for p in aac_packets[:10] for f in ctx.decode(av.Packet(p.data))]
    assert frames and frames[0].sample_rate == 44100 and frames[0].layout.nb_channels == 1


def test_api_view_shows_encoded_tracks_with_configured_values(abr: Any) -> None:
    live, _ = abr
    view = stream_json(live.snapshot())["outputs"][0]["tracks"]
    assert view[0]["video"]["bypass"] is False and view[0]["video"]["width"] == 320
    assert view[0]["video"]["bitrateConf"] == 300 * 1024 and view[0]["video"]["keyFrameIntervalConf"] == 15
    assert view[2]["unavailable"]
    assert view[4]["audio"]["codec"] == "OPUS" and view[4]["audio"]["samplerate"] == 48000


def test_bypass_and_encode_side_by_side_and_shared_encoders(clip: Clip) -> None:
    live, got = run(clip, [bypass_profile(), abr_profile(), abr_profile("${OriginStreamName}_copy")])
    same = live.outputs["cam"]
    assert same.tracks[0].bypass and same.tracks[1].bypass and not same.tracks[2].bypass
    assert same.tracks[2].track.codec is Codec.OPUS
    assert len(got["cam"][0]) == sum(1 for p in clip.packets if p.track_id == 0)
    # identical encodes across profiles share one encoder: the ABR profiles' 2 videos, their AAC, and one
    # Opus for all three outputs (the bypass profile asks for the same Opus settings)
    workers = live.transcoder.workers
    assert len(workers[0].encoders) == 2 and len(workers[1].encoders) == 2
    assert [p.data for p in got["cam"][2]] == [p.data for p in got["cam_abr"][4]]
    a, b = got["cam_abr"][0], got["cam_copy"][0]
    assert [p.data for p in a] == [p.data for p in b]


def test_a_slow_transcoder_never_blocks_ingest(clip: Clip) -> None:
    live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[abr_profile()])
    live.on_track(clip.video)
    live.on_track(clip.audio)
    worker = live.transcoder.workers[0]
    assert worker.queue is not None
    worker.stopping = True  # the worker thread exits: nothing drains the queue any more
    worker.thread.join(5)
    for _ in range(3):
        for packet in clip.packets:
            live.ingest(packet)
    assert worker.queue.stats.skips >= 1 and worker.queue.stats.dropped_packets > 0
    assert len(worker.queue) <= worker.queue.max_packets
    live.end("test over")


def test_size_rules() -> None:
    assert output_size(640, 0, 1280, 720) == (640, 360)
    assert output_size(0, 360, 1280, 720) == (640, 360)
    assert output_size(0, 0, 1280, 720) == (1280, 720)
    assert output_size(321, 181, 1280, 720) == (322, 182)
    clip = make_clip(640, 360, seconds=2.0)
    s = video_settings({"codec": "h264_nvenc", "bitrate": "2M", "height": "180", "keyFrameIntervalType": "time",
                        "keyFrameInterval": "2000", "framerate": "15", "preset": "slower"}, clip.video, 30.0)
    assert (s.width, s.height, s.bitrate, s.key_frame_interval, s.framerate, s.preset) == (
        320, 180, 2 * 1024 * 1024, 30, 15.0, "slower")
    assert s.resample_fps
    assert video_settings({"codec": "h264", "skipFrames": "1"}, clip.video, 30.0).framerate == 15.0


def test_framerate_conversion_halves_the_frames(clip: Clip) -> None:
    profile = {"name": "half", "outputStreamName": "${OriginStreamName}_half", "encodes": {"videos": [
        {"name": "v", "codec": "h264", "height": "90", "framerate": "15", "bitrate": "100K"}]}}
    _, got = run(clip, [profile])
    frames = len(got["cam_half"][0])
    assert 28 <= frames <= 31  # 2 s at 15 fps
    assert set(got["cam_half"]) <= {0, 1}  # the video, and maybe the data track: the profile has no audio


@pytest.mark.parametrize(("codec", "decoder", "model"), [("h265", "hevc", Codec.H265), ("vp8", "vp8", Codec.VP8)])
def test_h265_and_vp8_encodes_decode_at_the_configured_size(clip: Clip, codec: str, decoder: str,
                                                            model: Codec) -> None:
    profile = {"name": "x", "outputStreamName": "${OriginStreamName}_x", "encodes": {
        "videos": [{"name": "v", "codec": codec, "width": "320", "height": "180", "bitrate": "300K",
                    "keyFrameInterval": "15"}]}}
    live, got = run(clip, [profile])
    ot = live.outputs["cam_x"].tracks[0]
    assert ot.track is not None and ot.track.codec is model and (ot.track.width, ot.track.height) == (320, 180)
    packets = got["cam_x"][ot.id]
    assert packets and packets[0].keyframe
    ctx = av.CodecContext.create(decoder, "r")
    if ot.track.config and codec == "h265":
        ctx.extradata = ot.track.config
    sizes = set()
    for p in packets[:5]:
        for frame in ctx.decode(av.Packet(p.data)):
            sizes.add((frame.width, frame.height))
    assert sizes == {(320, 180)}
