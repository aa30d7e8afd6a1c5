"""RTSP pull (POST …/streams) against a real gst-rtsp-server camera."""

from __future__ import annotations

from collections.abc import Callable

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


def test_an_unwatched_pull_is_deleted_after_its_unused_timeout(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    r = kiln.api.post(f"{APP}/streams", json={"name": "idle", "urls": [rtsp_source.url],
                                              "properties": {"unusedStreamDeletionTimeoutMs": 1500}})
    assert r.status_code == 201
    r = kiln.api.post(f"{APP}/streams", json={"name": "kept", "urls": [rtsp_source.url],
                                              "properties": {"unusedStreamDeletionTimeoutMs": 1500,
                                                             "persistent": True}})
    assert r.status_code == 201
    kiln.wait_for(lambda: names(kiln) == ["kept"], timeout=15, what="the unwatched pull removed")
    assert "reason=unused stream" in kiln.log_path.read_text()


def test_ignoring_sender_reports_still_plays(kiln: KilnProcess, rtsp_source: RtspSource) -> None:
    from tests.peers.ffmpeg import ffprobe_json

    r = kiln.api.post(f"{APP}/streams", json={"name": "sr", "urls": [rtsp_source.url],
                                              "properties": {"ignoreRtcpSRTimestamp": True}})
    assert r.status_code == 201
    probe = ffprobe_json(f"http://127.0.0.1:{kiln.ports.llhls}/app/sr/llhls.m3u8", timeout=40)
    assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"video": "h264", "audio": "aac"}
