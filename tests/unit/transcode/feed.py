"""Feeding generated packets through a LiveStream and collecting what its output hubs publish (no sockets)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from typing import Any

import av

from kiln.media.model import Packet, Track
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import LiveStream

Outputs = dict[str, dict[int, list[Packet]]]


def start_live(tracks: Iterable[Track], profiles: list[dict[str, Any]]) -> tuple[LiveStream, dict[str, Subscriber]]:
    """A started LiveStream named default/app/cam, with a roomy subscriber on every output hub."""
    live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=profiles)
    for track in tracks:
        live.on_track(track)
    assert live.started
    subs = {}
    for name, out in live.outputs.items():
        subs[name] = Subscriber(f"test:{name}", max_packets=100_000)
        out.hub.subscribe(subs[name], from_keyframe=False)
    return live, subs


def finish(live: LiveStream, subs: dict[str, Subscriber]) -> Outputs:
    """Let the transcoder drain and flush, then what each output hub published, by output track id."""
    live.transcoder.finish()
    assert live.transcoder.join(60)
    got: Outputs = {}
    for name, sub in subs.items():
        by_track: dict[int, list[Packet]] = defaultdict(list)
        for p in sub.drain():
            by_track[p.track_id].append(p)
        got[name] = by_track
    return got


def shifted(packets: Iterable[Packet], ms: int) -> list[Packet]:
    """The packets ``ms`` later (1/1000 time base, as the clips are)."""
    assert all(p.time_base == Fraction(1, 1000) for p in packets)
    return [replace(p, pts=p.pts + ms, dts=p.dts + ms, arrival=0.0) for p in packets]


def decode_frames(config: bytes, packets: list[Packet], count: int = 5) -> list[av.VideoFrame]:
    """Decode ``count`` H.264 packets (from a keyframe) the way a player would."""
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = config
    frames = []
    for p in packets[:count]:
        frames += ctx.decode(av.Packet(p.data))
    return frames + list(ctx.decode(None))
