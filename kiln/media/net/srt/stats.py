"""The subset of libsrt's per-socket counters Kiln reports (bytes, loss, drops, RTT, delay).

``*_unique`` byte counters are payload bytes the application sent or will receive, without
retransmissions; the plain totals include retransmitted packets, and libsrt counts 44 bytes of
header per packet in every byte counter (IP 20 + UDP 8 + SRT 16).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.media.net.srt.abi import CBytePerfMon

PACKET_HEADER_BYTES = 44


@dataclass(frozen=True)
class SrtStats:
    elapsed_ms: int
    packets_sent: int
    packets_received: int
    packets_sent_unique: int
    packets_received_unique: int
    packets_send_lost: int
    packets_receive_lost: int
    packets_retransmitted: int
    packets_send_dropped: int
    packets_receive_dropped: int
    bytes_sent: int
    bytes_received: int
    bytes_sent_unique: int
    bytes_received_unique: int
    bytes_receive_lost: int
    bytes_retransmitted: int
    bytes_send_dropped: int
    bytes_receive_dropped: int
    rtt_ms: float
    bandwidth_mbps: float
    send_rate_mbps: float
    receive_rate_mbps: float
    send_buffer_ms: int
    receive_buffer_ms: int
    send_tsbpd_delay_ms: int
    receive_tsbpd_delay_ms: int

    @classmethod
    def from_perfmon(cls, p: CBytePerfMon) -> SrtStats:
        return cls(
            elapsed_ms=p.msTimeStamp,
            packets_sent=p.pktSentTotal,
            packets_received=p.pktRecvTotal,
            packets_sent_unique=p.pktSentUniqueTotal,
            packets_received_unique=p.pktRecvUniqueTotal,
            packets_send_lost=p.pktSndLossTotal,
            packets_receive_lost=p.pktRcvLossTotal,
            packets_retransmitted=p.pktRetransTotal,
            packets_send_dropped=p.pktSndDropTotal,
            packets_receive_dropped=p.pktRcvDropTotal,
            bytes_sent=p.byteSentTotal,
            bytes_received=p.byteRecvTotal,
            bytes_sent_unique=p.byteSentUniqueTotal,
            bytes_received_unique=p.byteRecvUniqueTotal,
            bytes_receive_lost=p.byteRcvLossTotal,
            bytes_retransmitted=p.byteRetransTotal,
            bytes_send_dropped=p.byteSndDropTotal,
            bytes_receive_dropped=p.byteRcvDropTotal,
            rtt_ms=p.msRTT,
            bandwidth_mbps=p.mbpsBandwidth,
            send_rate_mbps=p.mbpsSendRate,
            receive_rate_mbps=p.mbpsRecvRate,
            send_buffer_ms=p.msSndBuf,
            receive_buffer_ms=p.msRcvBuf,
            send_tsbpd_delay_ms=p.msSndTsbPdDelay,
            receive_tsbpd_delay_ms=p.msRcvTsbPdDelay,
        )
