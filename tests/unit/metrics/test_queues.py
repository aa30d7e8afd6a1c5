"""Queue counters belong to their hub subscriber; the internal-queues view and the session registry read them."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.runtime import MediaRuntime
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import LiveStream
from kiln.metrics import SessionCounters

TB = Fraction(1, 1000)


def test_internal_queues_show_each_subscribers_size_peak_and_drops() -> None:
    runtime = MediaRuntime(None)
    live = LiveStream("v", "a", "s", source_type="Rtmp", source_url="", profiles=[])
    runtime.streams.add(live)
    live.input.set_track(Track(0, MediaKind.AUDIO, Codec.AAC, TB))
    slow = Subscriber("slow", max_packets=5, policy="skip")
    live.input.subscribe(slow)
    # the sixth overflows: the five queued are skipped and counted; with no video to wait for, the sixth
    # itself is kept and starts the new queue with the next two, so it is not a drop
    for n in range(8):
        live.input.publish(Packet(0, n * 21, n * 21, TB, b"a", keyframe=True))
    assert runtime.queue_metrics() == [{
        "id": id(slow), "urn": "v/a/s/slow", "type": "Subscriber", "size": 3, "peak": 5, "threshold": 5,
        "avgWaitingTime": 0, "inputPerSecond": 0, "outputPerSecond": 0, "drop": 5}]
    slow.get(0)
    assert (slow.stats.delivered, slow.stats.skips) == (1, 1)


def test_session_counters_are_found_by_task_key_until_removed() -> None:
    sessions = SessionCounters()
    push, record = object(), object()
    sessions.put(("push", "v", "a", "p1"), push)
    sessions.put(("record", "v", "a", "r1"), record)
    assert sessions.get(("push", "v", "a", "p1")) is push
    assert dict(sessions.walk()) == {("push", "v", "a", "p1"): push, ("record", "v", "a", "r1"): record}
    sessions.pop(("push", "v", "a", "p1"))
    sessions.pop(("push", "v", "a", "p1"))  # a second stop is harmless
    assert sessions.get(("push", "v", "a", "p1")) is None
    assert list(sessions.walk()) == [(("record", "v", "a", "r1"), record)]
