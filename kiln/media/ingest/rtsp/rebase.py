"""``ignoreRtcpSRTimestamp``: put every track on its own clock, starting at zero.

FFmpeg's RTSP demuxer aligns tracks with the NTP times of RTCP Sender Reports. Cameras with a
wrong or jumping SR clock then produce audio and video far apart; OME's switch ignores the SR and
trusts each track's RTP timestamps alone. Kiln does the same after the demuxer: each track is
shifted so its first packet is at zero, whatever the SR said about its start.
"""

from __future__ import annotations

from dataclasses import replace

from kiln.media.model import Packet


class PerTrackRebase:
    def __init__(self) -> None:
        self._first: dict[int, int] = {}

    def apply(self, packet: Packet) -> Packet:
        first = self._first.setdefault(packet.track_id, packet.dts)
        if first == 0:
            return packet
        return replace(packet, pts=packet.pts - first, dts=packet.dts - first)
