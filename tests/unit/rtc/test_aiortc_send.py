"""The aiortc attributes Kiln's send path reads are still there, and a renamed one fails loudly."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket

from kiln.media.rtc.aiortc_send import AiortcChanged, SenderReport, intercept_rtcp, srtp_protect


class Transport:  # what the sender's constructor looks at (a DTLS transport's state)
    state = "new"


def test_sender_reports_carry_what_kiln_sent_and_feedback_reaches_kiln_first() -> None:
    async def main() -> None:  # aiortc builds its sender's asyncio objects on a running loop
        sender = RTCRtpSender(AudioStreamTrack(), Transport())  # type: ignore[arg-type]
        SenderReport(sender).update(ntp_time=123 << 32, rtp_timestamp=4567, packets=10, octets=9000)
        assert sender._RTCRtpSender__rtp_timestamp == 4567  # type: ignore[attr-defined]
        assert sender._RTCRtpSender__packet_count == 10  # type: ignore[attr-defined]
        heard: list[object] = []
        intercept_rtcp(sender, lambda packet: heard.append(packet) is None and isinstance(packet, RtcpRtpfbPacket))
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc)
        nack.lost = [5]
        await sender._handle_rtcp_packet(nack)
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc))
        assert heard[0] is nack and len(heard) == 2

    asyncio.run(main())


def test_a_missing_attribute_is_an_error_that_says_so() -> None:
    with pytest.raises(AiortcChanged, match="_tx_srtp"):
        srtp_protect(object())
    with pytest.raises(AiortcChanged, match="_RTCRtpSender__ntp_timestamp"):
        SenderReport(object())
