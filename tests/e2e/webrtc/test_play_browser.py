"""WebRTC playback in real players: OvenPlayer (OME's signalling) and Eyevinn's WHEP player, in headless
Chromium, of a stream ffmpeg publishes over RTMP (H.264 without B-frames + AAC; Kiln adds Opus)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RtcPorts, kiln_playing_cam, rtc_server_xml
from tests.e2e.webrtc.rtc_browser import play_rtc, rtc_browser_available
from tests.peers.fixtures import require

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("chromium", rtc_browser_available)
    require("ffmpeg")
    ports = RtcPorts()
    with kiln_playing_cam(tmp_path, rtc_server_xml(ports), ports) as pair:
        yield pair


def _connections(kiln: KilnProcess) -> int:
    stats = kiln.api.get("/v1/stats/current/vhosts/default/apps/app/streams/cam").json()["response"]
    return int(stats["connections"]["webrtc"])


def test_ovenplayer_plays_over_ome_signalling(live: tuple[KilnProcess, RtcPorts], tmp_path: Path) -> None:
    kiln, ports = live
    report = play_rtc("ovenplayer", f"ws://127.0.0.1:{ports.llhls}/app/cam", origin=f"http://127.0.0.1:{ports.llhls}",
                      workdir=tmp_path / "browser", watch=3)
    log.info("ovenplayer report %s", report)
    assert report["playing"], report
    assert report["framesEnd"] - report["framesStart"] >= 30, report  # ~30 fps for 3 s, decoded and shown
    assert report["audioPackets"] > 50, report
    assert report["videoCodec"] == "video/H264", report
    assert not report["errors"], report
    sys.stdout.write(f"\nOvenPlayer WebRTC: frames {report['framesStart']}->{report['framesEnd']} in 3 s, "
          f"audio packets {report['audioPackets']}, receiver jitter buffer {report['jitterBufferMs']:.0f} ms, "
          f"estimated playout delay behind Kiln's send {report['playoutDelayMs']} ms\n")
    kiln.wait_for(lambda: _connections(kiln) == 0, 20, "webrtc connection released after the browser closed")
    served = kiln.wait_for(lambda: [line for line in kiln.log_path.read_text().splitlines()
                                    if "webrtc session closed" in line], 20, "session closed log")
    assert "first_rtp_ms_p99=" in served[-1]


def test_whep_player_plays_and_delete_frees_the_session(live: tuple[KilnProcess, RtcPorts], tmp_path: Path) -> None:
    kiln, ports = live
    # the page is served from another origin: the offer POST is preflighted and needs Kiln's CORS headers
    report = play_rtc("whep", f"http://127.0.0.1:{ports.llhls}/app/cam?direction=whep",
                      origin="http://127.0.0.1:9", workdir=tmp_path / "browser", watch=2, stop_whep=True)
    log.info("whep report %s", report)
    assert report["playing"], report
    assert report["framesEnd"] > report["framesStart"], report
    assert report["audioPackets"] > 0, report
    assert report["whepDeleted"], report
    closed = kiln.wait_for(lambda: [line for line in kiln.log_path.read_text().splitlines()
                                    if "webrtc session closed" in line], 20, "session closed log")
    assert "reason=WHEP DELETE" in closed[0], closed
    assert _connections(kiln) == 0
