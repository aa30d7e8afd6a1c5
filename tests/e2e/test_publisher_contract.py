"""The publisher contract (tests/unit/publish/contract.py) run for the pushes that need a real peer:
RTMP to nginx-rtmp and MPEG-TS over SRT to an ffmpeg SRT listener."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.peers.ffmpeg import ffprobe_json, srt_listener_receiver
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer
from tests.unit.publish.contract import PushContract, wait_until

pytestmark = pytest.mark.e2e


class TestPushToNginxRtmp(PushContract):
    protocol = "rtmp"

    @pytest.fixture(autouse=True)
    def destination_server(self, nginx_rtmp: NginxRtmp) -> Any:
        self.nginx = nginx_rtmp
        return nginx_rtmp

    def destination(self) -> str:
        return self.nginx.url("live", "contract")

    def assert_let_go(self, publisher: Any, tmp_path: Path) -> None:
        self.assert_states()
        wait_until(lambda: "contract" not in self.nginx.publishing(), "nginx-rtmp to see the publish end")
        recorded = self.nginx.wait_recorded("contract", min_bytes=1000)
        streams = ffprobe_json(recorded, timeout=30)["streams"]
        assert {s["codec_type"]: s["codec_name"] for s in streams} == {"video": "h264", "audio": "aac"}


class TestPushToSrtListener(PushContract):
    protocol = "srt"

    @pytest.fixture(autouse=True)
    def destination_server(self, peer_dir: Path) -> Any:
        self.port = free_udp_port()
        self.received = peer_dir / "srt.ts"
        self.receiver: Peer = srt_listener_receiver(self.port, self.received, 600, log_dir=peer_dir)
        yield self.receiver
        self.receiver.stop()

    def destination(self) -> str:
        return f"srt://127.0.0.1:{self.port}?streamid=contract"

    def assert_let_go(self, publisher: Any, tmp_path: Path) -> None:
        self.assert_states()
        self.receiver.wait(15)  # the listener's input ends when Kiln closes the SRT connection
        streams = ffprobe_json(self.received, timeout=30)["streams"]
        assert {s["codec_type"]: s["codec_name"] for s in streams} == {"video": "h264", "audio": "aac"}
