"""A bypass output carries the input's packets unchanged: the same packet objects go on (no copy per
output), and the output track's measurements are the input track's own, as the API shows them."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import MS, Codec, MediaKind, Packet, Track
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream
from kiln.metrics.track import TrackMeter

BYPASS = {"outputStreamName": "${OriginStreamName}",
          "encodes": {"videos": [{"name": "v", "bypass": True}], "audios": [{"name": "a", "bypass": True}]}}


def _stream() -> LiveStream:
    stream = LiveStream("default", "app", "s", source_type="Rtmp", source_url="", profiles=[BYPASS])
    stream.on_metadata({"videocodecid": 7, "audiocodecid": 10})
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, MS, width=320, height=180))
    stream.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, MS, sample_rate=48000, channels=2))
    return stream


def test_bypass_outputs_get_the_input_packets_and_the_input_measurements() -> None:
    stream = _stream()
    assert stream.started
    seen: list[Packet] = []
    stream.outputs["s"].hub.subscribe(CallbackSubscriber("test", seen.append), from_keyframe=False)
    sent = []
    for i in range(90):  # 3 s: video at 30 fps (a keyframe every second), audio every 21 ms
        video = Packet(0, i * 33 + 66, i * 33, MS, bytes(1000 + i), keyframe=i % 30 == 0)
        audio = Packet(1, i * 21, i * 21, MS, bytes(300), keyframe=True)
        for packet in (video, audio):
            stream.ingest(packet)
            sent.append(packet)
    assert len(seen) == len(sent) and all(a is b for a, b in zip(seen, sent, strict=True))
    snap = stream.snapshot()
    inputs = {t.id: t for t in snap.input_tracks}
    outputs = {t.id: t for t in snap.outputs[0].tracks if t.kind != MediaKind.DATA.value}
    assert set(outputs) == {0, 1}
    for track_id, out in outputs.items():
        assert out.bypass
        assert out.meter == inputs[track_id].meter
    video = outputs[0].meter
    assert 29 < video.framerate_avg < 31 and video.bitrate_avg > 0 and video.has_bframes
    assert video.key_frame_interval_avg == 30
    stream.end("test over")


def test_the_meter_reads_any_time_base_as_packets_convert_it() -> None:
    tb = Fraction(1, 90000)
    meter, exact = TrackMeter(), []
    for i in range(200):
        packet = Packet(0, i * 3003, i * 3003, Fraction(1, 90000) if i % 2 else tb, b"x" * 100)
        meter.add(packet)
        exact.append(packet.dts_ms)
    assert meter.first_dts_ms == exact[0] and meter.last_dts_ms == exact[-1]
    assert abs(meter.framerate_avg - 30000 / 1001) < 1e-9
    assert meter.framerate_latest > 29.9 and meter.bitrate_latest > 0


def test_once_started_the_outputs_hold_the_gop_and_the_input_hub_no_longer_caches() -> None:
    # the input's GOP cache serves the outputs' start (and the transcoder, which subscribes there, then):
    # after that only the output hubs keep one, for the publishers that join late
    stream = _stream()
    for i in range(45):
        stream.ingest(Packet(0, i * 33, i * 33, MS, bytes(100 + i), keyframe=i % 30 == 0))
    assert not stream.input.keep_gop and stream.input.gop_snapshot() == []
    late: list[Packet] = []
    stream.outputs["s"].hub.subscribe(CallbackSubscriber("late", late.append), from_keyframe=True)
    assert [p.dts for p in late] == [i * 33 for i in range(30, 45)] and late[0].keyframe
    stream.end("test over")


def test_a_stream_nobody_can_subscribe_to_caches_no_gop_but_still_counts_its_keyframes() -> None:
    # an application without publishers: no player, push or record can ever join the outputs (a reconfigure
    # ends the stream), so no output hub keeps packets alive for them; the API's figures are unchanged
    stream = LiveStream("default", "app", "s", source_type="Rtmp", source_url="", profiles=[BYPASS],
                        subscribable=False)
    stream.on_metadata({"videocodecid": 7, "audiocodecid": 10})
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, MS, width=320, height=180))
    stream.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, MS, sample_rate=48000, channels=2))
    for i in range(75):
        stream.ingest(Packet(0, i * 33, i * 33, MS, bytes(100 + i), keyframe=i % 30 == 0))
    hub = stream.outputs["s"].hub
    assert stream.started and not hub.keep_gop and hub.gop_snapshot() == [] and hub.packets == 75
    video = {t.id: t for t in stream.snapshot().outputs[0].tracks}[0].meter
    assert video.key_frame_interval_avg == 30
    late: list[Packet] = []
    hub.subscribe(CallbackSubscriber("late", late.append), from_keyframe=True)
    assert late == []  # nothing replayed: one joining all the same gets the stream live from here
    stream.ingest(Packet(0, 75 * 33, 75 * 33, MS, bytes(10)))
    assert [p.dts for p in late] == [75 * 33]
    stream.end("test over")
