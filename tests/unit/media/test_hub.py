"""The fan-out promise: a consumer that falls behind is dropped or skipped, never waited for."""

from __future__ import annotations

import logging
from fractions import Fraction

import pytest

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.hub import StreamHub, Subscriber

TB = Fraction(1, 1000)


def hub() -> StreamHub:
    h = StreamHub("default/app/s")
    h.set_track(Track(0, MediaKind.VIDEO, Codec.H264, TB))
    h.set_track(Track(1, MediaKind.AUDIO, Codec.AAC, TB))
    return h


def video(n: int, key: bool = False) -> Packet:
    return Packet(0, n * 33, n * 33, TB, b"v%d" % n, keyframe=key)


def audio(n: int) -> Packet:
    return Packet(1, n * 21, n * 21, TB, b"a%d" % n, keyframe=True)


def test_a_stuck_drop_subscriber_is_removed_and_the_others_get_everything(caplog: pytest.LogCaptureFixture) -> None:
    h = hub()
    stuck = Subscriber("stuck", max_packets=10, policy="drop")
    reader = Subscriber("reader", max_packets=1000)
    h.subscribe(stuck)
    h.subscribe(reader)
    with caplog.at_level(logging.WARNING):
        for n in range(50):
            h.publish(video(n, key=n % 30 == 0))
    assert h.subscribers == (reader,)
    assert stuck.closed_reason == "slow consumer" and stuck.ended and h.drops == 1
    assert stuck.stats.dropped_packets == 11
    assert [p.data for p in reader.drain()] == [b"v%d" % n for n in range(50)]
    assert "hub dropped subscriber hub=default/app/s subscriber=stuck reason=slow consumer" in caplog.text


def test_a_subscriber_that_leaves_on_purpose_is_removed_quietly(caplog: pytest.LogCaptureFixture) -> None:
    h = hub()
    recorder = Subscriber("record:default/app/r1#1", max_packets=1000)
    reader = Subscriber("reader", max_packets=1000)
    h.subscribe(recorder)
    h.subscribe(reader)
    h.publish(video(0, key=True))
    with caplog.at_level(logging.DEBUG, logger="kiln.media.stream.hub"):
        recorder.end("stopped")     # what :stopRecord does: the session ends its own subscription
        h.publish(video(1))
    assert h.subscribers == (reader,) and h.drops == 0
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "hub subscriber left hub=default/app/s subscriber=record:default/app/r1#1 reason=stopped")]
    assert [p.data for p in reader.drain()] == [b"v0", b"v1"]


def test_a_skip_subscriber_resumes_at_the_next_video_keyframe() -> None:
    h = hub()
    late = Subscriber("late", max_packets=5, policy="skip")
    h.subscribe(late)
    for n in range(1, 8):           # overflows at the 6th packet: queue cleared, waiting for a keyframe
        h.publish(video(n))
    h.publish(audio(1))             # audio is skipped too while waiting
    h.publish(video(8, key=True))
    h.publish(video(9))
    assert [p.data for p in late.drain()] == [b"v8", b"v9"]
    assert late.stats.skips == 1 and late.closed_reason is None and h.subscribers == (late,)
    assert late.stats.dropped_packets == 5 + 2 + 1  # the five queued, v6 and v7 while waiting, a1


def test_a_new_subscriber_starts_at_the_last_keyframe() -> None:
    h = hub()
    for n in range(40):
        h.publish(video(n, key=n in (0, 30)))
        h.publish(audio(n))
    sub = Subscriber("new")
    h.subscribe(sub)
    got = sub.drain()
    assert got[0].data == b"v30" and got[0].keyframe
    assert len(got) == 1 + 2 * 9 + 1  # v30, a30, then v31..v39 with a31..a39


def test_close_ends_every_subscriber_with_the_reason_and_refuses_new_ones() -> None:
    h = hub()
    sub = Subscriber("s")
    h.subscribe(sub)
    h.close("publisher left")
    assert sub.closed_reason == "publisher left" and sub.get(timeout=0) is None
    late = Subscriber("late")
    h.subscribe(late)
    assert late.closed_reason == "publisher left" and h.subscribers == ()


def test_a_hub_that_keeps_no_gop_gives_new_subscribers_only_what_comes_next() -> None:
    h = hub()
    h.publish(video(0, key=True))
    h.keep_gop = False
    for n in range(1, 5):
        h.publish(video(n, key=n == 3))
    sub = Subscriber("new")
    h.subscribe(sub)
    h.publish(video(5))
    assert [p.data for p in sub.drain()] == [b"v5"] and h.gop_snapshot() == []
