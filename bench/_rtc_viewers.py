"""A farm of cheap WebRTC viewers in one process for bench/webrtc.py.

Each viewer is an aiortc peer that completes ICE and DTLS over OME's signalling (so Kiln serves it as
it serves a browser: consent checks, SRTP keys, RTCP), then counts RTP packets from their clear
header (SRTP leaves it readable) on its socket: no SRTP decrypt, no jitter buffer, no decoder. Loss
is read from sequence-number gaps per SSRC. Everything that is not RTP (STUN consent checks, DTLS,
RTCP) still goes to aiortc. That keeps a viewer at a few microseconds per packet (on uvloop), so
several farms of many viewers can receive hundreds of 2.5 Mbit/s streams next to Kiln on a small machine.

Usage: ``python bench/_rtc_viewers.py URL COUNT SECONDS``; prints one JSON line per viewer at the end:
``{"connected", "video_received", "video_lost", "audio_received", "audio_lost"}``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402

from tests.e2e.webrtc.play_kiln import keep_ice_on_loopback  # noqa: E402

RECEIVE_BUFFER = 8 << 20


class SeqCounter:
    """Packets received and lost on one SSRC, from sequence numbers (extended across wraps)."""

    def __init__(self) -> None:
        self.received = 0
        self.first: int | None = None
        self.highest = 0
        self.cycles = 0

    def add(self, seq: int) -> None:
        self.received += 1
        if self.first is None:
            self.first = self.highest = seq
            return
        last = self.highest & 0xFFFF
        if 0 < (seq - last) & 0xFFFF < 0x8000:  # ahead of the highest seen (wrapping)
            if seq < last:
                self.cycles += 1 << 16
            self.highest = self.cycles + seq

    @property
    def lost(self) -> int:
        if self.first is None:
            return 0
        return max(0, self.highest - self.first + 1 - self.received)


def payload_kinds(sdp: str) -> dict[int, str]:
    """Payload type -> ``video``/``audio`` from an SDP's m-lines."""
    kinds: dict[int, str] = {}
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts = line[2:].split()
            for pt in parts[3:]:
                if pt.isdigit():
                    kinds[int(pt)] = parts[0]
    return kinds


def count_rtp(pc: RTCPeerConnection, counters: dict[int, SeqCounter]) -> None:
    """Count RTP on the viewer's ICE sockets before aiortc sees it; hand everything else on."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            if getattr(protocol, "_kiln_counting", False):
                continue
            protocol._kiln_counting = True
            sock = protocol.transport.get_extra_info("socket") if protocol.transport is not None else None
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, 33, RECEIVE_BUFFER)  # SO_RCVBUFFORCE (root)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            original = protocol.datagram_received

            def received(data: bytes, addr: Any, original: Any = original) -> None:
                # RTP: version 2, and not RTCP (payload types 192-223 with the marker bit) nor STUN/DTLS
                if len(data) >= 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:
                    ssrc = int.from_bytes(data[8:12], "big")
                    counter = counters.get(ssrc)
                    if counter is None:
                        counter = counters[ssrc] = SeqCounter()
                        counter.pt = data[1] & 0x7F  # type: ignore[attr-defined]
                    counter.add(int.from_bytes(data[2:4], "big"))
                    return
                original(data, addr)

            protocol.datagram_received = received


async def viewer(url: str, seconds: float) -> dict[str, Any]:
    import websockets

    pc = RTCPeerConnection()
    result: dict[str, Any] = {"connected": False}
    counters: dict[int, SeqCounter] = {}
    try:
        async with websockets.connect(url, open_timeout=60, ping_interval=None) as ws:
            await ws.send(json.dumps({"command": "request_offer"}))
            offer = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if "error" in offer:
                return {"connected": False, "error": offer}
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            count_rtp(pc, counters)  # the sockets exist once gathered: count before the first packet
            await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                      "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))
            await asyncio.sleep(seconds)
            result["connected"] = pc.connectionState == "connected"
            kinds = payload_kinds(offer["sdp"]["sdp"])
            for counter in counters.values():
                kind = kinds.get(counter.pt, "other")  # type: ignore[attr-defined]
                result[f"{kind}_received"] = result.get(f"{kind}_received", 0) + counter.received
                result[f"{kind}_lost"] = result.get(f"{kind}_lost", 0) + counter.lost
    except Exception as exc:  # one viewer's failure is a figure, not the farm's end
        result["error"] = repr(exc)
    finally:
        await pc.close()
    return result


async def main(url: str, count: int, seconds: float) -> None:
    keep_ice_on_loopback()
    results = await asyncio.gather(*(viewer(url, seconds) for _ in range(count)))
    for r in results:
        sys.stdout.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    import uvloop  # the event loop kiln serve runs on

    uvloop.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
