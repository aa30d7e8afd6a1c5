"""webrtcAutoAbr end to end: a viewer in its own network namespace behind a 450 kbit/s token bucket (tc, made
by the test; needs root) starts on the passed-through 320x180 rendition (~0.7 Mbit/s), its receiver's REMB
estimate falls, and Kiln moves it to the 160x90 encode (150 kbit/s), whose frames it then decodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RtcPorts, kiln_playing_cam, rtc_server_xml
from tests.e2e.webrtc.test_play_abr import ABR_PROFILE
from tests.peers.fixtures import require
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
AUTO_PROFILE = ABR_PROFILE.replace("<WebRtcAutoAbr>false</WebRtcAutoAbr>", "<WebRtcAutoAbr>true</WebRtcAutoAbr>")
RATE = "450kbit"


@dataclass(frozen=True)
class Shaped:
    """A namespace whose only link to this host is a veth pair; the host side's egress (what Kiln sends the
    viewer) goes through a token bucket of ``RATE``."""

    netns: str
    host_if: str
    host_ip: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


def _can_shape() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("tc") is not None


@pytest.fixture
def shaped() -> Iterator[Shaped]:
    require("tc (root, ip netns)", _can_shape)
    tag = f"{os.getpid() % 100000}"
    net = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
    netns, host_if, ns_if = f"kiln-abr-{tag}", f"kab{tag}h", f"kab{tag}n"
    _ip("netns", "add", netns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", netns)
        _ip("addr", "add", f"{net}.1/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", netns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if)
        _ip("netns", "exec", netns, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        subprocess.run(["tc", "qdisc", "add", "dev", host_if, "root", "tbf", "rate", RATE, "burst", "32kbit",
                        "latency", "200ms"], check=True, capture_output=True, timeout=20)
        yield Shaped(netns, host_if, f"{net}.1")
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=20)  # takes the veth pair along


@pytest.fixture
def live(tmp_path: Path, shaped: Shaped) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("ffmpeg")
    ports = RtcPorts()
    xml = rtc_server_xml(ports, profiles=AUTO_PROFILE)
    # listen on every address and advertise the veth's: the viewer reaches Kiln only through the shaped link
    xml = xml.replace("<IP>127.0.0.1</IP>", "<IP>*</IP>").replace("<IceCandidate>*:",
                                                                  f"<IceCandidate>{shaped.host_ip}:")
    with kiln_playing_cam(tmp_path, xml, ports) as pair:
        yield pair


def _reports(peer: Peer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in peer.stdout_text().splitlines() if line.startswith("{")]


def test_auto_abr_moves_a_shaped_viewer_to_the_low_rendition(live: tuple[KilnProcess, RtcPorts], shaped: Shaped,
                                                             tmp_path: Path) -> None:
    kiln, ports = live
    url = f"ws://{shaped.host_ip}:{ports.llhls}/app/cam/abr"
    viewer = Peer.spawn("viewer-shaped", ["ip", "netns", "exec", shaped.netns, sys.executable, "-m",
                                          "tests.e2e.webrtc.rtc_viewer", url, "90"], tmp_path, cwd=ROOT)
    try:
        kiln.wait_for(lambda: any(r.get("width") == 320 for r in _reports(viewer)), 30,
                      "the viewer decoding the high rendition first")
        first_high = time.monotonic()
        kiln.wait_for(lambda: "webrtc rendition changed" in kiln.log_path.read_text(), 30,
                      "Kiln switching the viewer on its bandwidth estimate")
        switched_after = time.monotonic() - first_high
        log_line = next(line for line in kiln.log_path.read_text().splitlines() if "rendition changed" in line)
        assert "rendition=low" in log_line and shaped.host_ip.rsplit(".", 1)[0] in log_line, log_line

        def low_frames() -> int:
            reports = _reports(viewer)
            first = next((r for r in reports if r.get("width") == 160), None)
            return reports[-1]["video"] - first["video"] if first is not None else 0

        # aiortc's receiver waits out a packet lost in the switch (until 128 later ones arrive): a generous wait
        kiln.wait_for(lambda: low_frames() >= 30, 60, "30 frames of the 160x90 rendition decoded")
        heard = _reports(viewer)[-1]["notifications"]
        assert {"type": "rendition_changed", "rendition_name": "low", "auto": True} in heard, heard
        sys.stdout.write(f"\nauto abr at {RATE}: switched {switched_after:.1f} s and 30 low frames decoded "
                         f"{time.monotonic() - first_high:.1f} s after the first high frame\n")
        assert "Traceback" not in kiln.log_path.read_text()
    finally:
        viewer.stop()
