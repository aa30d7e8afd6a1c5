"""A WebRTC viewer in its own process (aiortc, OME's signalling): ``python -m tests.e2e.webrtc.rtc_viewer URL``.

It prints one JSON line a second, ``{"video": frames decoded, "audio": frames, "width": last width,
"state": connection state}``, so a test can stop it (SIGSTOP: a stalled viewer), kill it (a viewer that
vanishes) or read its frame rate. Loopback only: aioice is told to use 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from tests.e2e.webrtc.play_kiln import keep_ice_on_loopback


async def main(url: str, seconds: float) -> None:
    import websockets

    keep_ice_on_loopback()
    counts: dict[str, Any] = {"video": 0, "audio": 0, "width": 0}
    pc = RTCPeerConnection()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def pull() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                counts[track.kind] += 1
                if track.kind == "video":
                    counts["width"] = frame.width
        asyncio.ensure_future(pull())

    async with websockets.connect(url, open_timeout=30) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "error" in offer:
            sys.stdout.write(json.dumps({"error": offer}) + "\n")
            return
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
        for c in offer.get("candidates", []):
            ice = candidate_from_sdp(c["candidate"].split(":", 1)[1])
            ice.sdpMid, ice.sdpMLineIndex = c["sdpMid"], c["sdpMLineIndex"]
            await pc.addIceCandidate(ice)
        await pc.setLocalDescription(await pc.createAnswer())
        await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                  "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            sys.stdout.write(json.dumps({**counts, "state": pc.connectionState, "t": time.time()}) + "\n")
            sys.stdout.flush()
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
