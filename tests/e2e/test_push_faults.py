"""Push faults against a live source (issue 5 items 4 and 7): what `:pushes` shows, and no leak.

Each test starts its faulty tasks on a running stream, checks the `state` and the extra `lastError`
field a user sees in `POST …:pushes`, stops the tasks, and checks that the Kiln process is back to
the thread count it had before the tasks existed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_push import _process_figures, _states, push
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import free_tcp_port, free_udp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def source(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[Peer]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/src", test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: "src" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
    # handed over to the publishers too (the LL-HLS playlist is served, not 201 "coming"): the tests compare
    # Kiln's threads with what it has from here on, and the LL-HLS stream starts the process's disk thread
    playlist = f"http://127.0.0.1:{kiln.ports.llhls}/app/src/llhls.m3u8"
    kiln.wait_for(lambda: httpx.get(playlist, timeout=20).status_code == 200, what="the LL-HLS playlist")
    yield pub
    pub.stop()


class StalledServer:
    """A TCP server that accepts and never reads: the client's sends stop once the windows fill."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        for conn in self.accepted:
            conn.close()
        self._thread.join(5)


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()


def threads_of(kiln: KilnProcess) -> int:
    assert kiln.proc is not None
    return _process_figures(kiln.proc.pid)[0]


def start(kiln: KilnProcess, task_id: str, protocol: str, url: str, stream_key: str = "",
          **stream: Any) -> None:
    body = {"id": task_id, "stream": {"name": "src", **stream}, "protocol": protocol, "url": url,
            "streamKey": stream_key}
    r = kiln.api.post(f"{APP}:startPush", json=body)
    assert r.status_code == 200, r.text


