"""Push publishing to real receivers: nginx-rtmp, an MPEG-TS/UDP listener, an SRT listener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, srt_listener_receiver, udp_ts_receiver
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def source(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[Peer]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/src", test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: "src" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
    yield pub
    pub.stop()


def push(kiln: KilnProcess, task_id: str) -> dict[str, Any]:
    found = [p for p in kiln.api.post(f"{APP}:pushes").json()["response"] if p["id"] == task_id]
    return found[0] if found else {}


def probe_kinds(path: Path) -> dict[str, str]:
    return {s["codec_type"]: s["codec_name"] for s in ffprobe_json(path, timeout=30)["streams"]}


def test_push_to_nginx_rtmp(kiln: KilnProcess, source: Peer, nginx_rtmp: NginxRtmp) -> None:
    r = kiln.api.post(f"{APP}:startPush", json={"id": "n1", "stream": {"name": "src"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": "k1"})
    assert r.status_code == 200, r.text
    kiln.wait_for(lambda: push(kiln, "n1").get("state") == "pushing", what="state pushing")
    nginx_rtmp.wait_publishing("k1")
    kiln.wait_for(lambda: push(kiln, "n1").get("sentBytes", 0) > 50_000, timeout=30, what="bytes sent")
    assert kiln.api.post(f"{APP}:stopPush", json={"id": "n1"}).status_code == 200
    recorded = nginx_rtmp.wait_recorded("k1", min_bytes=20_000)
    assert probe_kinds(recorded) == {"video": "h264", "audio": "aac"}
    assert push(kiln, "n1") == {}


def test_push_mpegts_over_udp(kiln: KilnProcess, source: Peer, peer_dir: Path) -> None:
    port = free_udp_port()
    out = peer_dir / "udp.ts"
    receiver = udp_ts_receiver(port, out, 3, log_dir=peer_dir)
    r = kiln.api.post(f"{APP}:startPush", json={"id": "u1", "stream": {"name": "src"}, "protocol": "mpegts",
                                                "url": f"udp://127.0.0.1:{port}"})
    assert r.status_code == 200, r.text
    kiln.wait_for(lambda: push(kiln, "u1").get("state") == "pushing", what="state pushing")
    receiver.wait(30)
    assert probe_kinds(out) == {"video": "h264", "audio": "aac"}


def test_push_srt_to_a_listener(kiln: KilnProcess, source: Peer, peer_dir: Path) -> None:
    port = free_udp_port()
    out = peer_dir / "srt.ts"
    receiver = srt_listener_receiver(port, out, 3, log_dir=peer_dir)
    r = kiln.api.post(f"{APP}:startPush", json={"id": "s1", "stream": {"name": "src"}, "protocol": "srt",
                                                "url": f"srt://127.0.0.1:{port}?streamid=kiln"})
    assert r.status_code == 200, r.text
    receiver.wait(30)
    assert probe_kinds(out) == {"video": "h264", "audio": "aac"}


def test_push_waits_for_its_stream_and_retries_a_dead_destination(kiln: KilnProcess, test_flv: Path,
                                                                  peer_dir: Path, nginx_rtmp: NginxRtmp) -> None:
    r = kiln.api.post(f"{APP}:startPush", json={"id": "w1", "stream": {"name": "later"}, "protocol": "rtmp",
                                                "url": "rtmp://127.0.0.1:1/live", "streamKey": "x"})
    assert r.status_code == 200 and push(kiln, "w1")["state"] == "ready"
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/later", test_flv, loop=True, log_dir=peer_dir)
    try:
        failed = kiln.wait_for(lambda: (p := push(kiln, "w1")).get("lastError") and p, timeout=20, what="error")
        assert failed["state"] in ("error", "connecting", "ready")
        # a second task to a live destination is unaffected by the failing one
        r = kiln.api.post(f"{APP}:startPush", json={"id": "w2", "stream": {"name": "later"}, "protocol": "rtmp",
                                                    "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live",
                                                    "streamKey": "ok"})
        assert r.status_code == 200
        nginx_rtmp.wait_publishing("ok")
    finally:
        pub.stop()
    kiln.wait_for(lambda: push(kiln, "w2").get("state") == "ready", what="back to ready when the source ends")
