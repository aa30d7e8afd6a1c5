"""An RTMP input with B-frames and no H.264 encode without them: WebRTC never passes that video through, and
says so three ways: the log line, the viewer's signalling error (or an offer without video when audio can
still be sent), and ``lastWarning`` on the output stream in the stream's JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RTC_PROFILE, RtcPorts, rtc_server_xml, wait_rtmp_stream
from tests.peers import media
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

VIDEO_ONLY = """
            <OutputProfile>
              <Name>silent</Name>
              <OutputStreamName>${OriginStreamName}_silent</OutputStreamName>
              <Encodes><Video><Name>bypass_video</Name><Bypass>true</Bypass></Video></Encodes>
            </OutputProfile>"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("ffmpeg")
    ports = RtcPorts()
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", rtc_server_xml(ports, profiles=RTC_PROFILE + VIDEO_ONLY), ports).start()
    publisher: Peer | None = None
    try:
        publisher = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", media.test_flv(4, bframes=True),
                                 loop=True, log_dir=tmp_path)
        wait_rtmp_stream(kiln, "cam")
        wait_rtmp_stream(kiln, "cam", output="cam_silent")
        yield kiln, ports
    finally:
        if publisher is not None:
            publisher.stop()
        kiln.close()


def _stream(kiln: KilnProcess) -> dict[str, Any]:
    return dict(kiln.api.get("/v1/vhosts/default/apps/app/streams/cam").json()["response"])


def _has_bframes(kiln: KilnProcess) -> bool:
    return any(t.get("video", {}).get("hasBframes") for t in _stream(kiln)["input"]["tracks"])


async def _request_offer(url: str) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url, open_timeout=20) as ws:
        await ws.send('{"command":"request_offer"}')
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 20)))


def test_bframes_are_refused_and_said_in_log_signalling_and_json(live: tuple[KilnProcess, RtcPorts]) -> None:
    kiln, ports = live
    kiln.wait_for(lambda: _has_bframes(kiln), 30, "the input's B-frames measured")
    outputs = {o["name"]: o for o in _stream(kiln)["outputs"]}
    assert all("lastWarning" not in o for o in outputs.values())  # no viewer has missed anything yet

    # video only: nothing can be sent, the viewer is told why in OME's error envelope
    refused = asyncio.run(_request_offer(f"ws://127.0.0.1:{ports.llhls}/app/cam_silent"))
    assert refused["code"] == 406, refused
    assert refused["error"].startswith("Cannot create offer: video track 'bypass_video' has B-frames")
    assert "<BFrames>0</BFrames>" in refused["error"]

    # with the Opus encode: an offer with audio and no video (never video that will not play)
    offer = asyncio.run(_request_offer(f"ws://127.0.0.1:{ports.llhls}/app/cam"))
    sdp = offer["sdp"]["sdp"]
    assert offer["command"] == "offer" and "m=audio" in sdp and "m=video" not in sdp

    def logged(*parts: str) -> bool:
        return any(all(p in line for p in parts) for line in kiln.log_text().splitlines())

    # the signalling answer can reach the client before its session's log line is written
    kiln.wait_for(lambda: logged("webrtc not playable", "stream=cam_silent", "B-frames"), 30, "'not playable' logged")
    kiln.wait_for(lambda: logged("webrtc track left out", "stream=cam ", "B-frames"), 30, "'track left out' logged")
    log_text = kiln.log_text()

    outputs = {o["name"]: o for o in _stream(kiln)["outputs"]}
    for name in ("cam", "cam_silent"):
        warning = outputs[name].get("lastWarning", "")
        assert warning.startswith("WebRTC viewers get no video: video track 'bypass_video' has B-frames"), outputs
    assert "Traceback" not in log_text
