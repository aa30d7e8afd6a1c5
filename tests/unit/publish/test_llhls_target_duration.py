"""Every media playlist of a stream says the same TARGETDURATION (RFC 8216 6.2.4), also when its variants come
from encoders with different GOPs (a multiplex channel): the longest segment of any track sets it."""

from __future__ import annotations

import asyncio
import re
from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.publisher import settings_from
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.live import LiveStream, OutputStream, OutputTrack

MS = Fraction(1, 1000)


def video(track_id: int, width: int) -> Track:
    return Track(track_id, MediaKind.VIDEO, Codec.H264, MS, config=bytes.fromhex("0164001fffe100"),
                 codec_string="avc1.64001f", width=width, height=width * 9 // 16, name=f"v{track_id}")


def target_of(text: str) -> int:
    found = re.search(r"#EXT-X-TARGETDURATION:(\d+)", text)
    assert found is not None
    return int(found.group(1))


def test_variants_with_different_gops_list_one_target_duration() -> None:
    async def run() -> None:
        live = LiveStream("default", "mux", "abr", source_type="Multiplex", source_url="", profiles=[])
        tracks = [OutputTrack(t.id, MediaKind.VIDEO, t.name, {}, True, t.id, track=t)
                  for t in (video(0, 320), video(1, 640))]
        output = OutputStream("abr", {}, tracks, StreamHub("default/mux/abr"))
        settings = settings_from({"chunkDuration": 0.5, "segmentDuration": 1, "segmentCount": 5})
        stream = LlhlsStream(asyncio.get_running_loop(), live, output, settings)
        short, long_gop = stream.track_by_id(0), stream.track_by_id(1)
        assert short is not None and long_gop is not None
        for i in range(8 * 30):  # 8 s at 30 fps: keyframes every 0.5 s on track 0, every 2.5 s on track 1
            dts = i * 1000 // 30
            stream._on_packet(Packet(0, dts, dts, MS, b"\x00\x00\x00\x02\x09\x10", keyframe=i % 15 == 0))
            stream._on_packet(Packet(1, dts, dts, MS, b"\x00\x00\x00\x02\x09\x10", keyframe=i % 75 == 0))
        targets = {target_of(stream.chunklist(pkg, "", legacy=False, rewind=True)) for pkg in (short, long_gop)}
        assert targets == {3}, "the 2.5 s segments of track 1 set both playlists' target"
        stream.end("test")

    asyncio.run(run())
