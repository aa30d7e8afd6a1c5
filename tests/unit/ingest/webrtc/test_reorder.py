"""The frame buffer: reordering, marker completion, wrap-around, and giving up on holes."""

from __future__ import annotations

import random

from kiln.media.ingest.webrtc.reorder import FrameBuffer, RtpIn
from tests.unit.ingest.webrtc.rtp_media import h264_frames, rtp_packets


def _packets(frames: int = 8) -> list[RtpIn]:
    return rtp_packets(h264_frames(frames))


def test_in_order_packets_give_every_frame_across_the_sequence_wrap() -> None:
    packets = _packets()
    assert packets[0].sequence_number > packets[-1].sequence_number  # the run wraps at 65535
    buffer = FrameBuffer(video=True)
    frames = [f for p in packets for f in buffer.push(p)]
    assert [f.timestamp for f in frames] == [i * 3000 for i in range(8)]
    assert not any(f.after_loss for f in frames)


def test_reordered_packets_give_the_same_frames() -> None:
    packets = _packets()
    shuffled = packets[:]
    rng = random.Random(7)
    for i in range(0, len(shuffled) - 4, 4):  # local reordering, as a network does it
        window = shuffled[i:i + 4]
        rng.shuffle(window)
        shuffled[i:i + 4] = window
    buffer = FrameBuffer(video=True)
    out = [f for p in shuffled for f in buffer.push(p)]
    expected = FrameBuffer(video=True)
    reference = [f for p in packets for f in expected.push(p)]
    assert [(f.timestamp, f.payloads) for f in out] == [(f.timestamp, f.payloads) for f in reference]


def test_duplicates_and_late_packets_are_counted_not_delivered_twice() -> None:
    packets = _packets(3)
    buffer = FrameBuffer(video=True)
    out = [f for p in packets + packets[:3] for f in buffer.push(p)]
    assert len(out) == 3
    assert buffer.stats.late == 3


def test_a_hole_that_is_never_filled_drops_its_frame_and_flags_the_next() -> None:
    packets = _packets(6)
    frame_of = {}
    for p in packets:
        frame_of.setdefault(p.timestamp, []).append(p)
    lost = frame_of[6000][2]  # a middle packet of frame 2
    buffer = FrameBuffer(video=True, max_wait_s=0.2)
    out = []
    for p in packets:
        if p is lost:
            continue
        out += buffer.push(p)
    assert [f.timestamp for f in out] == [0, 3000]  # waiting on the hole: nothing after it leaves yet
    # time passes (packets keep coming): the buffer gives up on the hole
    late = RtpIn((packets[-1].sequence_number + 1) & 0xFFFF, 18000, True, b"\x41\x9a", packets[-1].arrival + 0.5)
    out += buffer.push(late)
    assert 6000 not in [f.timestamp for f in out]
    after = [f for f in out if f.timestamp > 6000]
    assert after and after[0].after_loss and not any(f.after_loss for f in after[1:])
    assert buffer.stats.skipped_gaps == 1


def test_audio_packets_are_frames_and_holes_are_skipped_quickly() -> None:
    buffer = FrameBuffer(video=False, max_wait_s=0.06)
    out = []
    for i in (0, 1, 3, 4, 5, 6):
        out += buffer.push(RtpIn(i, i * 960, False, bytes([i]), 10.0 + i * 0.025))
    assert [f.timestamp // 960 for f in out] == [0, 1, 3, 4, 5, 6]
    assert out[2].after_loss
