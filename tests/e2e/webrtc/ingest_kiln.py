"""Kiln configured for WebRTC ingest on loopback, and aiortc publishers (WHIP, OME signalling) that run on
their own thread, so a test can poll the API and probe outputs while media flows.

The publishers are aiortc peers with its own encoders (H.264 baseline from x264 or VP8 from libvpx, Opus):
a real ICE/DTLS/SRTP/RTCP stack that Kiln did not write.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp

from tests.e2e.webrtc.play_kiln import RtcPorts, keep_ice_on_loopback, rtc_server_xml

INGEST_PROFILE = """
            <OutputProfile>
              <Name>rtc_in</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>aac_audio</Name><Codec>aac</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
            </OutputProfile>"""


def ingest_server_xml(ports: RtcPorts, *, timeout_ms: int = 30000, profiles: str = INGEST_PROFILE,
                      records: str = "") -> str:
    """An app with WebRTC ingest (``Timeout``, CrossDomains ``*``), LL-HLS, WebRTC playback and, when
    ``records`` is given, recording under that RootPath."""
    xml = rtc_server_xml(ports, profiles=profiles,
                         publishers=f"<WebRTC/><FILE><RootPath>{records}</RootPath></FILE>" if records else "<WebRTC/>")
    provider = f"<WebRTC><Timeout>{timeout_ms}</Timeout><CrossDomains><Url>*</Url></CrossDomains></WebRTC>"
    return xml.replace("<Providers><RTMP/></Providers>", f"<Providers><RTMP/>{provider}</Providers>")


class Publisher:
    """An aiortc publisher on a thread of its own; ``run`` executes a coroutine on its loop."""

    def __init__(self, *, video: bool = True, audio: bool = True, codec: str = "") -> None:
        keep_ice_on_loopback()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pc: RTCPeerConnection = self.run(self._make(video, audio, codec))
        self.location = ""
        self.ws: Any = None

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _make(self, video: bool, audio: bool, codec: str) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        if video:
            transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
            if codec:
                caps = RTCRtpSender.getCapabilities("video")
                transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType.lower() == f"video/{codec}"])
        if audio:
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        return pc

    # -- WHIP --
    def whip(self, url: str, *, offer_sdp: str | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            if offer_sdp is None:
                await self.pc.setLocalDescription(await self.pc.createOffer())
            body = offer_sdp if offer_sdp is not None else self.pc.localDescription.sdp
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(url, content=body, headers={"Content-Type": "application/sdp"})
            if response.status_code == 201:
                self.location = response.headers["location"]
                await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
            return response
        result: httpx.Response = self.run(go())
        return result

    def whip_delete(self, base: str) -> httpx.Response:
        return httpx.delete(base + self.location, timeout=30)

    # -- OME signalling, direction=send --
    def signal(self, url: str) -> dict[str, Any]:
        """request_offer → answer over a WebSocket that stays open; returns the server's offer message."""
        import websockets

        async def go() -> dict[str, Any]:
            self.ws = await websockets.connect(url, open_timeout=30)
            await self.ws.send(json.dumps({"command": "request_offer"}))
            offer: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if "error" in offer:
                return offer
            await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
            for c in offer.get("candidates", []):
                ice = candidate_from_sdp(c["candidate"].split(":", 1)[1])
                ice.sdpMid, ice.sdpMLineIndex = c["sdpMid"], c["sdpMLineIndex"]
                await self.pc.addIceCandidate(ice)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                           "sdp": {"type": "answer", "sdp": self.pc.localDescription.sdp}}))
            return offer
        result: dict[str, Any] = self.run(go())
        return result

    def lose(self, every: int, retransmissions_every: int) -> dict[str, int]:
        """Make the link lossy from now on: every ``every``-th original video packet is dropped, and the
        retransmission (RTX) of every ``retransmissions_every``-th sequence number too. Returns live counts."""
        dropped = {"first": 0, "again": 0}
        video = next(t for t in self.pc.getTransceivers() if t.kind == "video")
        pt = next(c.payloadType for c in video._codecs if c.mimeType.lower() != "video/rtx")
        rtx = next((c.payloadType for c in video._codecs if c.parameters.get("apt") == pt), None)
        dtls = video.sender.transport
        send = dtls._send_rtp

        async def lossy(data: bytes) -> None:
            if data[0] >> 6 == 2 and not 64 <= data[1] & 0x7F <= 95:  # RTP, not RTCP
                kind, seq = data[1] & 0x7F, int.from_bytes(data[2:4], "big")
                if kind == pt and seq % every == 7:
                    dropped["first"] += 1
                    return
                if kind == rtx and _original_seq(data) % retransmissions_every == 7:
                    dropped["again"] += 1
                    return
            await send(data)

        dtls._send_rtp = lossy
        return dropped

    def ws_closed(self) -> bool:
        return self.ws is not None and self.run(_closed(self.ws))

    def close(self) -> None:
        async def go() -> None:
            if self.ws is not None:
                await self.ws.close()
            await self.pc.close()
        try:
            self.run(go())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def _original_seq(data: bytes) -> int:
    """The original sequence number an RTX packet carries (RFC 4588: the payload's first two bytes)."""
    pos = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        pos += 4 + 4 * int.from_bytes(data[pos + 2:pos + 4], "big")
    return int.from_bytes(data[pos:pos + 2], "big") if len(data) >= pos + 2 else -1


async def _closed(ws: Any) -> bool:
    return bool(ws.close_code is not None)


def stream_json(kiln: Any, name: str) -> dict[str, Any] | None:
    response = kiln.api.get(f"/v1/vhosts/default/apps/app/streams/{name}")
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()["response"]
    return found


def input_tracks(kiln: Any, name: str) -> Callable[[], dict[str, dict[str, Any]] | None]:
    """A predicate: the stream's input tracks by type once both video (with a size) and audio are described."""
    def check() -> dict[str, dict[str, Any]] | None:
        found = stream_json(kiln, name)
        if found is None:
            return None
        tracks = {t["type"]: t for t in found["input"]["tracks"]}
        video = tracks.get("Video", {}).get("video", {})
        if video.get("width") and "Audio" in tracks:
            return tracks
        return None
    return check
