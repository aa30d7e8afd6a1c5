"""Blocked requests wait per track (LlhlsStream.on_part_of): a part wakes the waiters of its own track only,
all of them from one loop callback, and the stream's end wakes every track's."""

from __future__ import annotations

import asyncio
from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.publisher import settings_from
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.live import LiveStream, OutputStream, OutputTrack

RATE = 48000
FRAME = 1024


def audio(track_id: int) -> Track:
    return Track(track_id, MediaKind.AUDIO, Codec.AAC, Fraction(1, RATE), config=b"\x11\x90", sample_rate=RATE,
                 channels=2, samples_per_frame=FRAME, codec_string="mp4a.40.2", name=f"a{track_id}")


def two_track_stream() -> LlhlsStream:
    live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[])
    tracks = [OutputTrack(t.id, MediaKind.AUDIO, t.name or "", {}, True, t.id, track=t) for t in (audio(1), audio(2))]
    output = OutputStream("cam", {}, tracks, StreamHub("default/app/cam"))
    settings = settings_from({"chunkDuration": 0.5, "segmentDuration": 1, "segmentCount": 3})
    return LlhlsStream(asyncio.get_running_loop(), live, output, settings)


def test_a_part_wakes_only_its_own_tracks_waiters_from_one_loop_callback() -> None:
    async def run() -> None:
        stream = two_track_stream()
        one, two = stream.track_by_id(1), stream.track_by_id(2)
        assert one is not None and two is not None
        woken: list[int] = []
        for _ in range(500):
            stream.on_part_of(one, lambda: woken.append(1))
            stream.on_part_of(two, lambda: woken.append(2))
        loop = asyncio.get_running_loop()
        scheduled = []
        original = loop.call_soon

        def counting(callback, *args, **kwargs):  # type: ignore[no-untyped-def]
            scheduled.append(callback)
            return original(callback, *args, **kwargs)

        loop.call_soon = counting  # type: ignore[method-assign]
        try:
            i = 0
            before = two.last_part()
            while two.last_part() == before:  # track 2's frames only, until it closes a part
                stream._on_packet(Packet(2, i * FRAME, i * FRAME, Fraction(1, RATE), b"\x01" * 32, keyframe=True))
                i += 1
        finally:
            loop.call_soon = original  # type: ignore[method-assign]
        await asyncio.sleep(0)
        assert woken == [2] * 500, "track 1's waiters are not woken by track 2's part"
        assert len([c for c in scheduled if getattr(c, "__name__", "") == "_run_waiters"]) == 1
        stream.end("test")
        await asyncio.sleep(0)
        assert woken == [2] * 500 + [1] * 500, "the end wakes the rest"

    asyncio.run(run())
