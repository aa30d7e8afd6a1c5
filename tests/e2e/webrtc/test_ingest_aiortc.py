"""An aiortc publisher (a real ICE/DTLS/SRTP stack, its own encoders) → Kiln's WebRTC ingest session on
the shared UDP ports → a LiveStream: H.264 chosen over the client's VP8-first offer, tracks described,
A/V timestamps on one timeline, PLI answered, the session freed on close."""

from __future__ import annotations

import asyncio
import time

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from kiln.media.ingest.webrtc.codecs import NoUsableCodec, plan_for_offer
from kiln.media.ingest.webrtc.session import PublishSession
from kiln.media.model import Codec, MediaKind, Packet
from kiln.media.rtc.udp_mux import PortPool
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.e2e


async def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _publish(pool: PortPool, *, video: bool = True, audio: bool = True) -> tuple[
        RTCPeerConnection, PublishSession, LiveStream]:
    client = RTCPeerConnection()
    if video:
        client.addTrack(VideoStreamTrack())
    if audio:
        client.addTrack(AudioStreamTrack())
    await client.setLocalDescription(await client.createOffer())
    offer = client.localDescription.sdp
    gone: list[str] = []
    session = PublishSession("s1", "default/app/cam", pool, timeout_s=5.0, on_gone=lambda s, r: gone.append(r))
    answer = await session.answer(offer, plan_for_offer(offer))
    stream = LiveStream("default", "app", "cam", source_type="WebRTC", source_url="whip", profiles=[])
    session.bind(stream)
    await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return client, session, stream


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def test_aiortc_publisher_becomes_a_stream_with_h264_and_opus(loopback: None) -> None:
    async def main() -> None:
        pool = PortPool("127.0.0.1", (free_udp_port(),))
        await pool.open()
        try:
            client, session, stream = await _publish(pool)
            packets: list[Packet] = []
            stream.input.subscribe(CallbackSubscriber("test", packets.append), from_keyframe=False)
            await _wait(lambda: stream.started and len(packets) > 90)
            kinds = {t.kind: t for t in stream.tracks.values()}
            assert kinds[MediaKind.VIDEO].codec is Codec.H264  # chosen over the client's VP8-first offer
            assert (kinds[MediaKind.VIDEO].width, kinds[MediaKind.VIDEO].height) == (640, 480)
            assert kinds[MediaKind.AUDIO].codec is Codec.OPUS and kinds[MediaKind.AUDIO].sample_rate == 48000
            video = [p for p in packets if p.track_id == kinds[MediaKind.VIDEO].id]
            audio = [p for p in packets if p.track_id == kinds[MediaKind.AUDIO].id]
            assert video[0].keyframe and len(audio) > 20
            # aiortc's tracks start together: the first audio and video timestamps are close on one timeline
            assert abs(video[0].pts_ms - audio[0].pts_ms) < 300
            stats = session.stats()
            assert stats["packets"] > 50 and stats["plis"] >= 0
            await client.close()
            await _wait(lambda: session.closed_reason is not None)
            await session.closed()
            assert stream.ended_reason is not None
            assert pool.sessions == 0
        finally:
            pool.close()

    asyncio.run(main())


def test_an_offer_without_a_usable_codec_is_refused_before_anything_is_made() -> None:
    offer = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
             "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 AV1/90000\r\n")
    with pytest.raises(NoUsableCodec, match="offered: AV1"):
        plan_for_offer(offer)


def _rtp_fields(data: bytes) -> tuple[int, int, bytes]:
    """(payload type, sequence number, payload) of an RTP packet."""
    count = data[0] & 0x0F
    pos = 12 + 4 * count
    if data[0] & 0x10:  # header extension
        pos += 4 + 4 * int.from_bytes(data[pos + 2:pos + 4], "big")
    return data[1] & 0x7F, int.from_bytes(data[2:4], "big"), data[pos:]


def test_losses_are_repaired_by_nack_or_skipped_to_a_keyframe(loopback: None) -> None:
    """The publisher's link drops every 25th video packet; for every 4th of those the retransmission is lost
    too. NACK repairs the first kind; the second makes Kiln skip to a keyframe it asks for (PLI), so every
    video packet that leaves still decodes."""
    import av

    async def main() -> None:
        pool = PortPool("127.0.0.1", (free_udp_port(),))
        await pool.open()
        try:
            client, session, stream = await _publish(pool, audio=False)
            packets: list[Packet] = []
            stream.input.subscribe(CallbackSubscriber("test", packets.append), from_keyframe=False)
            video = client.getTransceivers()[0]
            pt = next(c.payloadType for c in video._codecs if c.mimeType.lower() == "video/h264")
            rtx = next((c.payloadType for c in video._codecs if c.parameters.get("apt") == pt), None)
            dtls = video.sender.transport
            send = dtls._send_rtp
            dropped = {"first": 0, "again": 0}

            async def lossy(data: bytes) -> None:
                if data[0] >> 6 == 2 and not 64 <= data[1] & 0x7F <= 95:  # RTP, not RTCP
                    kind, seq, payload = _rtp_fields(data)
                    if kind == pt and seq % 25 == 7:
                        dropped["first"] += 1
                        return
                    if kind == rtx and len(payload) >= 2 and int.from_bytes(payload[:2], "big") % 100 == 7:
                        dropped["again"] += 1
                        return
                await send(data)

            dtls._send_rtp = lossy
            await _wait(lambda: len(packets) > 150 and dropped["again"] >= 2, 60)
            stats = session.stats()
            assert stats["nacks"] > 0 and stats["plis"] >= 2, stats
            track = next(t for t in stream.tracks.values() if t.kind is MediaKind.VIDEO)
            decoder = av.CodecContext.create("h264", "r")
            decoder.extradata = track.config
            decoded = 0
            for p in packets:
                decoded += len(decoder.decode(av.Packet(p.data)))  # raises on a broken reference chain
            assert decoded >= len(packets) - 2
            # where a frame was given up on, the next one out is a keyframe (nothing refers to the lost one)
            assert session.pipeline is not None
            assert session.pipeline.tracks[0].buffer.stats.skipped_gaps >= 1
            holes = [b for a, b in zip(packets, packets[1:], strict=False) if b.pts - a.pts > 4500]
            assert holes and all(b.keyframe for b in holes)
            await client.close()
            await _wait(lambda: session.closed_reason is not None)
            await session.closed()
        finally:
            pool.close()

    asyncio.run(main())
