"""A feed's conversion (AVCC to Annex B with parameter sets) and a viewer's tap (never blocking the feed)."""

from __future__ import annotations

import asyncio
import struct
from fractions import Fraction

from kiln.media.formats.codecs.h264 import AvcConfig
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.webrtc.feed import AUDIO_QUEUE, VIDEO_QUEUE, AnnexB, RtcFrame, Tap
from kiln.media.rtc.prepacked import Prepacked

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0xDA])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84])
SLICE = bytes([0x41, 0x9A, 0x02])
TB = Fraction(1, 1000)


def _avcc(*nals: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def test_keyframes_get_sps_pps_in_front_and_other_frames_do_not() -> None:
    config = AvcConfig(0x42, 0xC0, 0x1E, 4, (SPS,), (PPS,)).to_bytes()
    conv = AnnexB(Track(0, MediaKind.VIDEO, Codec.H264, TB, config=config))
    key = conv.convert(Packet(0, 0, 0, TB, _avcc(IDR), keyframe=True))
    assert key == b"\0\0\0\1" + SPS + b"\0\0\0\1" + PPS + b"\0\0\0\1" + IDR
    assert conv.convert(Packet(0, 33, 33, TB, _avcc(SLICE))) == b"\0\0\0\1" + SLICE
    # a keyframe that carries its own SPS is not given a second one
    inband = conv.convert(Packet(0, 66, 66, TB, _avcc(SPS, PPS, IDR), keyframe=True))
    assert inband.count(SPS) == 1


def _frame(track_id: int, keyframe: bool = False, arrival: float = 0.0) -> RtcFrame:
    return RtcFrame(track_id, Prepacked([b"x"], 0), 1, keyframe, arrival)


def test_tap_starts_at_a_keyframe_and_skips_a_viewer_that_falls_behind() -> None:
    async def main() -> None:
        tap = Tap({0: "video", 1: "audio"})
        tap.offer(_frame(1))            # before any keyframe: nothing
        tap.offer(_frame(0))
        assert not tap.queues["video"] and not tap.queues["audio"]
        tap.offer(_frame(0, keyframe=True))
        tap.offer(_frame(1))
        tap.offer(_frame(7))            # a track this viewer does not play
        assert len(tap.queues["video"]) == 1 and len(tap.queues["audio"]) == 1
        for _ in range(VIDEO_QUEUE + 5):  # nobody reads: the tap skips instead of growing or blocking
            tap.offer(_frame(0))
        assert tap.skips == 1 and not tap.queues["video"] and not tap.queues["audio"] and tap.waiting_key
        for _ in range(AUDIO_QUEUE + 1):  # audio alone overflowing skips too (it also waits for a keyframe)
            tap.offer(_frame(1))
        assert tap.skips == 1 and not tap.queues["audio"]

    asyncio.run(main())


def test_tap_get_waits_and_close_wakes_readers() -> None:
    async def main() -> None:
        tap = Tap({0: "video"})
        reader = asyncio.ensure_future(tap.get("video"))
        await asyncio.sleep(0)
        tap.offer(_frame(0, keyframe=True))
        assert (await reader) is not None
        waiting = asyncio.ensure_future(tap.get("video"))
        await asyncio.sleep(0)
        tap.close()
        assert (await waiting) is None

    asyncio.run(main())


def test_retarget_switches_tracks_from_their_next_keyframe() -> None:
    tap = Tap({0: "video"})
    tap.offer(_frame(0, keyframe=True))
    tap.retarget({5: "video"})
    assert tap.skips == 0 and not tap.queues["video"] and tap.waiting_key
    tap.offer(_frame(0, keyframe=True))
    assert not tap.queues["video"]
    tap.offer(_frame(5, keyframe=True))
    assert len(tap.queues["video"]) == 1


def test_a_viewer_more_than_a_second_behind_live_is_resynced() -> None:
    tap = Tap({0: "video"})
    tap.offer(_frame(0, keyframe=True, arrival=100.0))
    for i in range(1, 30):
        tap.offer(_frame(0, arrival=100.0 + i / 30))
    assert tap.skips == 0 and len(tap.queues["video"]) == 30  # a second queued: still live enough
    tap.offer(_frame(0, arrival=101.1))
    assert tap.skips == 1 and not tap.queues["video"] and tap.waiting_key
