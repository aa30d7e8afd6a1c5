"""The seam between aiortc and Kiln: one receiver's RTP goes to the ingest pipeline, undecoded.

aiortc's ``RTCRtpReceiver`` keeps its own transport work (SRTP, RTX unwrap, NACK generation, REMB,
receiver reports, stats) and hands each packet to its jitter buffer, whose complete frames it would
decode on a thread. The tap takes the jitter buffer's place (same ``add`` signature): every packet
goes to :class:`IngestPipeline`, nothing is returned for decoding, and the pipeline's keyframe
request becomes aiortc's own PLI. Sender reports are read on the way to aiortc's handler. The two
private names touched are pinned by aiortc's version in pyproject (1.16) and covered by the e2e tests.

With simulcast negotiated (``layers`` > 1) each SSRC, up to that many, is a track of its own; aiortc's
NACK generator follows one sequence, so the tap gives it one per SSRC (a shared one would read the
layers' interleaved sequence numbers as losses and NACK them). Browsers signal no SSRCs for rid layers,
so aiortc cannot tell which layer an RTX stream repairs and drops it: the tap learns each layer's SSRC
from its RTP stream id extension and each RTX SSRC from its repaired RTP stream id, and tells aiortc
(its RTX map), which then unwraps those retransmissions as for a signalled SSRC.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcrtpreceiver import NackGenerator
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
    foreign_ssrc: int = 0        # packets from an SSRC beyond the negotiated layers (one without simulcast): dropped
    unknown_codec: int = 0       # payload types not negotiated, or a codec switch mid-stream
    rtx: int = 0                 # retransmissions (RTX) of a simulcast layer matched to it by rid


class ReceiverTap:
    """Replaces one receiver's jitter buffer; ``last_packet`` (monotonic) feeds the session's timeout."""

    def __init__(self, transceiver: RTCRtpTransceiver, pipeline: IngestPipeline, layers: int = 1) -> None:
        self.transceiver = transceiver
        self.layers = layers  # simulcast layers negotiated on this m-line: SSRCs taken as tracks
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.pipeline = pipeline
        self.counters = TapCounters()
        self.track_id: int | None = None
        self.codec: Codec | None = None
        self.payload_type: int | None = None
        self.ssrc: int | None = None           # the first SSRC (the only one without simulcast)
        self.ssrcs: dict[int, int] = {}         # SSRC -> pipeline track id, one per layer
        self.last_packet = 0.0
        self.rids: dict[str, int] = {}          # simulcast: rid -> the SSRC that carries it
        self._warned = False

    def install(self) -> None:
        receiver: Any = self.receiver
        receiver._RTCRtpReceiver__jitter_buffer = self  # aiortc 1.16: the buffer its RTP handler feeds
        if self.layers > 1 and receiver._RTCRtpReceiver__nack_generator is not None:
            receiver._RTCRtpReceiver__nack_generator = LayerNacks()
        aiortc_rtcp = receiver._handle_rtcp_packet
        aiortc_nack = receiver._send_rtcp_nack

        async def handle_rtcp(packet: Any) -> None:
            track_id = self.ssrcs.get(packet.ssrc) if isinstance(packet, RtcpSrPacket) else None
            if isinstance(packet, RtcpSrPacket) and track_id is not None:
                info = packet.sender_info
                self.pipeline.sender_report(track_id, info.rtp_timestamp, info.ntp_timestamp, time.monotonic())
            await aiortc_rtcp(packet)

        async def send_nack(media_ssrc: int, lost: list[int]) -> None:
            self.counters.nacks += 1
            await aiortc_nack(media_ssrc, lost)

        receiver._handle_rtcp_packet = handle_rtcp
        receiver._send_rtcp_nack = send_nack
        if self.layers > 1:
            self._match_rtx_by_rid(receiver)

    def _match_rtx_by_rid(self, receiver: Any) -> None:
        """RTX of rid layers: its SSRC is put in aiortc's RTX map once its repaired rid names a known layer."""
        rtx_map: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # aiortc 1.16: RTX SSRC -> media SSRC
        rtx_types = {c.payloadType for c in self.transceiver._codecs if c.name.lower() == "rtx"}
        aiortc_rtp = receiver._handle_rtp_packet

        async def handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.payload_type in rtx_types:
                if packet.ssrc not in rtx_map:
                    media = self.rids.get(packet.extensions.repaired_rtp_stream_id or "")
                    if media is not None and len(rtx_map) < self.layers:
                        rtx_map[packet.ssrc] = media
                        log.info("webrtc ingest rtx matched by rid rid=%s rtx_ssrc=%d ssrc=%d",
                                 packet.extensions.repaired_rtp_stream_id, packet.ssrc, media)
                if packet.ssrc in rtx_map and len(packet.payload) >= 2:
                    self.counters.rtx += 1
            elif packet.extensions.rtp_stream_id and len(self.rids) < self.layers:
                self.rids.setdefault(packet.extensions.rtp_stream_id, packet.ssrc)
            await aiortc_rtp(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle_rtp

    # -- aiortc's jitter buffer interface ---------------------------------------------------------
    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        now = time.monotonic()
        track_id = self.ssrcs.get(packet.ssrc)
        if track_id is None:
            if self.ssrcs and len(self.ssrcs) >= self.layers:
                self.counters.foreign_ssrc += 1
                self._warn("a second SSRC" if self.layers == 1 else "an SSRC beyond the simulcast layers", packet)
                return False, None
            track_id = self._start(packet)
            if track_id is None:
                return False, None
        elif packet.payload_type != self.payload_type:
            self.counters.unknown_codec += 1
            self._warn("a payload type other than the first one", packet)
            return False, None
        self.counters.packets += 1
        self.counters.bytes += len(packet.payload)
        self.last_packet = now
        pli = self.pipeline.rtp(track_id, RtpIn(packet.sequence_number, packet.timestamp, bool(packet.marker),
                                                packet.payload, now))
        if pli:
            self.counters.plis += 1
        return pli, None

    def _start(self, packet: RtpPacket) -> int | None:
        """A new SSRC's track (the first one fixes the codec: layers share it), or None to drop it."""
        codec = next((c for c in self.transceiver._codecs if c.payloadType == packet.payload_type), None)
        kind = CODECS.get(codec.name.lower()) if codec is not None else None
        if codec is None or kind is None or packet.payload_type != (self.payload_type or packet.payload_type):
            self.counters.unknown_codec += 1
            self._warn("a payload type that was not negotiated", packet)
            return None
        track_id = self.pipeline.add_track(kind, codec.clockRate, codec.channels or 0)
        self.ssrcs[packet.ssrc] = track_id
        if self.ssrc is None:
            self.ssrc, self.payload_type, self.codec, self.track_id = packet.ssrc, packet.payload_type, kind, track_id
        log.info("webrtc ingest track kind=%s codec=%s payload_type=%d ssrc=%d layer=%d/%d", self.transceiver.kind,
                 kind.value, packet.payload_type, packet.ssrc, len(self.ssrcs), self.layers)
        return track_id

    def _warn(self, what: str, packet: RtpPacket) -> None:
        if not self._warned:
            self._warned = True
            log.warning("webrtc ingest dropping packets with %s kind=%s ssrc=%d payload_type=%d",
                        what, self.transceiver.kind, packet.ssrc, packet.payload_type)


class LayerNacks(NackGenerator):
    """aiortc's NACK generator, one per SSRC: ``missing`` is that of the SSRC of the packet last added,
    which is the SSRC aiortc sends the NACK for."""

    def __init__(self) -> None:
        super().__init__()
        self._by_ssrc: dict[int, NackGenerator] = {}

    def add(self, packet: RtpPacket) -> bool:
        generator = self._by_ssrc.get(packet.ssrc)
        if generator is None:
            if len(self._by_ssrc) >= 8:  # bounded: SSRCs beyond the layers are dropped by the tap anyway
                self.missing = set()
                return False
            generator = self._by_ssrc[packet.ssrc] = NackGenerator()
        missed = generator.add(packet)
        self.missing = generator.missing
        return missed
