"""RTSP pull (POST …/streams) against a real gst-rtsp-server camera."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def names(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def test_pull_shows_the_camera_and_delete_removes_it(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    r = kiln.api.post(f"{APP}/streams", json={"name": "cam", "urls": [rtsp_source.url]})
    assert r.json() == {"message": "Created", "statusCode": 201}
    assert "cam" in names(kiln)
    info = kiln.wait_for(lambda: (i := kiln.api.get(f"{APP}/streams/cam").json()["response"])
                         and len(i["input"]["tracks"]) == 3 and i, what="tracks described")
    assert info["input"]["sourceType"] == "RtspPull" and info["input"]["sourceUrl"] == rtsp_source.url
    kinds = {t["type"]: t for t in info["input"]["tracks"]}
    assert kinds["Video"]["video"]["codec"] == "H264" and kinds["Video"]["video"]["width"] == 320
    assert kinds["Audio"]["audio"]["codec"] == "AAC" and kinds["Audio"]["audio"]["samplerate"] == 48000
    r = kiln.api.post(f"{APP}/streams", json={"name": "cam", "urls": [rtsp_source.url]})
    assert r.json() == {"message": "[HTTP] Stream already exists (409)", "statusCode": 409}
    assert kiln.api.delete(f"{APP}/streams/cam").json() == {"message": "OK", "statusCode": 200}
    assert "cam" not in names(kiln)


def test_pull_that_cannot_connect_is_a_502_naming_the_request(kiln: KilnProcess) -> None:
    url = f"http://127.0.0.1:{kiln.ports.api}{APP}/streams"
    r = kiln.api.post(f"{APP}/streams", json={"name": "dead", "urls": ["rtsp://127.0.0.1:1/none"]})
    assert r.json() == {"message": f"[HTTP] Could not pull the stream : {url} (502)", "statusCode": 502}
    r = kiln.api.post(f"{APP}/streams", json={"name": "weird", "urls": ["gopher://127.0.0.1/x"]})
    assert r.status_code == 502
    r = kiln.api.post(f"{APP}/streams", json={"name": "x", "urls": []})
    assert r.json()["message"] == "[HTTP] Urls must be at least one (400)"
    assert names(kiln) == []


def pull_failures(k: KilnProcess) -> dict[str, str]:
    """What `kiln journal show --type PullFailed` tells a user: stream name -> reason."""
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", "PullFailed", "--json"], capture_output=True, text=True, timeout=30, check=True)
    records = [json.loads(line) for line in out.stdout.splitlines()]
    return {r["payload"]["name"]: r["payload"]["reason"] for r in records}


@contextmanager
def camera_asking_for_a_password() -> Iterator[int]:
    """An RTSP server that answers every request 401 with a Basic challenge, as a locked camera does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                cseq = re.search(rb"(?im)^cseq:\s*(\d+)", data)
                conn.sendall(b"RTSP/1.0 401 Unauthorized\r\nCSeq: " + (cseq.group(1) if cseq else b"1") +
                             b'\r\nWWW-Authenticate: Basic realm="camera"\r\nContent-Length: 0\r\n\r\n')

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()


def test_a_failed_pull_keeps_omes_502_and_journals_and_logs_the_cameras_answer(kiln: KilnProcess) -> None:
    api_url = f"http://127.0.0.1:{kiln.ports.api}{APP}/streams"
    ome_502 = {"message": f"[HTTP] Could not pull the stream : {api_url} (502)", "statusCode": 502}
    with camera_asking_for_a_password() as port:
        sources = {"closed": "rtsp://127.0.0.1:1/none", "locked": f"rtsp://admin:hunter2@127.0.0.1:{port}/live",
                   "two": f"rtsp://127.0.0.1:1/a rtsp://127.0.0.1:{port}/b"}
        for name, urls in sources.items():
            assert kiln.api.post(f"{APP}/streams", json={"name": name, "urls": urls.split()}).json() == ome_502
    unauthorized = "Server returned 401 Unauthorized (authorization failed)"
    expected = {"closed": "could not connect to any url (Connection refused)",
                "locked": f"could not connect to any url ({unauthorized})",
                "two": f"could not connect to any url (url 1: Connection refused; url 2: {unauthorized})"}
    assert kiln.wait_for(lambda: len(f := pull_failures(kiln)) == 3 and f,
                         what="three PullFailed records") == expected
    log = kiln.wait_for_log(*(f"pull finished where=default/app stream={name} reason={reason}"
                              for name, reason in expected.items()))
    for name, reason in expected.items():
        assert re.search(rf" WARNING \S+ pull finished where=default/app stream={name} reason={re.escape(reason)}$",
                         log, re.M), name
    assert "hunter2" not in json.dumps(pull_failures(kiln))
    assert names(kiln) == []


