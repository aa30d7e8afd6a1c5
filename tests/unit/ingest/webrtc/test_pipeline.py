"""RTP in, Kiln tracks and packets out: keyframe gating, PLI rate limit, A/V sync from sender reports."""

from __future__ import annotations

from fractions import Fraction

import av

from kiln.media.ingest.webrtc.clock import NTP_EPOCH_OFFSET
from kiln.media.ingest.webrtc.payload import h264_access_unit
from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.ingest.webrtc.reorder import RtpIn
from kiln.media.model import Codec, MediaKind, Packet, Track
from tests.unit.ingest.webrtc.rtp_media import EncodedFrame, h264_frames, rtp_packets, vp8_frames


class Sink:
    def __init__(self) -> None:
        self.tracks: list[Track] = []
        self.packets: list[Packet] = []

    def on_track(self, track: Track) -> None:
        self.tracks.append(track)

    def on_packet(self, packet: Packet) -> None:
        self.packets.append(packet)


def _ntp(seconds: float) -> int:
    return int((seconds + NTP_EPOCH_OFFSET) * 2**32)


def test_h264_becomes_a_described_track_and_avcc_packets_that_decode() -> None:
    sink = Sink()
    pipe = IngestPipeline(sink, gate_s=0.0)
    video = pipe.add_track(Codec.H264, 90000)
    for p in rtp_packets(h264_frames(10), ts_offset=4_000_000_000):  # the RTP clock wraps mid-run
        pipe.rtp(video, p)
    [track] = sink.tracks
    assert (track.codec, track.width, track.height, track.time_base) == (Codec.H264, 320, 180, Fraction(1, 90000))
    assert track.profile and track.codec_string.startswith("avc1.42")
    assert [p.pts for p in sink.packets] == [i * 3000 for i in range(10)]
    assert sink.packets[0].keyframe and all(p.dts == p.pts for p in sink.packets)
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = track.config
    pictures = sum(len(decoder.decode(av.Packet(p.data))) for p in sink.packets) + len(decoder.decode(None))
    assert pictures == 10


def test_video_waits_for_a_keyframe_and_asks_for_one_at_a_bounded_rate() -> None:
    sink = Sink()
    pipe = IngestPipeline(sink, gate_s=0.0, keyframe_interval_s=0.5)
    video = pipe.add_track(Codec.H264, 90000)
    frames = h264_frames(60, keyframe_every=45)[1:]  # joined after the first keyframe
    keys = [i for i, f in enumerate(frames) if h264_access_unit(f.payloads).keyframe]
    assert keys and keys[0] > 20
    packets = rtp_packets(frames, frame_s=1 / 30)
    plis = [p.arrival for p in packets if pipe.rtp(video, p)]
    assert sink.packets and sink.packets[0].keyframe  # nothing before the next keyframe
    assert len(sink.packets) == len(frames) - keys[0]
    assert len(plis) >= 2 and all(b - a >= 0.5 for a, b in zip(plis, plis[1:], strict=False))  # never above 2/s
    assert pipe.tracks[video].counters.keyframe_requests == len(plis)
    assert pipe.tracks[video].counters.dropped_frames == keys[0]


