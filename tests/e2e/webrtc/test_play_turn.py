"""WebRTC over TCP through Kiln's TURN server (OME's ``IceCandidates/TcpRelay``): OvenPlayer in headless
Chromium gets the TURN server in the offer (TcpForce), goes relay-only and plays; without TcpForce only a
player asking ``?transport=tcp`` gets it, and WHEP answers carry it as ``Link`` headers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RtcPorts, count_frames, kiln_playing_cam, rtc_server_xml
from tests.e2e.webrtc.rtc_browser import play_rtc, rtc_browser_available
from tests.peers.fixtures import require
from tests.peers.ports import free_tcp_port

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)


@dataclass
class TurnPorts(RtcPorts):
    turn: int = field(default_factory=free_tcp_port)


def turn_xml(ports: TurnPorts, force: bool) -> str:
    ice = ",".join(str(p) for p in ports.ice)
    plain = f"<IceCandidates><IceCandidate>*:{ice}/udp</IceCandidate></IceCandidates>"
    relay = (f"<IceCandidates><IceCandidate>*:{ice}/udp</IceCandidate><TcpRelay>*:{ports.turn}</TcpRelay>"
             f"<TcpForce>{'true' if force else 'false'}</TcpForce></IceCandidates>")
    xml = rtc_server_xml(ports)
    assert plain in xml and "<Providers><RTMP/></Providers>" in xml
    # WebRTC ingest too (WHIP, OME signalling direction=send): OvenLiveKit and WHIP clients get the TURN server alike
    return xml.replace(plain, relay).replace("<Providers><RTMP/></Providers>",
                                             "<Providers><RTMP/><WebRTC/></Providers>")


@pytest.fixture
def forced(tmp_path: Path) -> Iterator[tuple[KilnProcess, TurnPorts]]:
    require("chromium", rtc_browser_available)
    require("ffmpeg")
    ports = TurnPorts()
    with kiln_playing_cam(tmp_path, turn_xml(ports, force=True), ports) as (kiln, _):
        yield kiln, ports


@pytest.fixture
def on_request(tmp_path: Path) -> Iterator[tuple[KilnProcess, TurnPorts]]:
    require("ffmpeg")
    ports = TurnPorts()
    with kiln_playing_cam(tmp_path, turn_xml(ports, force=False), ports) as (kiln, _):
        yield kiln, ports


def _turn_url(ports: TurnPorts) -> str:
    return f"turn:127.0.0.1:{ports.turn}?transport=tcp"


def test_ovenplayer_goes_relay_only_and_plays_over_turn_tcp(forced: tuple[KilnProcess, TurnPorts],
                                                             tmp_path: Path) -> None:
    kiln, ports = forced
    report = play_rtc("ovenplayer", f"ws://127.0.0.1:{ports.llhls}/app/cam", origin=f"http://127.0.0.1:{ports.llhls}",
                      workdir=tmp_path / "browser", watch=3)
    log.info("ovenplayer over turn report %s", report)
    assert report["playing"], report
    assert report["framesEnd"] - report["framesStart"] >= 30, report
    assert report["audioPackets"] > 50, report
    assert not report["errors"], report
    # OvenPlayer took the offer's iceServers and went relay-only; the media took the TURN/TCP path
    config = report["pcConfigs"][0]
    assert config["iceTransportPolicy"] == "relay", config
    urls = [u for server in config["iceServers"] for u in server["urls"]]
    assert _turn_url(ports) in urls, config
    assert config["iceServers"][0]["username"] == "ome" and config["iceServers"][0]["credential"] == "airen"
    assert report["localCandidateType"] == "relay", report
    assert report["relayProtocol"] == "tcp", report
    kiln.wait_for_log("webrtc turn allocation client=127.0.0.1:")
    sys.stdout.write(f"\nOvenPlayer over TURN/TCP: frames {report['framesStart']}->{report['framesEnd']} in 3 s, "
                     f"audio packets {report['audioPackets']}, playout delay {report['playoutDelayMs']} ms\n")
    kiln.wait_for(lambda: "webrtc turn allocation ended" in kiln.log_path.read_text(), 30,
                  "the allocation ended with the browser")


async def _offer(url: str) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url, open_timeout=20) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
        await ws.send(json.dumps({"command": "stop", "id": offer.get("id")}))
        return offer


async def _post_offer(url: str, publish: bool = False) -> httpx.Response:
    """A WHEP (or, ``publish``, WHIP) offer from aiortc; the session it opens is deleted at once."""
    pc = RTCPeerConnection()
    try:
        if publish:
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())
        else:
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=20) as client:
            answer = await client.post(url, content=pc.localDescription.sdp,
                                       headers={"Content-Type": "application/sdp"})
            if answer.status_code == 201:
                deleted = await client.delete(f"{url.split('/app/')[0]}{answer.headers['location']}")
                assert deleted.status_code == 200, deleted.text
            return answer
    finally:
        await pc.close()


def test_offer_names_the_turn_server_only_when_asked(on_request: tuple[KilnProcess, TurnPorts]) -> None:
    _, ports = on_request
    base = f"ws://127.0.0.1:{ports.llhls}/app/cam"
    plain = asyncio.run(_offer(base))
    assert plain["command"] == "offer", plain
    assert "iceServers" not in plain and "ice_servers" not in plain, plain
    asked = asyncio.run(_offer(base + "?transport=tcp"))
    assert asked["iceServers"] == [{"urls": [_turn_url(ports)], "username": "ome", "credential": "airen"}], asked
    assert asked["ice_servers"] == [{"urls": [_turn_url(ports)], "user_name": "ome", "credential": "airen"}], asked
    # WHEP: the TURN server as a Link header on the 201, as OME's WHIP/WHEP answer it
    link = f'<{_turn_url(ports)}>; rel="ice-server"; username="ome"; credential="airen"; credential-type="password"'
    answer = asyncio.run(_post_offer(f"http://127.0.0.1:{ports.llhls}/app/cam?direction=whep"))
    assert answer.status_code == 201, answer.text
    assert answer.headers.get_list("link") == [link], answer.headers
    # WebRTC ingest: WHIP's 201 and OME's signalling offer (direction=send) the same way
    whip = asyncio.run(_post_offer(f"http://127.0.0.1:{ports.llhls}/app/pub?direction=whip", publish=True))
    assert whip.status_code == 201, whip.text
    assert whip.headers.get_list("link") == [link], whip.headers
    assert "iceServers" not in asyncio.run(_offer(f"ws://127.0.0.1:{ports.llhls}/app/pub2?direction=send"))
    asked_send = asyncio.run(_offer(f"ws://127.0.0.1:{ports.llhls}/app/pub3?direction=send&transport=tcp"))
    assert asked_send["iceServers"][0]["urls"] == [_turn_url(ports)], asked_send


def test_a_publisher_that_stops_and_comes_back_at_once_gets_its_name(on_request: tuple[KilnProcess,
                                                                                     TurnPorts]) -> None:
    """OME's signalling publisher (direction=send) stopping and asking again for the same stream at once, 20 times:
    each time an offer, never 'Stream already exists' for the stream that has just ended (its end reaches the
    app's stream supervisor through the stream's actor, after the new request may have)."""
    kiln, ports = on_request
    url = f"ws://127.0.0.1:{ports.llhls}/app/again?direction=send"
    answers = [asyncio.run(_offer(url)) for _ in range(20)]
    assert [a.get("command") for a in answers] == ["offer"] * 20, [a for a in answers if a.get("command") != "offer"]
    closed = "webrtc publish closed session="
    kiln.wait_for(lambda: kiln.log_text().count(closed) >= 20 and "stream=default/app/again" in kiln.log_text(), 30,
                  "the 20 sessions to close")
    assert "Stream already exists: [default/app/again]" not in kiln.log_text()


async def _relay_only_viewer(url: str, frames_wanted: int = 30) -> tuple[int, str]:
    """aiortc as a player behind a UDP-blocking firewall: no host address of its own (so no host candidate),
    only the TURN server the offer names. Returns decoded video frames and the nominated local candidate type."""
    import websockets
    from aiortc import RTCConfiguration, RTCIceServer, RTCSessionDescription

    async with websockets.connect(url, open_timeout=20) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer = json.loads(await asyncio.wait_for(ws.recv(), 20))
        servers = [RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
                   for s in offer["iceServers"]]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        got = {"video": 0}
        done = asyncio.get_running_loop().create_future()

        def enough() -> None:
            if got["video"] >= frames_wanted and not done.done():
                done.set_result(None)

        count_frames(pc, got, enough)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"]["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            assert " typ relay" in pc.localDescription.sdp and " typ host" not in pc.localDescription.sdp
            await ws.send(json.dumps({"command": "answer", "id": offer["id"], "peer_id": 0,
                                      "sdp": {"type": "answer", "sdp": pc.localDescription.sdp}}))
            await asyncio.wait_for(done, 30)
            ice = pc.getTransceivers()[0].receiver.transport.transport
            pairs = list(ice._connection._nominated.values())
            return got["video"], pairs[0].local_candidate.type if pairs else "none"
        finally:
            await pc.close()


def test_aiortc_player_without_udp_of_its_own_plays_through_the_relay(
        on_request: tuple[KilnProcess, TurnPorts], monkeypatch: pytest.MonkeyPatch) -> None:
    _, ports = on_request
    import aioice.ice
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [])
    frames, local_type = asyncio.run(_relay_only_viewer(f"ws://127.0.0.1:{ports.llhls}/app/cam?transport=tcp"))
    assert frames >= 30
    assert local_type == "relay"
