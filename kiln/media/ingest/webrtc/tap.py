"""The seam between aiortc and Kiln: one receiver's RTP goes to the ingest pipeline, undecoded.

aiortc's ``RTCRtpReceiver`` keeps its own transport work (SRTP, RTX unwrap, NACK generation, REMB,
receiver reports, stats) and hands each packet to its jitter buffer, whose complete frames it would
decode on a thread. The tap takes the jitter buffer's place (same ``add`` signature): every packet
goes to :class:`IngestPipeline`, nothing is returned for decoding, and the pipeline's keyframe
request becomes aiortc's own PLI. Sender reports are read on the way to aiortc's handler. The two
private names touched are pinned by aiortc's version in pyproject (1.16) and covered by the e2e tests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtp import RtcpSrPacket, RtpPacket

from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.ingest.webrtc.reorder import RtpIn
from kiln.media.model import Codec

log = logging.getLogger(__name__)

CODECS = {"h264": Codec.H264, "vp8": Codec.VP8, "opus": Codec.OPUS}


@dataclass
class TapCounters:
    packets: int = 0
    bytes: int = 0
    nacks: int = 0               # NACK packets aiortc sent for this track
    plis: int = 0                # keyframe requests sent
    foreign_ssrc: int = 0        # packets from a second SSRC (not simulcast-negotiated): dropped
    unknown_codec: int = 0       # payload types not negotiated, or a codec switch mid-stream


class ReceiverTap:
    """Replaces one receiver's jitter buffer; ``last_packet`` (monotonic) feeds the session's timeout."""

    def __init__(self, transceiver: RTCRtpTransceiver, pipeline: IngestPipeline) -> None:
        self.transceiver = transceiver
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.pipeline = pipeline
        self.counters = TapCounters()
        self.track_id: int | None = None
        self.codec: Codec | None = None
        self.payload_type: int | None = None
        self.ssrc: int | None = None
        self.last_packet = 0.0
        self._warned = False

    def install(self) -> None:
        receiver: Any = self.receiver
        receiver._RTCRtpReceiver__jitter_buffer = self  # aiortc 1.16: the buffer its RTP handler feeds
        aiortc_rtcp = receiver._handle_rtcp_packet
        aiortc_nack = receiver._send_rtcp_nack

        async def handle_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket) and self.track_id is not None and packet.ssrc == self.ssrc:
                info = packet.sender_info
                self.pipeline.sender_report(self.track_id, info.rtp_timestamp, info.ntp_timestamp, time.monotonic())
            await aiortc_rtcp(packet)

        async def send_nack(media_ssrc: int, lost: list[int]) -> None:
            self.counters.nacks += 1
            await aiortc_nack(media_ssrc, lost)

        receiver._handle_rtcp_packet = handle_rtcp
        receiver._send_rtcp_nack = send_nack

    # -- aiortc's jitter buffer interface ---------------------------------------------------------
    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        now = time.monotonic()
        if self.ssrc is None:
            if not self._start(packet):
                return False, None
        elif packet.ssrc != self.ssrc:
            self.counters.foreign_ssrc += 1
            self._warn("a second SSRC", packet)
            return False, None
        elif packet.payload_type != self.payload_type:
            self.counters.unknown_codec += 1
            self._warn("a payload type other than the first one", packet)
            return False, None
        self.counters.packets += 1
        self.counters.bytes += len(packet.payload)
        self.last_packet = now
        assert self.track_id is not None
        pli = self.pipeline.rtp(self.track_id, RtpIn(packet.sequence_number, packet.timestamp, bool(packet.marker),
                                                     packet.payload, now))
        if pli:
            self.counters.plis += 1
        return pli, None

    def _start(self, packet: RtpPacket) -> bool:
        codec = next((c for c in self.transceiver._codecs if c.payloadType == packet.payload_type), None)
        kind = CODECS.get(codec.name.lower()) if codec is not None else None
        if codec is None or kind is None:
            self.counters.unknown_codec += 1
            self._warn("a payload type that was not negotiated", packet)
            return False
        self.ssrc, self.payload_type, self.codec = packet.ssrc, packet.payload_type, kind
        self.track_id = self.pipeline.add_track(kind, codec.clockRate, codec.channels or 0)
        log.info("webrtc ingest track kind=%s codec=%s payload_type=%d ssrc=%d", self.transceiver.kind,
                 kind.value, packet.payload_type, packet.ssrc)
        return True

    def _warn(self, what: str, packet: RtpPacket) -> None:
        if not self._warned:
            self._warned = True
            log.warning("webrtc ingest dropping packets with %s kind=%s ssrc=%d payload_type=%d",
                        what, self.transceiver.kind, packet.ssrc, packet.payload_type)
