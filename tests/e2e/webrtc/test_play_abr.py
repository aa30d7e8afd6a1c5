"""WebRTC renditions from output profiles. ABR: a two-rendition playlist (the input passed through, and a
160x90 H.264 encode); the viewer gets the ``playlist`` notification, asks ``change_rendition``, hears
``rendition_changed`` and decodes the other rendition's frames; ``auto`` is accepted and acknowledged.
A VP8 encode plays as VP8."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import (
    RtcPorts,
    keep_ice_on_loopback,
    kiln_playing_cam,
    rtc_server_xml,
    signalling_viewer,
    wait_rtmp_stream,
)
from tests.peers import media
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require

pytestmark = pytest.mark.e2e

ABR_PROFILE = """
            <OutputProfile>
              <Name>abr</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>high</Name><Bypass>true</Bypass></Video>
                <Video><Name>low</Name><Codec>h264</Codec><Width>160</Width><Height>90</Height><Bitrate>150000</Bitrate>
                  <Framerate>30</Framerate><KeyFrameInterval>30</KeyFrameInterval><BFrames>0</BFrames>
                  <Preset>faster</Preset></Video>
                <Audio><Name>opus</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
              <Playlist>
                <Name>abr</Name><FileName>abr</FileName>
                <Options><WebRtcAutoAbr>false</WebRtcAutoAbr></Options>
                <Rendition><Name>high</Name><Video>high</Video><Audio>opus</Audio></Rendition>
                <Rendition><Name>low</Name><Video>low</Video><Audio>opus</Audio></Rendition>
              </Playlist>
            </OutputProfile>"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("ffmpeg")
    ports = RtcPorts()
    with kiln_playing_cam(tmp_path, rtc_server_xml(ports, profiles=ABR_PROFILE), ports) as pair:
        yield pair


async def _watch(url: str) -> dict[str, Any]:
    import websockets

    keep_ice_on_loopback()
    widths: list[int] = []
    pc = RTCPeerConnection()
    seen = asyncio.Event()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def pull() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    widths.append(frame.width)
                    seen.set()
        asyncio.ensure_future(pull())

    async with websockets.connect(url, open_timeout=30) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer = json.loads(await asyncio.wait_for(ws.recv(), 30))
        playlist = json.loads(await asyncio.wait_for(ws.recv(), 30))
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                  "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))
        await asyncio.wait_for(seen.wait(), 30)
        await asyncio.sleep(1.5)
        before = list(widths)
        await ws.send(json.dumps({"command": "change_rendition", "id": offer["id"], "rendition_name": "low"}))
        changed = json.loads(await asyncio.wait_for(ws.recv(), 30))
        for _ in range(100):  # the low rendition starts at its next keyframe (1 s GOP)
            if widths and widths[-1] == 160:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        after = widths[len(before):]
        await ws.send(json.dumps({"command": "change_rendition", "id": offer["id"], "auto": True}))
        auto = json.loads(await asyncio.wait_for(ws.recv(), 30))
        await pc.close()
    return {"playlist": playlist, "changed": changed, "auto": auto, "before": before, "after": after}


def test_change_rendition_switches_and_notifies(live: tuple[KilnProcess, RtcPorts]) -> None:
    kiln, ports = live
    seen = asyncio.run(_watch(f"ws://127.0.0.1:{ports.llhls}/app/cam/abr"))
    playlist = seen["playlist"]
    assert playlist["command"] == "notification" and playlist["type"] == "playlist"
    names = [r["name"] for r in playlist["message"]["renditions"]]
    assert names == ["high", "low"] and playlist["message"]["auto"] is False
    assert playlist["message"]["renditions"][1]["video_track"]["video"]["height"] == 90
    assert seen["changed"] == {"command": "notification", "type": "rendition_changed",
                               "message": {"rendition_name": "low", "auto": False}}
    assert set(seen["before"]) == {320}, seen["before"][:5]
    assert seen["after"] and seen["after"][-1] == 160 and seen["after"].count(160) >= 20, seen["after"]
    assert seen["auto"]["message"]["auto"] is True


VP8_PROFILE = """
            <OutputProfile>
              <Name>vp8</Name>
              <OutputStreamName>${OriginStreamName}_vp8</OutputStreamName>
              <Encodes>
                <Video><Name>vp8_video</Name><Codec>vp8</Codec><Width>160</Width><Height>90</Height>
                  <Bitrate>200000</Bitrate><Framerate>30</Framerate><KeyFrameInterval>30</KeyFrameInterval></Video>
                <Audio><Name>opus</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
            </OutputProfile>"""


def test_a_vp8_rendition_from_an_output_profile_plays(tmp_path: Path) -> None:
    require("ffmpeg")
    ports = RtcPorts()
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", rtc_server_xml(ports, profiles=VP8_PROFILE), ports).start()
    publisher = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", media.test_flv(4), loop=True,
                             log_dir=tmp_path)
    try:
        wait_rtmp_stream(kiln, "cam", output="cam_vp8")
        report = asyncio.run(signalling_viewer(f"ws://127.0.0.1:{ports.llhls}/app/cam_vp8", seconds=1.0))
        assert not report.errors, report.errors
        assert "VP8" in report.offer["sdp"]["sdp"] and "H264" not in report.offer["sdp"]["sdp"]
        assert report.frames["video"] >= 10 and report.frames["audio"] > 0, report.frames
    finally:
        publisher.stop()
        kiln.close()
