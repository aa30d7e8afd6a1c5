"""A farm of WebRTC viewers in one process for bench/webrtc.py: aiortc peers over OME's signalling that
receive (ICE, DTLS, SRTP, jitter buffer, NACK/REMB) but do not decode, so one small machine can hold
many of them. Usage: ``python bench/_rtc_viewers.py URL COUNT SECONDS``; prints one JSON line per
viewer at the end: ``{"connected", "video_received", "video_lost", "audio_received", "audio_lost"}``.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiortc.rtcrtpreceiver as rtcrtpreceiver  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402

from tests.e2e.webrtc.play_kiln import keep_ice_on_loopback  # noqa: E402


def _drain(loop: asyncio.AbstractEventLoop, input_q: queue.Queue[Any], output_q: Any, decode_error: Any) -> None:
    """Stands in for aiortc's decoder thread: frames are counted by RTP stats, never decoded."""
    while input_q.get() is not None:
        pass


async def viewer(url: str, seconds: float) -> dict[str, Any]:
    import websockets

    pc = RTCPeerConnection()
    result: dict[str, Any] = {"connected": False}

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def pull() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
        asyncio.ensure_future(pull())

    try:
        async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
            await ws.send(json.dumps({"command": "request_offer"}))
            offer = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if "error" in offer:
                return {"connected": False, "error": offer}
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                      "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))
            await asyncio.sleep(seconds)
            result["connected"] = pc.connectionState == "connected"
            for receiver in pc.getReceivers():
                for stat in (await receiver.getStats()).values():
                    if stat.type == "inbound-rtp":
                        result[f"{stat.kind}_received"] = stat.packetsReceived
                        result[f"{stat.kind}_lost"] = max(0, stat.packetsLost)
    except Exception as exc:  # one viewer's failure is a figure, not the farm's end
        result["error"] = repr(exc)
    finally:
        await pc.close()
    return result


async def main(url: str, count: int, seconds: float) -> None:
    keep_ice_on_loopback()
    rtcrtpreceiver.decoder_worker = _drain  # type: ignore[assignment]
    results = await asyncio.gather(*(viewer(url, seconds) for _ in range(count)))
    for r in results:
        sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
