"""The viewer's bandwidth estimate, as its receiver reports it in REMB (RTCP PSFB, ``goog-remb``).

aiortc reads REMB only to set an encoder's target (clamped to its own 0.5–3 Mbit/s range) and
exposes nothing; a sender's RTCP handler is wrapped here to keep the last estimate as sent, which
is what choosing a rendition needs.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci


class RembMeter:
    """The latest REMB estimate (bit/s) for one sender, and when it came."""

    def __init__(self) -> None:
        self.bitrate: int | None = None
        self.at = 0.0

    def attach(self, sender: Any) -> None:
        original = sender._handle_rtcp_packet
        ssrc = sender._ssrc

        async def handle(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    bitrate, ssrcs = 0, []
                if ssrc in ssrcs:
                    self.bitrate, self.at = bitrate, time.monotonic()
            await original(packet)

        sender._handle_rtcp_packet = handle

    def estimate(self, max_age_s: float = 5.0) -> int | None:
        if self.bitrate is None or time.monotonic() - self.at > max_age_s:
            return None
        return self.bitrate
