"""Kiln configured for WebRTC playback on loopback, and an aiortc viewer speaking OME's signalling.

The Server.xml shares the signalling port with LL-HLS (as OME's sample does) and gives WebRTC media
two UDP ports that every session shares. The output profile passes H.264 through and adds the Opus
encode browsers need (the input's AAC cannot go over WebRTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from tests.e2e.kiln_process import TOKEN, KilnProcess, Ports
from tests.peers import media
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer

RTC_PROFILE = """
            <OutputProfile>
              <Name>rtc</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
                <Audio><Name>opus_audio</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
            </OutputProfile>"""


@dataclass
class RtcPorts(Ports):
    ice: list[int] = field(default_factory=lambda: [free_udp_port(), free_udp_port()])


def rtc_server_xml(ports: RtcPorts, *, profiles: str = RTC_PROFILE,
                   publishers: str = "<WebRTC><CrossDomains><Url>*</Url></CrossDomains></WebRTC>",
                   extra_apps: str = "") -> str:
    ice = ",".join(str(p) for p in ports.ice)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>KilnRtc</Name>
  <Type>origin</Type>
  <IP>127.0.0.1</IP>
  <Bind>
    <Managers><API><Port>{ports.api}</Port></API></Managers>
    <Providers><RTMP><Port>{ports.rtmp}</Port></RTMP></Providers>
    <Publishers>
      <LLHLS><Port>{ports.llhls}</Port></LLHLS>
      <WebRTC>
        <Signalling><Port>{ports.llhls}</Port></Signalling>
        <IceCandidates><IceCandidate>*:{ice}/udp</IceCandidate></IceCandidates>
      </WebRTC>
    </Publishers>
  </Bind>
  <Managers><API><AccessToken>{TOKEN}</AccessToken></API></Managers>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Host><Names><Name>*</Name></Names></Host>
      <Applications>
        <Application>
          <Name>app</Name>
          <Type>live</Type>
          <OutputProfiles>{profiles}</OutputProfiles>
          <Providers><RTMP/></Providers>
          <Publishers>
            {publishers}
            <LLHLS><ChunkDuration>0.5</ChunkDuration><SegmentDuration>2</SegmentDuration><SegmentCount>5</SegmentCount>
              <CrossDomains><Url>*</Url></CrossDomains></LLHLS>
          </Publishers>
        </Application>{extra_apps}
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"""


def keep_ice_on_loopback() -> None:
    """aioice leaves 127.0.0.1 out of its host candidates; a loopback-only test needs it (tests only)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


@dataclass
class ViewerReport:
    offer: dict[str, Any]
    frames: dict[str, int]
    notifications: list[dict[str, Any]]
    errors: list[dict[str, Any]]


async def answer_offer(pc: RTCPeerConnection, ws: Any, offer: dict[str, Any]) -> None:
    """OME's signalling as a player does it: take Kiln's ``offer`` (and its candidates), send the answer."""
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
    for c in offer.get("candidates", []):
        ice = candidate_from_sdp(c["candidate"].split(":", 1)[1])
        ice.sdpMid, ice.sdpMLineIndex = c["sdpMid"], c["sdpMLineIndex"]
        await pc.addIceCandidate(ice)
    await pc.setLocalDescription(await pc.createAnswer())
    await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                              "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))


def count_frames(pc: RTCPeerConnection, frames: dict[str, int], on_frame: Callable[[], None] | None = None) -> None:
    """Receive (decode) every track ``pc`` gets, counting frames per kind in ``frames``; ``on_frame`` after each."""

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def pull() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                frames[track.kind] = frames.get(track.kind, 0) + 1
                if on_frame is not None:
                    on_frame()
        asyncio.ensure_future(pull())


async def signalling_viewer(url: str, *, seconds: float = 3.0, min_video_frames: int = 10,
                            timeout: float = 30.0, tls: ssl.SSLContext | None = None) -> ViewerReport:
    """Play ``ws://…/app/stream`` (``wss://`` verified by ``tls``) with aiortc: request_offer, answer, then
    count decoded frames."""
    import websockets

    keep_ice_on_loopback()
    frames = {"video": 0, "audio": 0}
    notifications: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    pc = RTCPeerConnection()
    done = asyncio.get_running_loop().create_future()

    def enough() -> None:
        if frames["video"] >= min_video_frames and not done.done():
            done.set_result(None)

    count_frames(pc, frames, enough)

    async with websockets.connect(url, open_timeout=timeout, **({"ssl": tls} if tls is not None else {})) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if "error" in offer:
            return ViewerReport(offer, frames, notifications, [offer])
        await answer_offer(pc, ws, offer)

        async def listen() -> None:
            async for raw in ws:
                message = json.loads(raw)
                (errors if "error" in message else notifications).append(message)

        listener = asyncio.ensure_future(listen())
        try:
            await asyncio.wait_for(done, timeout)
            await asyncio.sleep(seconds)
        finally:
            listener.cancel()
            await pc.close()
    return ViewerReport(offer, frames, notifications, errors)


def wait_rtmp_stream(kiln: Any, name: str, timeout: float = 30.0, output: str | None = None) -> None:
    """Until the stream has started and lists its output stream (``output``, default the stream's own name):
    a stream is listed as soon as it is published, its outputs once its tracks are known."""
    wanted = output or name

    def started() -> bool:
        r = kiln.api.get(f"/v1/vhosts/default/apps/app/streams/{name}")
        outputs = r.json().get("response", {}).get("outputs") or [] if r.status_code == 200 else []
        return any(o.get("name") == wanted for o in outputs)

    kiln.wait_for(started, timeout, f"stream {name} with its output {wanted}")


def media_dir(tmp_path: Path) -> Path:
    out = tmp_path / "peers"
    out.mkdir(exist_ok=True)
    return out


@contextlib.contextmanager
def kiln_playing_cam(tmp_path: Path, xml: str, ports: RtcPorts) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    """Kiln started with ``xml``, ffmpeg looping ``app/cam`` into it over RTMP (H.264 without B-frames,
    as WebRTC needs) until the block ends; both stopped by PID whatever happens."""
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", xml, ports).start()
    publisher: Peer | None = None
    try:
        publisher = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", media.test_flv(4), loop=True,
                                 log_dir=tmp_path)
        wait_rtmp_stream(kiln, "cam")
        yield kiln, ports
    finally:
        if publisher is not None:
            publisher.stop()
        kiln.close()
