"""A WebRTC viewer in its own process (aiortc, OME's signalling): ``python -m tests.e2e.webrtc.rtc_viewer URL``.

It prints one JSON line a second, ``{"video": frames decoded, "audio": frames, "width": last width,
"state": connection state, "notifications": the signalling notifications heard}``, so a test can stop
it (SIGSTOP: a stalled viewer), kill it (a viewer that vanishes) or read its frame rate. For a 127.0.0.1
URL aioice is told to use 127.0.0.1; other URLs (a viewer in a network namespace) use the host's addresses.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiortc import RTCPeerConnection

from tests.e2e.webrtc.play_kiln import answer_offer, keep_ice_on_loopback


async def main(url: str, seconds: float) -> None:
    import websockets

    if "//127.0.0.1:" in url:
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
        await answer_offer(pc, ws, offer)
        notes: list[Any] = []
        counts["notifications"] = notes

        async def listen() -> None:  # notifications (playlist, rendition_changed) as the player hears them
            async for raw in ws:
                message = json.loads(raw)
                if message.get("command") == "notification":
                    notes.append({"type": message.get("type"), **(message.get("message") or {})}
                                 if message.get("type") == "rendition_changed" else {"type": message.get("type")})

        listener = asyncio.ensure_future(listen())
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            sys.stdout.write(json.dumps({**counts, "state": pc.connectionState, "t": time.time()}) + "\n")
            sys.stdout.flush()
        listener.cancel()
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
