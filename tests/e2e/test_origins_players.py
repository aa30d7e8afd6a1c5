"""Pull on demand from every player door, not only the LL-HLS master (issue 15 item 3): on an edge
with Origins pulling over OVT from a Kiln origin, a chunklist, a thumbnail, a WebRTC viewer and a WHEP
player that are the first request for their stream each make the edge pull it and wait instead of failing.

One origin/edge pair; four strict Origins rules name the origin's one stream under four edge
names, so each door is the first to ask for its own stream."""

from __future__ import annotations

import asyncio
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_origins import origin, origins_xml, pulls, streams
from tests.e2e.webrtc.play_kiln import RtcPorts, keep_ice_on_loopback, signalling_viewer
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

BYPASS_AUDIO = "<Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>"
OPUS = ("<Audio><Name>opus_audio</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>"
        "<Channel>2</Channel></Audio>")
THUMB = "<Image><Name>thumb</Name><Codec>jpeg</Codec><Width>160</Width><Framerate>1</Framerate></Image>"


def origin_xml(ports: Ports, root: Path) -> str:
    """The origin also encodes Opus: the edge relays the origin's tracks, and WebRTC needs Opus audio."""
    return cluster_xml(ports, root).replace(BYPASS_AUDIO, BYPASS_AUDIO + OPUS, 1)


def edge_xml(ports: RtcPorts, root: Path, origin_ovt: int) -> str:
    """Origins rules for three names of the origin's ``cam``; LL-HLS OriginMode (a chunklist URL a player
    can know in advance), WebRTC signalling on the LL-HLS port, and a thumbnail encode of its own."""
    url = f"127.0.0.1:{origin_ovt}/app/cam"
    rules = origins_xml(*(origin(f"/app/{name}", "ovt", url, strict=True) for name in ("hls", "thumb", "rtc", "whep")))
    ice = ",".join(str(p) for p in ports.ice)
    xml = cluster_xml(ports, root, vhost_extra=rules)
    xml = xml.replace(f"<OVT><Port>{ports.ovt}</Port></OVT>", f"<OVT><Port>{ports.ovt}</Port></OVT><WebRTC>"
                      f"<Signalling><Port>{ports.llhls}</Port></Signalling><IceCandidates><IceCandidate>*:{ice}/udp"
                      "</IceCandidate></IceCandidates></WebRTC>", 1)
    xml = xml.replace("<Publishers><OVT/>", "<Publishers><OVT/><WebRTC/>", 1)
    xml = xml.replace("<LLHLS><ChunkDuration>", "<LLHLS><OriginMode>true</OriginMode><ChunkDuration>", 1)
    return xml.replace(BYPASS_AUDIO, BYPASS_AUDIO + THUMB, 1)


async def whep_viewer(url: str, frames_wanted: int = 10) -> tuple[httpx.Response, int]:
    """A WHEP player (aiortc): POST its offer, play the answer until ``frames_wanted`` video frames decode."""
    keep_ice_on_loopback()
    pc = RTCPeerConnection()
    frames = 0
    enough = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def pull() -> None:
            nonlocal frames
            while track.kind == "video":
                try:
                    await track.recv()
                except Exception:
                    return
                frames += 1
                if frames >= frames_wanted and not enough.done():
                    enough.set_result(None)
        asyncio.ensure_future(pull())

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            posted = await http.post(url, content=pc.localDescription.sdp.encode(),
                                     headers={"content-type": "application/sdp"})
            if posted.status_code == 201:
                await pc.setRemoteDescription(RTCSessionDescription(posted.text, "answer"))
                await asyncio.wait_for(enough, 30)
                await http.delete(httpx.URL(url).join(posted.headers["location"]))
    finally:
        await pc.close()
    return posted, frames


def test_chunklist_thumbnail_and_webrtc_viewer_pull_on_demand(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin_ports, edge_ports = Ports(), RtcPorts()
    origin_k = kiln_factory(origin_xml(origin_ports, tmp_path / "origin" / "records"), origin_ports,
                            tmp_path / "origin")
    edge = kiln_factory(edge_xml(edge_ports, tmp_path / "edge" / "records", origin_ports.ovt), edge_ports,
                        tmp_path / "edge")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        assert streams(edge) == []

        # (a) a player that starts from a chunklist URL (OriginMode: the key is the name's CRC32)
        chunklist = f"chunklist_0_video_{zlib.crc32(b'hls')}_llhls.m3u8"
        t0 = time.monotonic()
        r = httpx.get(f"http://127.0.0.1:{edge_ports.llhls}/app/hls/{chunklist}", timeout=60)
        sys.stdout.write(f"\nchunklist first request answered in {time.monotonic() - t0:.1f}s\n")
        assert r.status_code == 200 and r.text.startswith("#EXTM3U") and "#EXT-X-PART:" in r.text
        assert "hls" in streams(edge)

        # (b) a thumbnail asked of the thumbnail port
        t0 = time.monotonic()
        r = httpx.get(f"http://127.0.0.1:{edge_ports.thumbnail}/app/thumb/thumb.jpg", timeout=60)
        sys.stdout.write(f"\nthumbnail first request answered in {time.monotonic() - t0:.1f}s\n")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content.startswith(b"\xff\xd8")

        # (c) a WebRTC viewer (OME signalling: request_offer on the player port) plays what it pulled
        t0 = time.monotonic()
        report = asyncio.run(signalling_viewer(f"ws://127.0.0.1:{edge_ports.llhls}/app/rtc", seconds=1.0,
                                               timeout=45))
        sys.stdout.write(f"\nwebrtc viewer decoded {report.frames} in {time.monotonic() - t0:.1f}s\n")
        assert report.errors == [] and report.frames["video"] >= 10

        # (d) a WHEP player's POST
        t0 = time.monotonic()
        posted, frames = asyncio.run(whep_viewer(f"http://127.0.0.1:{edge_ports.llhls}/app/whep?direction=whep"))
        sys.stdout.write(f"\nwhep viewer decoded {frames} video frames in {time.monotonic() - t0:.1f}s\n")
        assert posted.status_code == 201, posted.text
        assert frames >= 10

        # each came from the origin, and the journal says by which rule
        assert sorted(streams(edge)) == ["hls", "rtc", "thumb", "whep"]
        causes = {p["name"]: p["cause"] for p in pulls(edge, "PullDefined")}
        assert causes == {name: f"Origins rule location=/app/{name} scheme=ovt"
                          for name in ("hls", "thumb", "rtc", "whep")}
        # a name no rule maps: the same bounded wait, then the 404 each door gives
        assert httpx.get(f"http://127.0.0.1:{edge_ports.thumbnail}/app/none/thumb.jpg", timeout=60).status_code == 404
        missing = asyncio.run(signalling_viewer(f"ws://127.0.0.1:{edge_ports.llhls}/app/none", timeout=45))
        assert missing.offer.get("error") is not None and missing.offer.get("code") == 404
        assert "Traceback" not in edge.log_path.read_text()
    finally:
        source.stop()
