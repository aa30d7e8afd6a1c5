"""HLS v3 segments and playlists: cut before a keyframe once SegmentDuration is reached, durations
measured on the cut track, the window keeps SegmentCount segments; OME's names in the playlist texts."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.hls.playlist import TsVariant, VariantInfo, render_master, render_media
from kiln.media.publish.hls.segmenter import SPARE_SEGMENTS, TsSegment, TsSegmenter

MS = Fraction(1, 1000)
VIDEO = Track(0, MediaKind.VIDEO, Codec.H264, MS, codec_string="avc1.42c01e", width=320, height=180)
AUDIO = Track(1, MediaKind.AUDIO, Codec.AAC, MS, codec_string="mp4a.40.2")


class RecordingMuxer:
    """Keeps what it was given; its bytes name the packets, so a test sees which went where."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def write(self, packet: Packet) -> None:
        self.packets.append(packet)

    def finish(self) -> bytes:
        return ",".join(f"{'k' if p.keyframe else ''}{p.track_id}@{p.dts}" for p in self.packets).encode()


def segmenter(duration: float = 2.0, count: int = 3) -> TsSegmenter:
    return TsSegmenter(VIDEO.id, frozenset({VIDEO.id, AUDIO.id}), duration, count, RecordingMuxer)


def video(dts: int, key: bool = False) -> Packet:
    return Packet(VIDEO.id, dts, dts, MS, b"v", keyframe=key, duration=500)


def audio(dts: int) -> Packet:
    return Packet(AUDIO.id, dts, dts, MS, b"a", keyframe=True)


def feed(seg: TsSegmenter, seconds: int, gop_ms: int = 1000) -> None:
    """Video every 500 ms with a keyframe every ``gop_ms``, audio in between."""
    for dts in range(0, seconds * 1000, 500):
        seg.push(video(dts, key=dts % gop_ms == 0))
        seg.push(audio(dts + 250))


def test_segments_start_with_a_keyframe_and_last_at_least_the_target() -> None:
    seg = segmenter(duration=2.0, count=10)
    feed(seg, 9)
    assert [s.number for s in seg.segments] == [0, 1, 2, 3]
    assert [s.duration for s in seg.segments] == [2.0, 2.0, 2.0, 2.0]
    for s in seg.segments:
        assert s.data.decode().split(",")[0].startswith("k0@")
    assert seg.segments[1].data.decode() == "k0@2000,k1@2250,0@2500,k1@2750,k0@3000,k1@3250,0@3500,k1@3750"


def test_a_cut_waits_for_the_next_keyframe() -> None:
    seg = segmenter(duration=2.0, count=10)
    feed(seg, 13, gop_ms=3000)  # keyframes at 0, 3, 6, 9, 12 s
    assert [s.duration for s in seg.segments] == [3.0, 3.0, 3.0, 3.0]


def test_packets_before_the_first_keyframe_are_left_out() -> None:
    seg = segmenter(duration=1.0)
    seg.push(audio(0))
    seg.push(video(100))
    for dts in (1000, 2000, 3000):
        seg.push(video(dts, key=True))
    assert [s.data.decode() for s in seg.segments] == ["k0@1000", "k0@2000"]


def test_the_window_lists_segment_count_and_keeps_a_few_spare() -> None:
    seg = segmenter(duration=1.0, count=3)
    feed(seg, 20)
    assert [s.number for s in seg.listed()] == [16, 17, 18]
    assert len(seg.segments) == 3 + SPARE_SEGMENTS
    assert seg.segment(14) is not None and seg.segment(13) is None


def test_finish_closes_the_open_segment_once() -> None:
    seg = segmenter(duration=2.0)
    feed(seg, 3)
    assert [s.number for s in seg.segments] == [0]
    seg.finish()
    seg.finish()
    assert [(s.number, s.duration) for s in seg.segments] == [(0, 2.0), (1, 1.0)]
    seg.push(video(9000, key=True))
    assert seg.finished and len(seg.segments) == 2


def test_tracks_of_other_variants_are_ignored() -> None:
    seg = TsSegmenter(VIDEO.id, frozenset({VIDEO.id}), 1.0, 3, RecordingMuxer)
    for dts in (0, 1000, 2000):
        seg.push(video(dts, key=True))
        seg.push(audio(dts))
    assert [s.data.decode() for s in seg.segments] == ["k0@0", "k0@1000"]


def test_media_playlist_text() -> None:
    variant = TsVariant(VIDEO, AUDIO)
    segments = [TsSegment(7, 4.2, b""), TsSegment(8, 3.96, b"")]
    assert render_media(variant, segments, 4.0, "session=3_abc", ended=False) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:7\n"
        "#EXTINF:4.200,\nseg_v0a1_7_hls.ts?session=3_abc\n"
        "#EXTINF:3.960,\nseg_v0a1_8_hls.ts?session=3_abc\n")
    assert render_media(variant, segments, 4.0, "", ended=True).endswith("seg_v0a1_8_hls.ts\n#EXT-X-ENDLIST\n")


def test_master_playlist_text() -> None:
    infos = [VariantInfo(TsVariant(VIDEO, AUDIO), 1_200_000, 30.0), VariantInfo(TsVariant(None, AUDIO), 0, 0.0)]
    assert render_master(infos, "session=1_k", "/app/s/") == (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1200000,RESOLUTION=320x180,FRAME-RATE=30.000,CODECS="avc1.42c01e,mp4a.40.2"\n'
        "/app/s/medialist_v0a1_hls.m3u8?session=1_k\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="mp4a.40.2"\n'
        "/app/s/medialist_a1_hls.m3u8?session=1_k\n")
