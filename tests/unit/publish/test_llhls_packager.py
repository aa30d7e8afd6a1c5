"""LL-HLS part and segment cutting: a part is closed by the frame that completes it (no wait for the
next frame), holds the ChunkDuration's whole number of frames, and segments still close on the
keyframe after SegmentDuration; PROGRAM-DATE-TIME dates the media by its least delayed packet."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.packager import Part, Segment, TrackPackager
from kiln.media.publish.llhls.playlist import ChunklistOptions, render_chunklist

MS = Fraction(1, 1000)
VIDEO = Track(0, MediaKind.VIDEO, Codec.H264, MS, config=bytes.fromhex("0164001fffe100"), codec_string="avc1.64001f",
              width=320, height=180)
AUDIO = Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), config=b"\x11\x90", sample_rate=48000, channels=2,
              samples_per_frame=1024, codec_string="mp4a.40.2")
T0 = 1_700_000_000.0


def video_dts(i: int) -> int:
    """30 fps in milliseconds, as RTMP carries it: 33, 33, 34, ..."""
    return i * 1000 // 30


class Recorder:
    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.segments: list[Segment] = []

    def part(self, _pkg: TrackPackager, part: Part) -> None:
        self.parts.append(part)

    def segment(self, _pkg: TrackPackager, seg: Segment) -> None:
        self.segments.append(seg)


def video_packager(rec: Recorder) -> TrackPackager:
    return TrackPackager(VIDEO, chunk_duration=0.5, segment_duration=2.0, segment_count=5, on_part=rec.part,
                         on_segment=rec.segment)


def push_video(pkg: TrackPackager, i: int, *, late: float = 0.0, gop: int = 60) -> None:
    dts = video_dts(i)
    pkg.push(Packet(0, dts, dts, MS, b"\x00\x00\x00\x01\x65" if i % gop == 0 else b"\x00\x00\x00\x01\x41",
                    keyframe=i % gop == 0), T0 + dts / 1000 + late)


def test_a_video_part_closes_on_the_frame_that_completes_it() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    closed_by: list[int] = []
    for i in range(240):
        before = len(rec.parts)
        push_video(pkg, i)
        if len(rec.parts) > before:
            closed_by.append(i)
    # 15 frames per part (round(0.5 s x 30 fps)); the 15th frame closes it, not the 16th's arrival
    assert closed_by[:8] == [14, 29, 44, 59, 74, 89, 104, 119]
    assert pkg.part_target == 500 and pkg.part_target_seconds == 0.5
    for part in rec.parts[:-1]:
        assert part.start == video_dts(15 * (part.segment * 4 + part.index))  # tfdt = true decode time
        assert abs(part.duration - 500) <= 2
    # 4 parts per 2 s segment, the first independent, no short leftover part
    assert [len(s.parts) for s in rec.segments] == [4, 4, 4]
    assert [p.independent for p in rec.segments[0].parts] == [True, False, False, False]
    assert all(abs(s.duration - 2000) <= 4 for s in rec.segments)


def test_mispredicted_tails_never_stop_a_segment_from_closing() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(601):  # 20 s; every part's last frame is predicted 33 ms, some were 34
        push_video(pkg, i)
    assert [s.number for s in rec.segments] == list(range(10))
    assert all(abs(s.duration - 2000) <= 4 for s in rec.segments)
    # the playlist lists what a player needs: PART-TARGET from the longest part, hold-back 3x that
    text = render_chunklist(pkg, ChunklistOptions("k"))
    target = max(0.5, max(p.duration for s in pkg.segments for p in s.parts) / 1000)
    assert f"#EXT-X-PART-INF:PART-TARGET={target:.6f}" in text
    assert f"PART-HOLD-BACK={3 * target:.6f}" in text


def test_an_audio_part_holds_round_chunk_over_frame_frames_and_closes_on_its_last() -> None:
    rec = Recorder()
    pkg = TrackPackager(AUDIO, chunk_duration=0.5, segment_duration=2.0, segment_count=5, on_part=rec.part,
                        on_segment=rec.segment)
    closed_by = []
    for i in range(200):
        before = len(rec.parts)
        pkg.push(Packet(1, i * 1024, i * 1024, AUDIO.time_base, b"\x21" * 8, keyframe=True), T0 + i * 1024 / 48000)
        if len(rec.parts) > before:
            closed_by.append(i)
    assert closed_by[:3] == [22, 45, 68]  # 23 frames (OME: round(0.5 / (1024 / 48000)))
    assert all(p.duration == 23 * 1024 for p in rec.parts)
    # a segment closes at the first part boundary at or past 2 s: 5 parts of 0.49 s
    assert rec.segments and all(len(s.parts) == 5 for s in rec.segments)


def test_program_date_time_is_not_shifted_by_a_late_first_packet() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(130):
        # the first frames arrive late (a publisher's start), the rest on time
        push_video(pkg, i, late=max(0.0, 0.12 - i * 0.03))
    seg1 = pkg.segment(1)
    assert seg1 is not None
    assert abs(seg1.wall_start - (T0 + 2.0)) < 0.002  # the true ingest time of its first frame
    assert pkg.segment(0) is not None


def test_conclude_flushes_the_open_part_and_segment() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(70):
        push_video(pkg, i)
    pkg.conclude()
    assert rec.segments[-1].complete and sum(len(s.parts) for s in rec.segments) == len(rec.parts)
    assert sum(p.duration for p in rec.parts) >= video_dts(69)


def test_preload_hint_names_the_part_that_really_comes_next() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    hinted: dict[int, tuple[int, int]] = {}
    for i in range(300):
        before = len(rec.parts)
        push_video(pkg, i)
        if len(rec.parts) > before:
            hinted[len(rec.parts)] = pkg.next_part()
    made = [(p.segment, p.index) for p in rec.parts]
    # after the first GOP (the keyframe interval is learnt from two keyframes) every hint comes true,
    # including the first part of each segment, announced before the keyframe arrives
    assert all(hinted[n] == made[n] for n in range(8, len(made)))
    assert (3, 0) in [hinted[n] for n in range(8, len(made))]


def test_a_gop_longer_than_the_segment_keeps_hinting_parts_of_the_open_segment() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(600):
        before = len(rec.parts)
        push_video(pkg, i, gop=120)  # 4 s GOP, 2 s SegmentDuration: segments last 4 s
        if len(rec.parts) > before and i > 240:
            nxt = pkg.next_part()
            seg = pkg.segments[-1]
            expect = (seg.number + 1, 0) if (i + 1) % 120 == 0 else (seg.number, len(seg.parts))
            assert nxt == expect, (i, nxt)
    assert all(len(s.parts) == 8 for s in rec.segments)


def test_an_event_timed_in_a_part_already_closed_by_its_last_frame_goes_into_the_next_part() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(15):  # the 15th frame (dts 466) closes part 0 at once
        push_video(pkg, i)
    assert len(rec.parts) == 1
    pkg.add_event(video_dts(14) + 5, b"ID3-late")  # "now" as sendEvent stamps it: just after the newest frame
    pkg.add_event(video_dts(3), b"ID3-old")  # older than the closed part's last frame: dropped, as OME does
    for i in range(15, 30):
        push_video(pkg, i)
    assert b"ID3-late" in rec.parts[1].data and b"ID3-old" not in rec.parts[1].data
    assert not pkg.events


def test_timestamps_in_another_time_base_are_truncated_into_the_track_timescale() -> None:
    pkg = TrackPackager(AUDIO, chunk_duration=0.5, segment_duration=2.0, segment_count=5)
    # the track's own time base, as an equal object or the same one: a tick is a tick
    assert pkg.ticks(1024, Fraction(1, 48000)) == 1024
    assert pkg.ticks(1024, AUDIO.time_base) == 1024
    # 90 kHz and milliseconds into 48 kHz, truncated toward zero as int(Fraction) does, negatives too
    for value, time_base in ((3003, Fraction(1, 90000)), (-3003, Fraction(1, 90000)), (33, MS), (-1, Fraction(1, 7))):
        assert pkg.ticks(value, time_base) == int(value * time_base * 48000)


def test_a_segment_lasts_as_long_as_its_parts() -> None:
    rec = Recorder()
    pkg = video_packager(rec)
    for i in range(200):
        push_video(pkg, i)
    assert rec.segments
    for seg in rec.segments:
        assert seg.duration == sum(p.duration for p in seg.parts) > 0
    growing = pkg.segments[-1]
    assert not growing.complete and growing.duration == sum(p.duration for p in growing.parts)
