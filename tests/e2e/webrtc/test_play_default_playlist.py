"""``Publishers/WebRTC/CreateDefaultPlaylist`` false, as in OME: a player URL naming no playlist gets no offer, one
naming a configured playlist plays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.webrtc.play_kiln import RTC_PROFILE, RtcPorts, kiln_playing_cam, rtc_server_xml
from tests.peers.fixtures import require

pytestmark = pytest.mark.e2e

PLAYLIST = """
              <Playlist><Name>abr</Name><FileName>abr</FileName>
                <Rendition><Name>full</Name><Video>bypass_video</Video><Audio>opus_audio</Audio></Rendition>
              </Playlist>
            </OutputProfile>"""
PUBLISHERS = ("<WebRTC><CreateDefaultPlaylist>false</CreateDefaultPlaylist>"
              "<CrossDomains><Url>*</Url></CrossDomains></WebRTC>")


async def _first_answer(url: str) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url, open_timeout=20) as ws:
        await ws.send('{"command":"request_offer"}')
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
        return answer


def test_no_default_playlist_when_it_is_switched_off(tmp_path: Path) -> None:
    require("ffmpeg")
    ports = RtcPorts()
    profile = RTC_PROFILE.replace("\n            </OutputProfile>", PLAYLIST, 1)
    assert "<FileName>abr</FileName>" in profile
    with kiln_playing_cam(tmp_path, rtc_server_xml(ports, profiles=profile, publishers=PUBLISHERS), ports) as (kiln, _):
        refused = asyncio.run(_first_answer(f"ws://127.0.0.1:{ports.llhls}/app/cam"))
        assert refused["code"] == 406 and "CreateDefaultPlaylist is false" in refused["error"], refused
        assert refused["error"].startswith("Cannot create offer")
        offered = asyncio.run(_first_answer(f"ws://127.0.0.1:{ports.llhls}/app/cam/abr"))
        assert offered["command"] == "offer", offered
        kiln.wait_for_log("webrtc not playable", timeout=10)
