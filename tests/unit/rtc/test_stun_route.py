"""Routing a shared port's datagrams: a STUN check by the receiver's ufrag, anything else by address."""

from __future__ import annotations

from aioice import stun

from kiln.media.rtc.sdp import SdpError, candidates_of, check_sdp
from kiln.media.rtc.stun_route import binding_request_ufrag, is_stun


def _binding(username: str) -> bytes:
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 1
    message.add_message_integrity(b"password")
    message.add_fingerprint()
    return bytes(message)


def test_binding_request_gives_the_receivers_ufrag() -> None:
    assert binding_request_ufrag(_binding("srvF:brws")) == "srvF"


def test_other_datagrams_have_no_ufrag() -> None:
    response = bytes(stun.Message(stun.Method.BINDING, stun.Class.RESPONSE))
    assert is_stun(response) and binding_request_ufrag(response) is None
    dtls = bytes([22, 254, 253]) + bytes(30)
    assert not is_stun(dtls) and binding_request_ufrag(dtls) is None
    srtp = bytes([0x80, 96]) + bytes(30)
    assert binding_request_ufrag(srtp) is None


def test_malformed_stun_is_not_routed() -> None:
    good = _binding("a:b")
    assert binding_request_ufrag(good[:25]) is None            # truncated body
    assert binding_request_ufrag(_binding("nocolon")) is None  # not <ufrag>:<ufrag>
    assert binding_request_ufrag(b"") is None


def test_candidates_of_sdp() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=candidate:1 1 udp 5 127.0.0.1 10000 typ host\r\n" \
          "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:1\r\n"
    found = candidates_of(sdp)
    assert [(c.candidate, c.sdp_mid, c.sdp_mline_index) for c in found] == \
        [("candidate:1 1 udp 5 127.0.0.1 10000 typ host", "0", 0)]


def test_check_sdp_refuses_garbage() -> None:
    for bad, why in (("hello", "v=0"), ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "no media"),
                     ("v=0\r\nm=audio 9 UDP 0\r\n", "ICE credentials"),
                     ("v=0\r\nm=audio 9 UDP 0\r\na=ice-ufrag:x\r\n", "fingerprint")):
        try:
            check_sdp(bad)
        except SdpError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"accepted {bad!r}")


def test_remb_meter_keeps_the_receivers_estimate() -> None:
    import asyncio

    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    from kiln.media.rtc.remb import RembMeter

    class Sender:
        _ssrc = 1234
        handled = 0

        async def _handle_rtcp_packet(self, packet: object) -> None:
            Sender.handled += 1

    sender, meter = Sender(), RembMeter()
    meter.attach(sender)
    assert meter.estimate() is None
    other = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(99_000, [999]))
    ours = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(250_000, [1234]))
    asyncio.run(sender._handle_rtcp_packet(other))
    assert meter.estimate() is None  # another sender's estimate
    asyncio.run(sender._handle_rtcp_packet(ours))
    assert meter.estimate() == 250_000 and Sender.handled == 2  # aiortc still handles every packet
