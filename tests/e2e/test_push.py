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
    connections = kiln.api.get(f"/v1/stats/current{APP[3:]}").json()["response"]["connections"]
    assert (connections["push"], connections["rtmppush"], connections["mpegtspush"]) == (1, 1, 0)  # issue 19 item 5
    kiln.wait_for(lambda: push(kiln, "n1").get("sentTime", 0) >= 5000, timeout=30, what="5 s sent")
    sent_ms = push(kiln, "n1")["sentTime"]
    assert kiln.api.post(f"{APP}:stopPush", json={"id": "n1"}).status_code == 200
    recorded = nginx_rtmp.wait_recorded("k1", min_bytes=20_000)
    probe = ffprobe_json(recorded, timeout=30)
    assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"video": "h264", "audio": "aac"}
    assert abs(float(probe["format"]["duration"]) * 1000 - sent_ms) <= 0.1 * sent_ms, (probe["format"], sent_ms)
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


def _states(kiln: KilnProcess, task_id: str) -> list[str]:
    import io
    import json

    from kiln.journal.cli import run

    out = io.StringIO()
    run(["show", "-d", str(kiln.data_dir), "--entity", f"push:default/app/{task_id}", "--type", "PushStateChanged",
         "--json"], out)
    return [json.loads(line)["payload"]["state"] for line in out.getvalue().splitlines()]


def _recoveries(states: list[str]) -> int:
    """How many times the journal shows error → connecting → pushing, in that order."""
    count, want = 0, ["error", "connecting", "pushing"]
    step = 0
    for state in states:
        if state == want[step]:
            step += 1
            if step == 3:
                count, step = count + 1, 0
        elif state == "error":
            step = 1
    return count


def test_push_heals_after_the_destination_restarts_three_times(kiln: KilnProcess, source: Peer,
                                                               nginx_rtmp: NginxRtmp) -> None:
    r = kiln.api.post(f"{APP}:startPush", json={"id": "f1", "stream": {"name": "src"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": "f"})
    assert r.status_code == 200
    for round_no in range(1, 4):
        kiln.wait_for(lambda: push(kiln, "f1").get("state") == "pushing", timeout=30, what="pushing")
        nginx_rtmp.wait_publishing("f")
        nginx_rtmp.stop()
        kiln.wait_for(lambda: push(kiln, "f1").get("state") in ("error", "connecting"), what="push notices")
        nginx_rtmp.start()
        kiln.wait_for(lambda n=round_no: _recoveries(_states(kiln, "f1")) >= n, timeout=30,
                      what=f"recovery {round_no} in the journal")
    nginx_rtmp.wait_publishing("f")
    kiln.wait_for(lambda: push(kiln, "f1").get("sentBytes", 0) > 100_000, timeout=30, what="bytes after recovery")
    kiln.api.post(f"{APP}:stopPush", json={"id": "f1"})
    recorded = nginx_rtmp.wait_recorded("f", min_bytes=20_000)
    assert probe_kinds(recorded) == {"video": "h264", "audio": "aac"}
    assert push(kiln, "f1") == {}


def test_push_task_survives_kill9_and_pushes_when_the_publisher_returns(
        kiln: KilnProcess, test_flv: Path, peer_dir: Path, nginx_rtmp: NginxRtmp) -> None:
    url = f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/back"
    r = kiln.api.post(f"{APP}:startPush", json={"id": "k1", "stream": {"name": "back"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": "kb"})
    assert r.status_code == 200
    pub = publish_rtmp(url, test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: push(kiln, "k1").get("state") == "pushing", what="pushing before the crash")
    kiln.kill9()
    pub.stop()
    kiln.start()
    task = push(kiln, "k1")
    assert (task["state"], task["sequence"]) == ("ready", 1)  # the dead session is closed by recovery
    pub = publish_rtmp(url, test_flv, loop=True, log_dir=peer_dir)
    try:
        nginx_rtmp.wait_publishing("kb", timeout=30)
        kiln.wait_for(lambda: push(kiln, "k1").get("state") == "pushing", what="pushing after restart")
    finally:
        pub.stop()


def test_push_to_srt_live_transmit_with_a_streamid(kiln: KilnProcess, source: Peer, peer_dir: Path) -> None:
    from tests.peers.srt_tools import srt_live_transmit

    port, out_port = free_udp_port(), free_udp_port()
    out = peer_dir / "slt.ts"
    receiver = udp_ts_receiver(out_port, out, 3, log_dir=peer_dir)
    relay = srt_live_transmit(f"srt://127.0.0.1:{port}?mode=listener", f"udp://127.0.0.1:{out_port}",
                              log_dir=peer_dir)
    try:
        r = kiln.api.post(f"{APP}:startPush", json={"id": "st", "stream": {"name": "src"}, "protocol": "srt",
                                                    "url": f"srt://127.0.0.1:{port}?streamid=#!::r=live/src,m=publish"})
        assert r.status_code == 200, r.text
        receiver.wait(30)
        assert probe_kinds(out) == {"video": "h264", "audio": "aac"}
    finally:
        relay.stop()


def _process_figures(pid: int) -> tuple[int, int, int]:
    """(threads, open files, RSS kB) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return int(fields["Threads"]), fds, int(fields["VmRSS"].split()[0])


def test_200_start_stop_cycles_leave_threads_files_and_memory_flat(kiln: KilnProcess, source: Peer,
                                                                   nginx_rtmp: NginxRtmp) -> None:
    body = {"stream": {"name": "src"}, "protocol": "rtmp", "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live"}

    def cycles(n: int, tag: str) -> None:
        for i in range(n):
            assert kiln.api.post(f"{APP}:startPush", json={**body, "id": f"{tag}{i}", "streamKey": f"{tag}{i}"}
                                 ).status_code == 200
            assert kiln.api.post(f"{APP}:stopPush", json={"id": f"{tag}{i}"}).status_code == 200

    assert kiln.proc is not None
    pid = kiln.proc.pid
    cycles(20, "warm")
    kiln.wait_for(lambda: kiln.api.post(f"{APP}:pushes").json()["response"] == [], what="no pushes")
    threads0, fds0, rss0 = kiln.wait_for(lambda: _process_figures(pid), what="figures")
    cycles(200, "c")
    kiln.wait_for(lambda: _process_figures(pid)[0] <= threads0 + 3, timeout=30, what="threads back down")
    threads1, fds1, rss1 = _process_figures(pid)
    assert threads1 <= threads0 + 3, (threads0, threads1)
    assert fds1 <= fds0 + 8, (fds0, fds1)
    assert rss1 - rss0 < 40_000, (rss0, rss1)
