"""Packetize once per rendition, protect and send per viewer.

Stock aiortc packetizes every frame again for every viewer (``encoder.pack``: H.264 NAL split,
STAP-A/FU-A). Kiln cuts a frame into RTP payloads once, in the feed, with aiortc's own packetizers;
what is left per viewer is the RTP header, SRTP and the socket write (:mod:`kiln.media.rtc.rtp_out`).
A NAL larger than one packet is cut into FU-A fragments of one size (only the last is shorter; aiortc
spreads the remainder, so its fragments differ by a byte): a viewer's run of equal packets then goes out
in one segmentation-offload send (:mod:`kiln.media.rtc.rtp_out`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from aiortc.codecs.h264 import FU_A_HEADER_SIZE, NAL_HEADER_SIZE, NAL_TYPE_FU_A, PACKET_MAX, H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

VIDEO_CLOCK = 90000
OPUS_CLOCK = 48000


@dataclass(frozen=True, slots=True)
class Prepacked:
    """One frame's RTP payloads and RTP timestamp (in the codec's clock, before the sender's random origin)."""

    payloads: list[bytes]
    timestamp: int


class EvenH264(H264Encoder):
    """aiortc's H.264 packetization (STAP-A, single NAL) with FU-A fragments of equal size but the last."""

    @staticmethod
    def _packetize_fu_a(data: bytes) -> list[bytes]:
        body = len(data) - NAL_HEADER_SIZE
        available = PACKET_MAX - FU_A_HEADER_SIZE
        count = -(-body // available)
        size = -(-body // count)  # as few packets as aiortc makes, all this size but the last
        indicator = (data[0] & 0xE0) | NAL_TYPE_FU_A
        nal = data[0] & 0x1F
        fragments = []
        for offset in range(NAL_HEADER_SIZE, len(data), size):
            end = offset + size
            flags = (0x80 if offset == NAL_HEADER_SIZE else 0) | (0x40 if end >= len(data) else 0)
            fragments.append(bytes((indicator, nal | flags)) + data[offset:end])
        return fragments


class Packetizer:
    """Cuts one track's frames into RTP payloads: ``h264`` (Annex B in), ``vp8`` or ``opus``."""

    def __init__(self, codec: str) -> None:
        if codec not in ("h264", "vp8", "opus"):
            raise ValueError(f"no RTP packetizer for {codec}")
        self.codec = codec
        self.clock = OPUS_CLOCK if codec == "opus" else VIDEO_CLOCK
        self._picture_id = 0

    def pack(self, data: bytes, pts: int, time_base: Fraction) -> Prepacked:
        timestamp = int(pts * time_base * self.clock)
        if self.codec == "h264":
            return Prepacked(EvenH264._packetize(EvenH264._split_bitstream(data)), timestamp)
        if self.codec == "vp8":
            payloads = Vp8Encoder._packetize(data, self._picture_id)
            self._picture_id = (self._picture_id + 1) % (1 << 15)
            return Prepacked(payloads, timestamp)
        return Prepacked([data], timestamp)
