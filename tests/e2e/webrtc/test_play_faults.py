"""WebRTC playback faults: a stalled viewer beside a healthy one, viewers that vanish, bad signalling, and
500 signalling sockets opened and abandoned; Kiln's threads, fds and memory stay flat afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RtcPorts, kiln_playing_cam, rtc_server_xml
from tests.peers.fixtures import require
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
PUBLISHERS = "<WebRTC><Timeout>4000</Timeout><CrossDomains><Url>*</Url></CrossDomains></WebRTC>"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("ffmpeg")
    ports = RtcPorts()
    with kiln_playing_cam(tmp_path, rtc_server_xml(ports, publishers=PUBLISHERS), ports) as pair:
        # the stream handed over to its publishers too (LL-HLS's threads and pools up), not only listed:
        # the tests below compare the process's threads with what it has here
        kiln = pair[0]
        playlist = f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8"  # 201 while the stream is coming
        kiln.wait_for(lambda: httpx.get(playlist, timeout=20).status_code == 200, what="the LL-HLS playlist")
        yield pair


def _viewer(url: str, workdir: Path, name: str) -> Peer:
    return Peer.spawn(name, [sys.executable, "-m", "tests.e2e.webrtc.rtc_viewer", url, "60"], workdir, cwd=ROOT)


def _last(peer: Peer) -> dict[str, Any]:
    lines = [line for line in peer.stdout_text().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _wait_frames(peer: Peer, frames: int, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = _last(peer)
        if last.get("video", 0) >= frames:
            return last
        if not peer.alive:
            break
        time.sleep(0.2)
    raise AssertionError(f"{peer.name}: {frames} frames not reached: {_last(peer)}\n{peer.stderr_tail(20)}")


def _connections(kiln: KilnProcess) -> int:
    stats = kiln.api.get("/v1/stats/current/vhosts/default/apps/app/streams/cam").json()["response"]
    return int(stats["connections"]["webrtc"])


def _proc(kiln: KilnProcess) -> dict[str, int]:
    assert kiln.proc is not None
    pid = kiln.proc.pid
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"fds": len(list(Path(f"/proc/{pid}/fd").iterdir())), "threads": int(status["Threads"].strip()),
            "rss_kb": int(status["VmRSS"].split()[0])}


def _thread_names(kiln: KilnProcess) -> Counter[str]:
    """The process's threads by OS name (``kiln serve`` gives each thread its Python name)."""
    assert kiln.proc is not None
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{kiln.proc.pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:  # ended meanwhile
            continue
    return names


def _wait_threads_back(kiln: KilnProcess, before: dict[str, int], names: Counter[str]) -> None:
    try:
        kiln.wait_for(lambda: _proc(kiln)["threads"] <= before["threads"] + 1, 20, "threads back to before")
    except TimeoutError as exc:
        now = _thread_names(kiln)
        raise AssertionError(f"threads not back to before: more {dict(now - names)}, fewer {dict(names - now)}"
                             ) from exc


def test_stalled_viewer_beside_a_healthy_one_then_both_vanish(live: tuple[KilnProcess, RtcPorts],
                                                               tmp_path: Path) -> None:
    kiln, ports = live
    url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
    healthy, stalled = _viewer(url, tmp_path, "viewer-healthy"), _viewer(url, tmp_path, "viewer-stalled")
    try:
        _wait_frames(healthy, 30)
        _wait_frames(stalled, 30)
        kiln.wait_for(lambda: _connections(kiln) == 2, 20, "two webrtc connections")
        stalled._signal_group(signal.SIGSTOP)  # reads nothing more: its socket buffers fill, it sends no RTCP
        before, t0 = _last(healthy)["video"], time.monotonic()
        time.sleep(4)
        rate = (_last(healthy)["video"] - before) / (time.monotonic() - t0)
        assert rate >= 15, f"the healthy viewer dropped to {rate:.1f} fps while the other stalled"  # source: 30 fps
        for peer in (stalled, healthy):  # vanish without a word: SIGKILL (the stalled one is stopped, so kill it)
            peer._signal_group(signal.SIGKILL)
        kiln.wait_for(lambda: _connections(kiln) == 0, 30, "both sessions freed after their viewers vanished")
    finally:
        for peer in (healthy, stalled):
            peer._signal_group(signal.SIGCONT)
            peer.stop()


def test_viewers_end_with_the_stream(live: tuple[KilnProcess, RtcPorts], tmp_path: Path) -> None:
    kiln, ports = live
    viewer = _viewer(f"ws://127.0.0.1:{ports.llhls}/app/cam", tmp_path, "viewer")
    try:
        _wait_frames(viewer, 15)
        kiln.wait_for(lambda: _connections(kiln) == 1, 20, "one webrtc connection")
        assert kiln.api.delete("/v1/vhosts/default/apps/app/streams/cam").status_code == 200
        kiln.wait_for(lambda: any("webrtc session closed" in line and "first_rtp_ms" in line
                                  for line in kiln.log_path.read_text().splitlines()), 20, "session ended")
        kiln.wait_for(lambda: viewer.alive is False or _last(viewer).get("state") in ("closed", "failed"), 40,
                      "the viewer's socket closed by Kiln")
    finally:
        viewer.stop()


async def _bad_signalling(url: str) -> list[dict[str, Any]]:
    import websockets

    answers = []
    for frames in (["not json"], ['{"command":"answer","id":1,"sdp":{"type":"answer","sdp":"v=0"}}'],
                   ['{"command":"request_offer"}', '{"command":"answer","id":999,"sdp":"v=0"}'],
                   ['{"command":"request_offer"}', "ANSWER"]):
        async with websockets.connect(url, open_timeout=20) as ws:
            offer_id = None
            for frame in frames:
                if frame == "ANSWER":
                    frame = json.dumps({"command": "answer", "id": offer_id, "sdp": {"type": "answer",
                                                                                     "sdp": "garbage"}})
                await ws.send(frame)
                if "request_offer" in frame:
                    offer_id = json.loads(await asyncio.wait_for(ws.recv(), 20))["id"]
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
            await asyncio.wait_for(ws.wait_closed(), 20)  # the server closes after its error
    async with websockets.connect(url.replace("/cam", "/nope"), open_timeout=20) as ws:
        await ws.send('{"command":"request_offer"}')
        answers.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    async with websockets.connect(url + "?direction=send", open_timeout=20) as ws:  # no Providers/WebRTC here
        answers.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
    return answers


def test_bad_signalling_gets_ome_errors_and_a_closed_socket(live: tuple[KilnProcess, RtcPorts]) -> None:
    kiln, ports = live
    answers = asyncio.run(_bad_signalling(f"ws://127.0.0.1:{ports.llhls}/app/cam"))
    assert answers[0] == {"code": 400, "error": "message is not JSON"}
    assert answers[1] == {"code": 400, "error": "Invalid ID"}          # an answer before any offer
    assert answers[2] == {"code": 400, "error": "Invalid ID"}          # another id than the offer's
    assert answers[3]["code"] == 400 and "SDP must begin with v=0" in answers[3]["error"]  # garbage SDP
    assert answers[4] == {"code": 404, "error": "Cannot create offer"}  # no such stream
    assert answers[5] == {"code": 404, "error": "WebRTC ingest is not enabled for the application: [default/app]"}
    whip = httpx.post(f"http://127.0.0.1:{ports.llhls}/app/cam?direction=whip", content=b"v=0",
                      headers={"content-type": "application/sdp"})
    assert (whip.status_code, whip.text) == (404, "WebRTC ingest is not enabled for the application: [default/app]")
    whep = httpx.post(f"http://127.0.0.1:{ports.llhls}/app/cam?direction=whep", content=b"hello",
                      headers={"content-type": "application/sdp"})
    assert whep.status_code == 400 and "SDP must begin with v=0" in whep.text
    assert httpx.delete(f"http://127.0.0.1:{ports.llhls}/app/cam/nosuch?direction=whep").status_code == 404
    preflight = httpx.options(f"http://127.0.0.1:{ports.llhls}/app/cam?direction=whep",
                              headers={"origin": "http://player.example", "access-control-request-method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert _connections(kiln) == 0
    assert "Traceback" not in kiln.log_path.read_text()


async def _abandon(url: str, n: int) -> int:
    """``n`` sockets: every other one asks for an offer; all are then dropped without a close handshake."""
    import websockets

    offers = 0
    sockets = []
    for i in range(n):
        ws = await websockets.connect(url, open_timeout=20)
        if i % 2:
            await ws.send('{"command":"request_offer"}')
            offers += "offer" in await asyncio.wait_for(ws.recv(), 20)
        sockets.append(ws)
    for ws in sockets:
        ws.transport.abort()
    return offers


def test_500_abandoned_signalling_sockets_leave_nothing_behind(live: tuple[KilnProcess, RtcPorts]) -> None:
    kiln, ports = live
    url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
    # Each round holds 250 live peer connections at once, then drops them all. The allocator's high-water
    # mark settles over the first rounds (measured: +40, +30, +14, +6 MB; malloc_trim gives back only
    # ~6 MB, so it is arena fragmentation, not glibc's free lists); a leak would grow by the same amount
    # every round. So: threads and fds flat from the first round on, and the fourth round's growth
    # smaller than the second's.
    rss: list[int] = []
    for done in range(1, 5):
        assert asyncio.run(_abandon(url, 500)) == 250
        kiln.wait_for(lambda done=done: _all_abandoned(kiln, 250 * done), 60, f"round {done} freed")
        state = _proc(kiln)
        if done == 1:
            first = state
        rss.append(state["rss_kb"])
    assert state["threads"] <= first["threads"] + 1, (first, state)
    assert state["fds"] <= first["fds"] + 3, (first, state)
    # settling, not leaking: the fourth round grows less than the second did, and by a bounded amount
    # (seen: +6..+26 MB on a loaded machine, the second round +28..+40 MB)
    assert rss[3] - rss[2] <= min(30 * 1024, rss[1] - rss[0]), rss
    # the 1,000 sessions' UDP routes are gone too: one more offer finds at most its own route open
    assert asyncio.run(_abandon(url, 2)) == 1
    kiln.wait_for(lambda: _all_abandoned(kiln, 1001), 60, "the last offer freed")
    assert int(_abandoned_lines(kiln)[-1].rsplit("udp_routes=", 1)[1]) <= 1
    assert _connections(kiln) == 0
    assert "Traceback" not in kiln.log_path.read_text()


def _abandoned_lines(kiln: KilnProcess) -> list[str]:
    return [line for line in kiln.log_path.read_text().splitlines() if "webrtc offer abandoned" in line]


def _all_abandoned(kiln: KilnProcess, n: int) -> bool:
    """Every offer's session is gone (its UDP route may close a moment after the line is logged)."""
    lines = _abandoned_lines(kiln)
    return len(lines) >= n and "open_sessions=0 " in lines[-1]




def test_viewer_vanishing_without_a_word_is_freed_by_consent_timeout(live: tuple[KilnProcess, RtcPorts],
                                                                    tmp_path: Path) -> None:
    """A viewer that negotiated, played, then went silent (no consent answers) while its signalling socket
    stays open: Publishers/WebRTC/Timeout (4 s here; aioice's own is 30 s) ends the session, Kiln closes
    the socket, and the process is back to its fds and threads of before."""
    kiln, ports = live
    before, names = _proc(kiln), _thread_names(kiln)
    viewer = _viewer(f"ws://127.0.0.1:{ports.llhls}/app/cam", tmp_path, "viewer-silent")
    try:
        _wait_frames(viewer, 15)
        kiln.wait_for(lambda: _connections(kiln) == 1, 20, "one webrtc connection")
        viewer._signal_group(signal.SIGSTOP)  # its TCP socket stays open (the kernel keeps it), ICE goes silent
        stopped = time.monotonic()
        kiln.wait_for(lambda: _connections(kiln) == 0, 40, "the silent viewer's session freed")
        freed_after = time.monotonic() - stopped
        assert freed_after < 15, f"freed after {freed_after:.1f} s: the 4 s timeout was not followed"
        sys.stdout.write(f"\nsilent viewer freed {freed_after:.1f} s after it stopped (Timeout 4000 ms)\n")
        # the connection count drops as the session ends; its log lines may follow
        log_text = kiln.wait_for_log("webrtc ice consent expired", "timeout_s=4.0", "webrtc session closed")
        closed = [line for line in log_text.splitlines() if "webrtc session closed" in line]
        assert closed and "reason=" in closed[-1]
        # Kiln closed the signalling socket and freed the UDP route: fds and threads where they were
        kiln.wait_for(lambda: _proc(kiln)["fds"] <= before["fds"] + 2, 20, "fds back to before")
        _wait_threads_back(kiln, before, names)
        assert "Traceback" not in log_text
    finally:
        viewer._signal_group(signal.SIGCONT)
        viewer.stop()
