"""One clock for a session that sends a live stream somewhere (push, SRT playback): it starts at
the first packet that can start a decoder (a video keyframe when video is carried, else any
packet), puts every track on that zero point, and drops a packet whose dts would not increase.
"""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import MediaKind, Packet, Track


class SessionClock:
    def __init__(self, tracks: list[Track]) -> None:
        self._video_ids = frozenset(t.id for t in tracks if t.kind is MediaKind.VIDEO)
        self._base: Fraction | None = None
        self._offsets: dict[int, int] = {}
        self._last_dts: dict[int, int] = {}

    def can_start(self, packet: Packet) -> bool:
        """A video keyframe when video is carried, else any packet."""
        return not self._video_ids or (packet.keyframe and packet.track_id in self._video_ids)

    def offset(self, packet: Packet) -> int | None:
        """The offset to subtract from this packet's timestamps, or None when it must not be sent
        (before the start, or a dts that does not increase on its track)."""
        if self._base is None:
            if not self.can_start(packet):
                return None
            self._base = packet.dts * packet.time_base
        offset = self._offsets.get(packet.track_id)
        if offset is None:
            offset = self._offsets[packet.track_id] = int(self._base / packet.time_base)
        dts = packet.dts - offset
        last = self._last_dts.get(packet.track_id)
        if dts < 0 or (last is not None and dts <= last):
            return None
        self._last_dts[packet.track_id] = dts
        return offset
