"""Slowloris: 500 half-open connections on each of the API, LL-HLS and RTMP ports (from 127.0.0.2) while a
normal client (127.0.0.1) is served promptly; the half-open ones are closed within a bounded time and
Kiln's file descriptors come back."""

from __future__ import annotations

import select
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

PER_PORT = 500
API_TIMEOUT = 3  # Managers/API/Limits/RequestTimeout in this test
API_PER_CLIENT = 50
MEDIA_TIMEOUT = 10  # the LL-HLS port's request timeout and RTMP's handshake timeout (defaults)
ATTACKER = "127.0.0.2"


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def half_open(port: int, first_bytes: bytes, count: int) -> list[socket.socket]:
    """``count`` connections from ATTACKER that send ``first_bytes`` (a request or handshake cut short)."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.bind((ATTACKER, 0))
        s.setblocking(True)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if i % 2 == 0:  # every other one sends nothing at all
            s.sendall(first_bytes)
        s.setblocking(False)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket) -> bool:
    if s.fileno() < 0:
        return True
    poller = select.poll()  # select() cannot take descriptors above 1023
    poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    if not poller.poll(0):
        return False
    try:
        return s.recv(65536) == b"" or True  # EOF, or an answer (400) the server sent before closing
    except (ConnectionResetError, BlockingIOError):
        return True


def still_open(socks: list[socket.socket]) -> int:
    return sum(1 for s in socks if not closed_by_server(s))


def normal_requests(kiln: KilnProcess, http: httpx.Client, llhls: str, tag: str) -> float:
    """The slowest of 10 rounds of an API GET, an LL-HLS playlist GET and an API command (seconds)."""
    slowest = 0.0
    for n in range(10):
        for call in (lambda: kiln.api.get("/v1/vhosts"), lambda: http.get(llhls),
                     lambda n=n: kiln.api.post("/v1/vhosts", json=[{"name": f"{tag}{n}"}])):
            t = time.monotonic()
            assert call().status_code == 200
            slowest = max(slowest, time.monotonic() - t)
    return slowest


def test_half_open_connections_cost_a_bounded_time_and_never_stop_other_clients(
        tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    ports = Ports()
    limits = (f"<Limits><RequestTimeout>{API_TIMEOUT}</RequestTimeout>"
              f"<MaxConnectionsPerClient>{API_PER_CLIENT}</MaxConnectionsPerClient></Limits>")
    xml = server_xml(ports, tmp_path / "records").replace("<AccessToken>", f"{limits}<AccessToken>")
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", xml, ports).start()
    publishers = [publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)]
    attack: dict[str, list[socket.socket]] = {}
    try:
        assert kiln.proc is not None
        pid = kiln.proc.pid
        llhls = f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8"
        http = httpx.Client(timeout=10)
        kiln.wait_for(lambda: http.get(llhls).status_code == 200, timeout=30, what="LL-HLS of cam")
        baseline = fds(pid)
        calm = normal_requests(kiln, http, llhls, "calm")  # the reference, measured the same way

        started = time.monotonic()
        attack["api"] = half_open(ports.api, b"POST /v1/vhosts HTTP/1.1\r\nHost: kiln\r\nX-Slow: ", PER_PORT)
        attack["llhls"] = half_open(ports.llhls, b"GET /app/cam/llhls.m3u8 HTTP/1.1\r\nHost: kiln\r\n", PER_PORT)
        attack["rtmp"] = half_open(ports.rtmp, b"\x03" + b"\x00" * 700, PER_PORT)  # C0 and half of C1
        opened = time.monotonic() - started

        # beyond the per-client limit the API closes at once; the rest wait for their deadline
        kiln.wait_for(lambda: still_open(attack["api"]) <= API_PER_CLIENT, timeout=5, what="API per-client limit")

        # the normal client is served promptly on every port while the half-open ones are held
        slowest = normal_requests(kiln, http, llhls, "attack")
        assert slowest < 1.0, f"a normal request took {slowest:.2f}s under attack (calm: {calm:.2f}s)"
        publishers.append(publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/late", test_flv, loop=True,
                                       log_dir=peer_dir))
        kiln.wait_for(lambda: "late" in kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"],
                      timeout=15, what="an RTMP publisher accepted during the attack")

        # every half-open connection is closed by Kiln within its deadline (plus slack for a loaded machine)
        kiln.wait_for(lambda: still_open(attack["api"]) == 0, timeout=API_TIMEOUT + 10, what="API half-open closed")
        kiln.wait_for(lambda: still_open(attack["llhls"]) == 0, timeout=MEDIA_TIMEOUT + 15,
                      what="LL-HLS half-open closed")
        kiln.wait_for(lambda: still_open(attack["rtmp"]) == 0, timeout=MEDIA_TIMEOUT + 15,
                      what="RTMP half-open closed")
        closed_after = time.monotonic() - started
        for socks in attack.values():
            for s in socks:
                s.close()
        kiln.wait_for(lambda: fds(pid) <= baseline + 10, timeout=30, what="Kiln's fds back to the baseline")
        assert http.get(llhls).status_code == 200 and kiln.api.get("/v1/vhosts").status_code == 200
        sys.stdout.write(f"slowloris: {3 * PER_PORT} half-open connections opened in {opened:.1f}s, all closed by Kiln "
              f"{closed_after:.1f}s after the first, slowest normal request {slowest * 1000:.0f} ms "
                         f"(without the attack, same run: {calm * 1000:.0f} ms), "
              f"fds {baseline} before / {fds(pid)} after\n")
        http.close()
    finally:
        for socks in attack.values():
            for s in socks:
                s.close()
        for peer in publishers:
            peer.stop()
        kiln.close()


def test_api_limits_on_body_size_header_size_and_a_trickled_body(tmp_path: Path) -> None:
    ports = Ports()
    limits = ("<Limits><RequestTimeout>2</RequestTimeout><MaxBodyBytes>1000</MaxBodyBytes>"
              "<MaxHeaderBytes>4096</MaxHeaderBytes></Limits>")
    xml = server_xml(ports, tmp_path / "records").replace("<AccessToken>", f"{limits}<AccessToken>")
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", xml, ports).start()
    try:
        r = kiln.api.post("/v1/vhosts", json=[{"name": "x" * 2000}])
        assert r.status_code == 413
        assert r.json() == {"statusCode": 413, "message": "[HTTP] Request body is larger than 1000 bytes (413)"}
        r = kiln.api.get("/v1/vhosts", headers={"X-Big": "y" * 8000})
        assert r.status_code == 431
        assert r.json() == {"statusCode": 431, "message": "[HTTP] Request headers are larger than 4096 bytes (431)"}
        with socket.create_connection(("127.0.0.1", ports.api), timeout=15) as s:  # the same, in pieces
            s.sendall(b"GET /v1/vhosts HTTP/1.1\r\nHost: kiln\r\n")
            first = time.monotonic()
            try:
                for _ in range(10):
                    s.sendall(b"X-Piece: " + b"z" * 1000 + b"\r\n")
                    time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: what a bound should do
            try:
                answer = s.recv(65536)
            except ConnectionResetError:
                answer = b""
            # the header bound: the same 431 envelope and closed (or reset while we were still sending), well
            # before the 2 s request timeout would have closed it
            assert answer == b"" or (answer.startswith(b"HTTP/1.1 431") and answer.endswith(
                b'{"message":"[HTTP] Request headers are larger than 4096 bytes (431)","statusCode":431}')), answer
            assert time.monotonic() - first < 1.8
        auth = kiln.api.headers["Authorization"]
        with socket.create_connection(("127.0.0.1", ports.api), timeout=15) as s:
            s.sendall(f"POST /v1/vhosts HTTP/1.1\r\nHost: kiln\r\nAuthorization: {auth}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n[{".encode())
            started = time.monotonic()
            received = s.recv(65536)
            waited = time.monotonic() - started
            # headers and body may come in two segments: read on until the body is whole or Kiln closes
            while b'"statusCode":408}' not in received and (more := s.recv(65536)):
                received += more
            answer = received.decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert '{"message":"[HTTP] Request body was not received within 2 s (408)","statusCode":408}' in answer
        assert 1.5 < waited < 10
        assert kiln.api.get("/v1/vhosts").json()["response"] == ["default"]
    finally:
        kiln.close()


def test_a_websocket_on_a_guarded_port_outlives_the_header_deadline(tmp_path: Path) -> None:
    """The request-header deadline is for HTTP requests: a signalling WebSocket (upgraded on the LL-HLS
    port) that stays quiet for longer must still be open and answered."""
    import asyncio
    import json

    import websockets

    from tests.e2e.webrtc.play_kiln import RtcPorts, rtc_server_xml

    ports = RtcPorts()
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", rtc_server_xml(ports), ports).start()

    async def quiet_then_ask() -> dict[str, object]:
        async with websockets.connect(f"ws://127.0.0.1:{ports.llhls}/app/nobody", open_timeout=15) as ws:
            await asyncio.sleep(MEDIA_TIMEOUT + 2)
            await ws.send(json.dumps({"command": "request_offer"}))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 15)))

    try:
        answer = asyncio.run(quiet_then_ask())
        assert answer, answer  # an answer (an error for a stream that does not exist) on the same socket
    finally:
        kiln.close()