def test_a_persistent_pull_comes_back_after_kill9(kiln_factory: Callable[..., KilnProcess],
                                                 rtsp_source: RtspSource) -> None:
    k = kiln_factory()
    r = k.api.post(f"{APP}/streams", json={"name": "cam", "urls": [rtsp_source.url],
                                           "properties": {"persistent": True}})
    assert r.status_code == 201
    k.kill9()
    k.start()
    k.wait_for(lambda: "cam" in names(k), timeout=30, what="pull reconnected after restart")
    info = k.api.get(f"{APP}/streams/cam").json()["response"]
    assert info["input"]["sourceType"] == "RtspPull"


def test_failover_from_a_dead_url_to_a_live_one(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    r = kiln.api.post(f"{APP}/streams", json={"name": "fo", "urls": ["rtsp://127.0.0.1:1/dead", rtsp_source.url]})
    assert r.status_code == 201
    assert kiln.api.get(f"{APP}/streams/fo").json()["response"]["input"]["sourceUrl"] == rtsp_source.url


def test_a_source_that_hangs_is_a_502_and_the_api_stays_responsive(kiln: KilnProcess) -> None:
    import socket
    import threading
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    result: dict[str, object] = {}

    def pull() -> None:
        started = time.monotonic()
        result["r"] = kiln.api.post(f"{APP}/streams", json={"name": "hang", "urls": [f"rtsp://127.0.0.1:{port}/x"]})
        result["seconds"] = time.monotonic() - started

    t = threading.Thread(target=pull)
    t.start()
    try:
        while t.is_alive() and "r" not in result:
            assert kiln.api.get("/v1/vhosts").status_code == 200  # the API answers meanwhile
            t.join(0.2)
        t.join(30)
    finally:
        silent.close()
    assert result["r"].status_code == 502 and result["seconds"] < 20, result
    assert pull_failures(kiln) == {"hang": "could not connect to any url (no answer within 5s)"}


def test_an_unwatched_pull_is_deleted_after_its_unused_timeout(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    r = kiln.api.post(f"{APP}/streams", json={"name": "idle", "urls": [rtsp_source.url],
                                              "properties": {"unusedStreamDeletionTimeoutMs": 1500}})
    assert r.status_code == 201
    r = kiln.api.post(f"{APP}/streams", json={"name": "kept", "urls": [rtsp_source.url],
                                              "properties": {"unusedStreamDeletionTimeoutMs": 1500,
                                                             "persistent": True}})
    assert r.status_code == 201
    kiln.wait_for(lambda: names(kiln) == ["kept"], timeout=15, what="the unwatched pull removed")
    kiln.wait_for_log("reason=unused stream")  # the worker logs as it ends, after the stream is gone


def test_ignoring_sender_reports_still_plays(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    from tests.peers.ffmpeg import ffprobe_json

    r = kiln.api.post(f"{APP}/streams", json={"name": "sr", "urls": [rtsp_source.url],
                                              "properties": {"ignoreRtcpSRTimestamp": True}})
    assert r.status_code == 201
    probe = ffprobe_json(f"http://127.0.0.1:{kiln.ports.llhls}/app/sr/llhls.m3u8", timeout=40)
    assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"video": "h264", "audio": "aac"}
