"""Bad input through LiveStream and its transcoder: undecodable tracks, a resolution change, a corrupt frame, an
encoder that falls behind. Ingest and bypass outputs never suffer; encoded outputs go on or say why they stopped."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from kiln.http.views.stream import stream_json
from kiln.media.model import Packet
from kiln.media.transcode import transcoder as transcoder_module
from kiln.media.transcode.codecs import VideoEncoder
from tests.unit.transcode.clip import Clip, make_clip
from tests.unit.transcode.feed import decode_frames, finish, shifted, start_live

LABEL = "stream=default/app/cam"


def mixed_profile() -> dict[str, Any]:
    """Bypass video and audio next to an H.264 rendition, an AAC encode and a thumbnail."""
    return {"name": "mixed", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": [{"name": "bypass_video", "bypass": "true"},
                   {"name": "v180", "codec": "h264", "width": "320", "height": "180", "bitrate": "200K",
                    "keyFrameInterval": "15"}],
        "audios": [{"name": "bypass_audio", "bypass": "true"},
                   {"name": "aac", "codec": "aac", "bitrate": "64000", "samplerate": "44100", "channel": "1"}],
        "images": [{"codec": "jpeg", "width": "160", "framerate": "1"}]}}


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(640, 360, seconds=2.0)


def video_of(packets: list[Packet]) -> list[Packet]:
    return [p for p in packets if p.track_id == 0]


def test_a_decoder_that_cannot_be_opened_makes_the_encodes_unavailable(clip: Clip,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    garbage = random.Random(7).randbytes(40)  # not an avcC: FFmpeg would open on it and then fail every frame
    caplog.set_level(logging.INFO)
    live, subs = start_live([replace(clip.video, config=garbage), clip.audio], [mixed_profile()])
    for packet in clip.packets:
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    out = live.outputs["cam"]
    bypass_v, v180, bypass_a, aac, jpeg = out.tracks[:5]
    for ot in (v180, jpeg):
        assert ot.track is None
        assert "input track 0 of default/app/cam" in ot.unavailable and "H264 decoder" in ot.unavailable, ot
    assert not out.images  # no thumbnail holder: /thumb.jpg is a 404
    view = {t["id"]: t for t in stream_json(live.snapshot())["outputs"][0]["tracks"]}
    assert view[v180.id]["unavailable"] == v180.unavailable and view[v180.id]["video"]["width"] == 320
    assert view[jpeg.id]["video"]["codec"] == "JPEG" and view[jpeg.id]["unavailable"]
    # bypass outputs get every packet, the audio encode runs
    assert [p.data for p in got[bypass_v.id]] == [p.data for p in video_of(list(clip.packets))]
    assert len(got[bypass_a.id]) == sum(1 for p in clip.packets if p.track_id == 1)
    assert aac.track is not None and len(got[aac.id]) > 80
    assert "unavailable" not in view[aac.id]
    opened = [r.getMessage() for r in caplog.records if "decoder not opened" in r.getMessage()]
    assert len(opened) == 1 and LABEL in opened[0]  # tried once for the track, not once per encode
    live.end("test over")


def test_an_input_that_decodes_to_nothing_is_unavailable_until_it_decodes(clip: Clip,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rnd = random.Random(3)
    garbage = [replace(p, data=rnd.randbytes(len(p.data))) if p.track_id == 0 else p for p in clip.packets]
    live, subs = start_live([clip.video, clip.audio], [mixed_profile()])
    worker = live.transcoder.workers[0]
    for packet in [*garbage, *shifted(garbage, 2000)]:  # 120 garbage video packets behind a valid avcC
        live.ingest(packet)
    deadline = time.monotonic() + 30
    while not worker.undecodable and time.monotonic() < deadline:
        time.sleep(0.01)
    view = {t.get("name"): t for t in stream_json(live.snapshot())["outputs"][0]["tracks"]}
    assert "decoded no frame" in view["v180"]["unavailable"] and "H264 input track 0" in view["v180"]["unavailable"]
    assert "decoded no frame" in stream_json(live.snapshot())["outputs"][0]["tracks"][4]["unavailable"]  # the thumbnail
    assert "unavailable" not in view["aac"] and "unavailable" not in view["bypass_video"]
    assert any("transcode input undecodable" in r.getMessage() and LABEL in r.getMessage() for r in caplog.records)
    # the publisher sends real pictures again: the encode produces and is no longer listed unavailable
    for packet in shifted(clip.packets, 4000):
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    tracks = stream_json(live.snapshot())["outputs"][0]["tracks"]
    assert not [t for t in tracks if "unavailable" in t], tracks
    out = live.outputs["cam"]
    assert len(got[out.tracks[1].id]) == 60  # the good pass, every frame
    assert len(got[out.tracks[0].id]) == 180  # the bypass relays everything, garbage included
    assert len(got[out.tracks[3].id]) > 240  # the audio encode is not affected
    assert any("transcode input decodes again" in r.getMessage() for r in caplog.records)
    live.end("test over")


def test_a_resolution_change_keeps_the_configured_size(caplog: pytest.LogCaptureFixture) -> None:
    big, small = make_clip(640, 360, seconds=2.0), make_clip(480, 270, seconds=2.0)
    caplog.set_level(logging.INFO)
    live, subs = start_live([big.video, big.audio], [mixed_profile()])
    for packet in big.packets:
        live.ingest(packet)
    # the publisher switches to 480x270: a new track description, and its first frame carries the new avcC
    live.on_track(small.video)
    second = shifted(small.packets, 2040)
    first_video = next(i for i, p in enumerate(second) if p.track_id == 0)
    second[first_video] = replace(second[first_video], config=small.video.config)
    for packet in second:
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    out = live.outputs["cam"]
    bypass_v, v180 = out.tracks[0], out.tracks[1]
    assert (bypass_v.track.width, bypass_v.track.height) == (480, 270)  # the bypass describes the new input
    assert len(got[bypass_v.id]) == 120
    packets = got[v180.id]
    assert len(packets) == 120  # every frame of both halves: the old decoder's held frame is not lost
    change = second[first_video].pts * 90
    after = [p for p in packets if p.pts >= change]
    assert len(after) >= 55
    key = next(i for i, p in enumerate(after) if p.keyframe)
    frames = decode_frames(v180.track.config, after[key:], count=6)
    assert len(frames) >= 5 and {(f.width, f.height) for f in frames} == {(320, 180)}
    assert out.images[next(iter(out.images))].still is not None
    assert any("rebuilding the scaler" in r.getMessage() and LABEL in r.getMessage() for r in caplog.records)
    assert live.transcoder.workers[0].decode_errors == 0
    live.end("test over")


def test_a_corrupt_frame_is_logged_and_the_output_goes_on(clip: Clip, caplog: pytest.LogCaptureFixture) -> None:
    packets = list(clip.packets)
    video = [i for i, p in enumerate(packets) if p.track_id == 0]
    bad = video[10]  # a P frame in the first GOP
    assert not packets[bad].keyframe
    packets[bad] = replace(packets[bad], data=b"\xff\xff\xff\xff" + random.Random(5).randbytes(300))
    live, subs = start_live([clip.video, clip.audio], [mixed_profile()])
    for packet in packets:
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    out = live.outputs["cam"]
    v180 = out.tracks[1]
    assert live.transcoder.workers[0].decode_errors >= 1
    warnings = [r.getMessage() for r in caplog.records if "transcode decode error" in r.getMessage()]
    assert warnings and LABEL in warnings[0]
    encoded = got[v180.id]
    assert len(video) - 2 <= len(encoded) < len(video)  # the corrupt frame is lost, nothing else
    last_gop = [p for p in encoded if p.pts >= packets[video[30]].pts * 90]
    assert len(last_gop) == 30  # the output kept going after the error
    assert {(f.width, f.height) for f in decode_frames(v180.track.config, last_gop, count=5)} == {(320, 180)}
    assert [p.data for p in got[out.tracks[0].id]] == [p.data for p in video_of(packets)]
    assert "unavailable" not in stream_json(live.snapshot())["outputs"][0]["tracks"][1]
    live.end("test over")


def test_an_encoder_behind_real_time_drops_and_never_delays_ingest(clip: Clip, caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcoder_module, "VIDEO_QUEUE_PACKETS", 8)
    stuck = threading.Event()
    encode = VideoEncoder.encode

    def slow_encode(self: VideoEncoder, frame: Any) -> list[Packet]:
        stuck.wait(20)  # the encoder cannot keep up at all until released
        return encode(self, frame)

    monkeypatch.setattr(VideoEncoder, "encode", slow_encode)
    profile = {"name": "p", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": [{"name": "bypass_video", "bypass": "true"},
                   {"name": "v", "codec": "h264", "height": "90", "bitrate": "100K", "keyFrameInterval": "30"}],
        "audios": [{"name": "bypass_audio", "bypass": "true"}]}}
    live, subs = start_live([clip.video, clip.audio], [profile])
    worker = live.transcoder.workers[0]
    first = [*clip.packets, *shifted(clip.packets, 2000)]
    ingest = threading.Thread(target=lambda: [live.ingest(p) for p in first])
    ingest.start()
    ingest.join(10)
    blocked = ingest.is_alive()
    stuck.set()
    assert not blocked, "ingest waited on the transcoder"
    assert worker.queue is not None and worker.queue.stats.skips >= 1 and worker.queue.stats.dropped_packets > 0
    behind = [r.getMessage() for r in caplog.records if "transcode falling behind" in r.getMessage()]
    assert behind and LABEL in behind[0] and "dropped_packets=" in behind[0]
    # released, the encoder keeps up with an input paced like a live one: nothing more is dropped
    dropped = worker.queue.stats.dropped_packets
    later = shifted(clip.packets, 4000)
    for packet in later:
        while len(worker.queue) > 4:
            time.sleep(0.002)
        live.ingest(packet)
    got = finish(live, subs)["cam"]
    assert worker.queue.stats.dropped_packets == dropped
    out = live.outputs["cam"]
    encoded = got[out.tracks[1].id]
    start = next(p for p in later if p.track_id == 0).pts * 90
    assert sum(1 for p in encoded if p.pts >= start) == 60  # the output resumed and kept every later frame
    assert len(encoded) < 180  # frames were dropped while it was behind
    assert len(got[out.tracks[0].id]) == 180  # the bypass got every video packet of all three passes
    assert len(got[out.tracks[2].id]) == 3 * sum(1 for p in clip.packets if p.track_id == 1)
    live.end("test over")
