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
