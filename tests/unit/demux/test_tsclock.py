"""TsClock: the rule that turns a TS input's 33-bit, restartable timestamps into increasing ones per track."""

from __future__ import annotations

from kiln.media.formats.mpegts.tsclock import JUMP_AHEAD_S, TsClock

WRAP = 2**33
S = 90_000  # ticks per second
FRAME = 3000  # one frame at 30 fps


def test_first_timeline_keeps_the_source_timestamps() -> None:
    clock = TsClock()
    assert clock.place(0, 126_000, 129_000, FRAME) == (126_000, 129_000)
    assert clock.place(1, 125_000, 125_000, 1920) == (125_000, 125_000)
    assert clock.discontinuities == 0


def test_wrap_counts_on_past_2_33_whatever_lavf_already_corrected() -> None:
    clock = TsClock()
    start = WRAP - 2 * FRAME
    out = [clock.place(0, start + k * FRAME, start + k * FRAME + FRAME, FRAME) for k in range(4)]
    assert [d for d, _ in out] == [start + k * FRAME for k in range(4)]
    assert all(p - d == FRAME for d, p in out)  # pts unwrapped next to its dts (pts wraps first)
    assert clock.place(0, -2 * FRAME + 4 * FRAME - WRAP, 0)[0] == start + 4 * FRAME  # lavf's -2^33 shift
    assert clock.place(0, 5 * FRAME - 2 * FRAME + WRAP, 0)[0] == start + 5 * FRAME  # and its +2^33 shift
    assert clock.discontinuities == 0


def test_backward_jump_continues_after_the_furthest_track() -> None:
    clock = TsClock()
    clock.place(0, 100 * S, 100 * S, FRAME)
    clock.place(1, 100 * S + 2000, 100 * S + 2000, 1920)  # audio got a little further than video
    dts, _ = clock.place(0, 10 * S, 10 * S, FRAME)  # the encoder restarted its clock
    assert dts == 100 * S + 2000 + 1920
    assert clock.discontinuities == 1
    audio, _ = clock.place(1, 10 * S + 100, 10 * S + 100, 1920)  # audio joins the timeline video opened
    assert audio == dts + 100 and clock.discontinuities == 1


def test_late_packets_of_the_old_timeline_keep_their_offset() -> None:
    clock = TsClock()
    clock.place(0, 50 * S, 50 * S, FRAME)
    clock.place(1, 50 * S, 50 * S, 1920)
    new, _ = clock.place(0, 7000 * S, 7000 * S, FRAME)  # a forward jump on video
    assert new == 50 * S + FRAME and clock.discontinuities == 1
    late, _ = clock.place(1, 50 * S + 1920, 50 * S + 1920, 1920)  # audio still finishing the old timeline
    assert late == 50 * S + 1920 and clock.discontinuities == 1
    assert clock.place(0, 7000 * S + FRAME, 7000 * S + FRAME, FRAME)[0] == new + FRAME


def test_a_gap_below_the_threshold_is_kept() -> None:
    clock = TsClock()
    clock.place(0, S, S, FRAME)
    assert clock.place(0, S + (JUMP_AHEAD_S - 1) * S, S + (JUMP_AHEAD_S - 1) * S)[0] == JUMP_AHEAD_S * S
    assert clock.discontinuities == 0


def test_a_repeated_dts_is_moved_forward_and_pts_never_below_it() -> None:
    clock = TsClock()
    clock.place(0, 9000, 9000, FRAME)
    assert clock.place(0, 9000, 9000, FRAME) == (9001, 9001)
