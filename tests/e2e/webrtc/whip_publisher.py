"""A WHIP publisher as a program of its own (``python -m tests.e2e.webrtc.whip_publisher URL SECONDS``), so a
test can run it inside a network namespace: aiortc's H.264 (x264) of a moving 320x180 picture, whose frames
span several RTP packets (so losses hit FU-A fragments), and Opus. Prints one JSON line with the POST's status
and the session's Location, then ``{"done": true}`` after the DELETE that ends it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from fractions import Fraction

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

WIDTH, HEIGHT, FPS = 320, 180, 30


class MovingPicture(VideoStreamTrack):
    """Bars that slide and a square of noise that wanders: enough detail for x264 to spend a few kB a frame."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.bars = bytes(range(0, 256, 2)) * (2 * WIDTH // 128 + 2)

    async def recv(self) -> VideoFrame:
        pts, _ = await self.next_timestamp()
        self.n += 1
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = frame.planes[0]
        offset = (3 * self.n) % 128
        row = self.bars[offset:offset + luma.line_size]
        picture = bytearray(row * HEIGHT)
        y, x = (self.n * 2) % (HEIGHT - 40), (self.n * 3) % (WIDTH - 40)
        for line in range(y, y + 40):
            at = line * luma.line_size + x
            picture[at:at + 40] = os.urandom(40)
        luma.update(bytes(picture))
        for chroma, value in ((frame.planes[1], 90 + self.n % 60), (frame.planes[2], 160)):
            chroma.update(bytes([value]) * (chroma.line_size * chroma.height))
        frame.pts, frame.time_base = pts, Fraction(1, 90000)
        return frame


async def main(url: str, seconds: float) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN server: the namespace reaches Kiln only
    video = pc.addTransceiver(MovingPicture(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType.lower() in ("video/h264", "video/rtx")])
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    base = url.split("/app/")[0]
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"})
        location = response.headers.get("location", "")
        sys.stdout.write(json.dumps({"status": response.status_code, "location": location}) + "\n")
        sys.stdout.flush()
        if response.status_code != 201:
            return
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        await asyncio.sleep(seconds)
        await client.delete(base + location)
    await pc.close()
    sys.stdout.write(json.dumps({"done": True}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 30.0))