def wait_error(kiln: KilnProcess, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The push object once it shows state error with a reason."""
    return kiln.wait_for(lambda: (p := push(kiln, task_id)).get("state") == "error" and p.get("lastError") and p,
                         timeout=timeout, what=f"{task_id} in error")


def stop_all_and_check_threads(kiln: KilnProcess, ids: list[str], threads_before: int) -> None:
    for task_id in ids:
        r = kiln.api.post(f"{APP}:stopPush", json={"id": task_id})
        assert r.status_code == 200, r.text
        assert push(kiln, task_id) == {}
    kiln.wait_for(lambda: threads_of(kiln) <= threads_before, timeout=20, what="threads back down")
    assert "Traceback" not in kiln.log_path.read_text(errors="replace"), kiln.log_tail()


def test_a_selection_that_matches_no_track_is_an_error_naming_the_selection(kiln: KilnProcess,
                                                                            source: Peer) -> None:
    threads0 = threads_of(kiln)
    start(kiln, "v1", "rtmp", "rtmp://127.0.0.1:1/live", "k", variantNames=["nope"])
    start(kiln, "t1", "mpegts", f"udp://127.0.0.1:{free_udp_port()}", trackIds=[999])
    by_variant, by_track = wait_error(kiln, "v1"), wait_error(kiln, "t1")
    assert "variantNames" in by_variant["lastError"] and "nope" in by_variant["lastError"], by_variant
    assert "trackIds" in by_track["lastError"] and "999" in by_track["lastError"], by_track
    # the reason also says what the stream does have, so the user can fix the request
    assert "bypass_video" in by_variant["lastError"], by_variant
    assert by_variant["sentBytes"] == 0 and by_track["sentBytes"] == 0
    stop_all_and_check_threads(kiln, ["v1", "t1"], threads0)


def test_unreachable_unresolvable_and_refusing_destinations(kiln: KilnProcess, source: Peer,
                                                            nginx_rtmp: NginxRtmp) -> None:
    threads0 = threads_of(kiln)
    start(kiln, "closed", "rtmp", f"rtmp://127.0.0.1:{free_tcp_port()}/live", "k")
    start(kiln, "dns", "rtmp", "rtmp://no-such-host.invalid/app", "k")
    start(kiln, "dns-ts", "mpegts", "udp://no-such-host.invalid:5000")
    start(kiln, "app", "rtmp", f"rtmp://127.0.0.1:{nginx_rtmp.port}/nosuchapp", "k")
    assert "refused" in wait_error(kiln, "closed")["lastError"]
    for task_id in ("dns", "dns-ts"):
        assert "no-such-host.invalid" in wait_error(kiln, task_id)["lastError"]
    refused = wait_error(kiln, "app")["lastError"]
    assert "nosuchapp" in refused, refused
    assert all(push(kiln, i)["sentBytes"] == 0 for i in ("closed", "dns", "dns-ts", "app"))
    stop_all_and_check_threads(kiln, ["closed", "dns", "dns-ts", "app"], threads0)


def test_destination_closing_mid_stream(kiln: KilnProcess, source: Peer, nginx_rtmp: NginxRtmp) -> None:
    threads0 = threads_of(kiln)
    start(kiln, "mid", "rtmp", f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "mid")
    kiln.wait_for(lambda: push(kiln, "mid").get("sentBytes", 0) > 50_000, timeout=30, what="bytes sent")
    nginx_rtmp.stop()
    failed = wait_error(kiln, "mid")
    assert failed["lastError"], failed
    stop_all_and_check_threads(kiln, ["mid"], threads0)


def test_udp_port_nobody_listens_on_makes_no_error_storm(kiln: KilnProcess, source: Peer) -> None:
    threads0 = threads_of(kiln)
    start(kiln, "udp", "mpegts", f"udp://127.0.0.1:{free_udp_port()}")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # watch the task over a window, as a dashboard would
        seen.append(push(kiln, "udp"))
        time.sleep(0.2)
    last = seen[-1]
    assert last["state"] in ("pushing", "error", "connecting"), last
    if last["state"] == "error":
        assert last["lastError"], last
    changes = _states(kiln, "udp")
    assert len(changes) <= 10, changes  # a few journaled transitions, not one per datagram or per second
    stop_all_and_check_threads(kiln, ["udp"], threads0)


def test_urls_with_odd_characters(kiln: KilnProcess, source: Peer, nginx_rtmp: NginxRtmp) -> None:
    threads0 = threads_of(kiln)
    base = f"rtmp://127.0.0.1:{nginx_rtmp.port}"
    for bad in (f"{base}/live/a b", "rtmp://bad host/live", "rtmp://127.0.0.1:99999/live"):
        r = kiln.api.post(f"{APP}:startPush", json={"id": "bad", "stream": {"name": "src"}, "protocol": "rtmp",
                                                    "url": bad})
        assert r.status_code == 400, (bad, r.text)
    odd = {"pct": (f"{base}/live", "%zz"), "uni": (f"{base}/live", "clé-ü"),
           "unihost": ("rtmp://hôte.invalid/live", "k"), "pcthost": ("rtmp://%zz/live", "k")}
    for task_id, (url, key) in odd.items():
        start(kiln, task_id, "rtmp", url, key)
    for task_id in ("unihost", "pcthost"):
        assert "cannot resolve" in wait_error(kiln, task_id)["lastError"]
    for task_id in ("pct", "uni"):  # a key nginx takes as it is, or a clear reason
        got = kiln.wait_for(lambda i=task_id: (p := push(kiln, i)).get("state") == "pushing"
                            or p.get("lastError") and p, timeout=20, what=f"{task_id} settles")
        assert got is True or got["lastError"], got
    stop_all_and_check_threads(kiln, list(odd), threads0)


def test_a_stalled_destination_errors_and_never_blocks_another_push(kiln: KilnProcess, source: Peer,
                                                                    nginx_rtmp: NginxRtmp,
                                                                    stalled: StalledServer) -> None:
    threads0 = threads_of(kiln)
    start(kiln, "ok", "rtmp", f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "ok")
    kiln.wait_for(lambda: push(kiln, "ok").get("state") == "pushing", what="ok pushing")
    start(kiln, "st-ts", "mpegts", f"tcp://127.0.0.1:{stalled.port}")
    start(kiln, "st-rtmp", "rtmp", f"rtmp://127.0.0.1:{stalled.port}/live", "s")
    sent = [push(kiln, "ok")["sentBytes"]]
    sent.append(kiln.wait_for(lambda: (b := push(kiln, "ok")["sentBytes"]) > sent[-1] and b, timeout=10,
                              what="ok sentBytes growing while the others stall"))
    ts_error = wait_error(kiln, "st-ts", timeout=60)
    assert "timed out" in ts_error["lastError"], ts_error
    rtmp_error = wait_error(kiln, "st-rtmp", timeout=30)
    assert "timed out" in rtmp_error["lastError"], rtmp_error
    # the healthy push kept going the whole time, and keeps going while the stalled ones retry
    for _ in range(3):
        sent.append(kiln.wait_for(lambda: (b := push(kiln, "ok")["sentBytes"]) > sent[-1] and b,
                                  timeout=10, what="ok sentBytes growing"))
    assert push(kiln, "ok")["state"] == "pushing"
    nginx_rtmp.wait_publishing("ok")
    stop_all_and_check_threads(kiln, ["st-ts", "st-rtmp", "ok"], threads0)