def test_after_a_loss_video_resumes_at_the_next_keyframe_only() -> None:
    sink = Sink()
    pipe = IngestPipeline(sink, gate_s=0.0)
    video = pipe.add_track(Codec.H264, 90000)
    frames = h264_frames(50, keyframe_every=25)
    keys = [i for i, f in enumerate(frames) if h264_access_unit(f.payloads).keyframe]
    packets = rtp_packets(frames)
    lost_frame = keys[0] + 2
    assert lost_frame + 1 not in keys
    lost = next(p for p in packets if p.timestamp == lost_frame * 3000)
    asked = False
    for p in packets:
        if p is not lost:
            asked |= pipe.rtp(video, p)
    assert asked
    out = [p.pts // 3000 for p in sink.packets]
    resumed_at = next(k for k in keys if k > lost_frame)
    assert out == list(range(lost_frame)) + list(range(resumed_at, 50))  # the keyframe after the hole


def test_garbage_payloads_are_dropped_without_breaking_the_stream() -> None:
    sink = Sink()
    pipe = IngestPipeline(sink, gate_s=0.0)
    video = pipe.add_track(Codec.H264, 90000)
    packets = rtp_packets(h264_frames(5))
    for p in packets[:3]:
        pipe.rtp(video, p)
    junk = RtpIn(0x1234, 999, True, b"\x1d\xff\xff", 1.0)  # FU-B at an unrelated sequence number
    pipe.rtp(video, junk)
    for p in packets[3:]:
        pipe.rtp(video, p)
    assert [p.pts for p in sink.packets] == [i * 3000 for i in range(5)]


def test_vp8_track_and_keyframes() -> None:
    sink = Sink()
    pipe = IngestPipeline(sink, gate_s=0.0)
    video = pipe.add_track(Codec.VP8, 90000)
    for p in rtp_packets(vp8_frames(5)):
        pipe.rtp(video, p)
    [track] = sink.tracks
    assert (track.codec, track.width, track.height) == (Codec.VP8, 320, 180)
    assert [p.keyframe for p in sink.packets] == [True, False, False, False, False]


def test_sender_reports_put_audio_and_video_on_one_timeline() -> None:
    """Video's RTP clock starts at 1e9, audio's at 5; the SRs say the first video frame and the audio
    packet stamped 48000 ticks after the first were taken at the same sender time."""
    sink = Sink()
    pipe = IngestPipeline(sink, expected_tracks=2, gate_s=5.0)
    video = pipe.add_track(Codec.H264, 90000)
    audio = pipe.add_track(Codec.OPUS, 48000, channels=2)
    sender_t0 = 1_800_000_000.0
    pipe.sender_report(video, 1_000_000_000, _ntp(sender_t0 + 1.0), local=50.0)
    pipe.sender_report(audio, 5 + 48000, _ntp(sender_t0 + 1.0), local=50.0)
    vpk = rtp_packets(h264_frames(30), ts_offset=1_000_000_000, start=51.0)
    apk = [RtpIn(i, 5 + i * 960, False, b"\xfc\x00\x01", 50.0 + i * 0.02) for i in range(100)]
    for i in range(100):
        pipe.rtp(audio, apk[i])
        for p in vpk:
            if apk[i].arrival <= p.arrival < apk[i].arrival + 0.02:
                pipe.rtp(video, p)
    assert {t.kind for t in sink.tracks} == {MediaKind.VIDEO, MediaKind.AUDIO}
    first_audio = next(p for p in sink.packets if p.track_id == audio)
    first_video = next(p for p in sink.packets if p.track_id == video)
    assert first_audio.pts == 0 and first_audio.duration == 960
    assert first_video.pts_ms == 1000.0  # audio started one second (sender time) before the video frame
    for track_id in (audio, video):
        own = [p.dts for p in sink.packets if p.track_id == track_id]
        assert all(b > a for a, b in zip(own, own[1:], strict=False))


def test_a_keyframe_is_asked_for_when_the_last_one_is_older_than_the_target() -> None:
    """Browsers send keyframes only on request; LL-HLS segments and new consumers need them regularly."""
    first = h264_frames(1)[0]
    frames = [first] + [EncodedFrame(i * 3000, [b"\x41\x9a\x00\x10"]) for i in range(1, 100)]  # P slices
    packets = rtp_packets(frames, frame_s=1 / 30)
    pipe = IngestPipeline(Sink(), gate_s=0.0, keyframe_every_s=1.0)
    video = pipe.add_track(Codec.H264, 90000)
    asked = [p.arrival - packets[0].arrival for p in packets if pipe.rtp(video, p)]
    # at the first packet (no keyframe seen yet), once the keyframe is 1 s old, then at the 0.5 s rate limit
    # while the publisher sends none
    assert [round(t, 2) for t in asked] == [0.0, 1.0, 1.5, 2.0, 2.5, 3.0]
    never = IngestPipeline(Sink(), gate_s=0.0, keyframe_every_s=0.0)
    track = never.add_track(Codec.H264, 90000)
    assert sum(never.rtp(track, p) for p in packets) == 1  # only at the start
