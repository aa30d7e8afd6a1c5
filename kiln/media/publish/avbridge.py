"""Handing Kiln's own packets to PyAV muxers without decoding anything.

PyAV wants output streams made from input-stream templates. Kiln's tracks come from its own
parsers, so the bridge writes an ISO-BMFF init segment for the tracks (Kiln's own box writer),
opens it with PyAV, and uses those streams as templates: PyAV then knows each codec's parameters
(extradata, size, sample rate) exactly as Kiln does.
"""

from __future__ import annotations

import io
from dataclasses import replace
from fractions import Fraction

import av

from kiln.media.formats.bmff.init import build_init_segment_multi
from kiln.media.model import Packet, Track


class Templates:
    """PyAV input streams describing ``tracks``, index-aligned with them."""

    def __init__(self, tracks: list[Track]) -> None:
        self.tracks = tracks
        mp4_tracks = [replace(t, id=i + 1) for i, t in enumerate(tracks)]
        self._container = av.open(io.BytesIO(build_init_segment_multi(mp4_tracks)), "r", format="mp4")
        streams = list(self._container.streams)
        if len(streams) != len(tracks):
            raise ValueError(f"template has {len(streams)} streams for {len(tracks)} tracks")
        self.by_track_id = {t.id: s for t, s in zip(tracks, streams, strict=True)}

    def close(self) -> None:
        self._container.close()


def to_av_packet(packet: Packet, stream: av.stream.Stream, offset: int = 0) -> av.Packet[av.stream.Stream]:
    """A PyAV packet for ``stream`` with timestamps shifted by ``offset`` (in the packet's time base)."""
    out = av.Packet(packet.data)
    out.pts = packet.pts - offset
    out.dts = packet.dts - offset
    out.time_base = packet.time_base
    if packet.duration:
        out.duration = packet.duration
    out.is_keyframe = packet.keyframe
    out.stream = stream
    return out


def ticks(seconds: Fraction, time_base: Fraction) -> int:
    return int(seconds / time_base)
