"""Kiln keeps everything created through the API across kill -9 (issue: control plane)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def snapshot_gets(k: KilnProcess) -> dict[str, bytes]:
    """Every GET a dashboard would make, as raw bytes."""
    paths = ["/v1/vhosts", "/v1/vhosts/default", "/v1/vhosts/svc", "/v1/vhosts/svc/apps",
             "/v1/vhosts/svc/apps/live", "/v1/vhosts/svc/apps/live/outputProfiles",
             "/v1/vhosts/svc/apps/live/outputProfiles/abr", "/v1/vhosts/svc/apps/edge",
             f"{APP}:pushes", f"{APP}:records", "/v1/vhosts/svc/apps/live:pushes",
             "/v1/vhosts/default/apps/app/streams"]
    out = {}
    for path in paths:
        r = k.api.get(path)
        assert r.status_code == 200, (path, r.text)
        out[path] = r.content
    return out


def test_everything_survives_kill9(kiln_factory: Callable[..., KilnProcess], rtsp_source: RtspSource) -> None:
    k = kiln_factory()
    api = k.api
    r = api.post(f"{APP}/streams", json={"name": "door", "urls": [rtsp_source.url], "properties": {"persistent": True}})
    assert r.status_code == 201, r.text
    assert api.post("/v1/vhosts", json=[{"name": "svc", "host": {"names": ["svc.example"]}}]).status_code == 200
    r = api.post("/v1/vhosts/svc/apps", json=[
        {"name": "live", "type": "live", "publishers": {"push": {}, "file": {}, "llhls": {}}},
        {"name": "edge", "type": "live"}])
    assert r.status_code == 200, r.text
    r = api.post("/v1/vhosts/svc/apps/live/outputProfiles", json=[
        {"name": "abr", "outputStreamName": "${OriginStreamName}_abr",
         "encodes": {"videos": [{"name": "v360", "codec": "h264", "bitrate": "800K", "width": 640,
                                 "height": 360}], "audios": [{"name": "a", "bypass": True}]}}])
    assert r.status_code == 200, r.text
    assert api.patch("/v1/vhosts/svc/apps/edge", json={"providers": {"rtmp": {}}}).status_code == 200
    for i in range(3):
        r = api.post(f"{APP}:startPush", json={"id": f"p{i}", "stream": {"name": "stream"}, "protocol": "rtmp",
                                              "url": "rtmp://127.0.0.1:1/app", "streamKey": f"k{i}"})
        assert r.status_code == 200, r.text
    api.post(f"{APP}:stopPush", json={"id": "p1"})
    r = api.post("/v1/vhosts/svc/apps/live:startPush", json={
        "id": "srt1", "stream": {"name": "s"}, "protocol": "srt", "url": "srt://127.0.0.1:9?streamid=x"})
    assert r.status_code == 200
    r = api.post(f"{APP}:startRecord", json={"id": "r1", "stream": {"name": "stream"}, "interval": 5000,
                                             "metadata": "keep me", "filePath": "/tmp/${Id}.mp4"})
    assert r.status_code == 200
    before = snapshot_gets(k)

    k.kill9()
    k.start()
    k.wait_for(lambda: "door" in k.api.get(f"{APP}/streams").json()["response"], timeout=30,
               what="the pull definition reconnected")
    after = snapshot_gets(k)
    assert after == before
    # the id removed by stopPush stays free, the others are still taken
    r = api.post(f"{APP}:startPush", json={"id": "p0", "stream": {"name": "stream"}, "protocol": "rtmp",
                                          "url": "rtmp://127.0.0.1:1/app"})
    assert r.status_code == 409
    # and the journal says what happened: the restart is recorded, with the live pull ended by it
    import io
    import json

    from kiln.journal.cli import run

    out = io.StringIO()
    run(["show", "-d", str(k.data_dir), "--json"], out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["type"] for r in records].count("ServerStarted") == 2
    ended = [r["payload"]["reason"] for r in records if r["type"] == "StreamEnded"]
    assert "server restart" in ended
