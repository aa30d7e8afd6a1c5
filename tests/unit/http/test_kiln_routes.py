"""Kiln's own read routes: GET /v1/journal (the console's timeline), GET /v1/status, and the console's
static files, which load without the token while the API behind them stays closed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kiln.config import load_server_xml_text
from kiln.http.console import STATIC
from kiln.service import KilnService
from tests.unit.http.conftest import SERVER_XML, Api


def test_journal_lists_what_the_api_did_and_polls_after_a_sequence_number(api: Api) -> None:
    start = api.get("/v1/journal").json()["response"]
    assert [r["type"] for r in start["records"]] == ["ServerStarted"] and start["more"] is False
    assert api.post("/v1/vhosts", [{"name": "tv"}]).status_code == 200
    page = api.get(f"/v1/journal?after={start['lastSeq']}").json()["response"]
    assert [(r["entity"], r["type"]) for r in page["records"]] == [("vhost:tv", "VhostCreated")]
    record = page["records"][0]
    assert set(record) == {"seq", "time", "entity", "type", "version", "payload"}
    assert record["seq"] == page["lastSeq"] == start["lastSeq"] + 1
    assert api.get(f"/v1/journal?after={page['lastSeq']}").json()["response"]["records"] == []
    by_entity = api.get("/v1/journal?entity=vhost:&type=VhostCreated&type=VhostDeleted&limit=1").json()
    assert [r["entity"] for r in by_entity["response"]["records"]] == ["vhost:tv"]
    assert api.get("/v1/journal?since=2999-01-01T00:00:00%2B00:00").json()["response"]["records"] == []


def test_journal_masks_a_push_stream_key(api: Api) -> None:
    api.post("/v1/vhosts/default/apps/app:startPush", {"id": "yt", "stream": {"name": "cam"}, "protocol": "rtmp",
                                                       "url": "rtmp://127.0.0.1:9/live", "streamKey": "sekret-key"})
    text = api.get("/v1/journal?entity=push:").text
    assert "PushCreated" in text and "sekret-key" not in text and "***" in text


def test_journal_refuses_filters_that_mean_nothing(api: Api) -> None:
    for query, message in [("limit=abc", "limit must be an integer: 'abc'"),
                           ("limit=0", "limit must be between 1 and 1000"),
                           ("after=x", "after must be an integer: 'x'"),
                           ("since=yesterday", "since must be an ISO time"),
                           ("type=StreamStartd", "Unknown event type: StreamStartd")]:
        r = api.get(f"/v1/journal?{query}")
        assert r.status_code == 400 and message in r.json()["message"], query


def test_kiln_routes_need_the_token(anon: TestClient) -> None:
    for path in ("/v1/journal", "/v1/status", "/v1/openapi.json"):
        r = anon.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")


def test_status_says_what_the_process_runs(api: Api) -> None:
    body = api.get("/v1/status").json()["response"]
    assert body["counts"] == {"vhosts": 1, "apps": 1, "streams": 0, "pushes": 0, "records": 0}
    assert body["journal"]["lastSeq"] >= 1 and body["journal"]["segments"] == 1 and body["journal"]["bytes"] > 0
    assert body["journal"]["failure"] is None  # a failed write that stopped the journal is named here
    assert isinstance(body["pid"], int) and body["version"]


def test_status_reads_the_journal_files_off_the_event_loop(api: Api, service: KilnService,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal's size is a directory listing and a stat per segment: on a slow disk (or a directory of
    100,000 entries, 0.1 s here) that held every other client while GET /v1/status ran on the loop."""
    assert service.running is not None
    running, original = service.running, service.running.status_json
    on_loop: list[bool] = []

    def spy() -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return original()

    monkeypatch.setattr(running, "status_json", spy)
    assert api.get("/v1/status").status_code == 200
    assert on_loop == [False]


def test_console_files_load_without_the_token_with_a_strict_policy(anon: TestClient) -> None:
    moved = anon.get("/console", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/console/"
    page = anon.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == (STATIC / "index.html").read_text()
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert anon.get("/console/nothing-here.js").status_code == 404
    assert anon.get("/console/../v1/vhosts").status_code in (401, 404)  # never the API without the token


def _status(service: KilnService) -> dict[str, Any]:
    with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
        body: dict[str, Any] = Api(client).get("/v1/status").json()["response"]["journal"]
    return body


def test_status_says_what_a_restart_would_replay(tmp_path: Path) -> None:
    """journal.sinceSnapshot: the records after the newest snapshot on disk and about how many bytes they take, from
    what the journal counted (no file read per request); a restart's estimate comes from the segments' sizes."""
    def start() -> KilnService:
        service = KilnService(load_server_xml_text(SERVER_XML, tmp_path), tmp_path, snapshot_every=10, fsync=False)
        service.open()
        return service

    service = start()
    try:
        journal = _status(service)
        assert journal["sinceSnapshot"] == {"snapshotSeq": 0, "events": journal["lastSeq"], "bytes": journal["bytes"]}
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            for n in range(12):  # a VhostCreated each
                assert Api(client).post("/v1/vhosts", [{"name": f"tv{n}"}]).status_code == 200
        deadline = time.monotonic() + 10  # the snapshot is saved on its own thread
        while (journal := _status(service))["sinceSnapshot"]["snapshotSeq"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        tail = journal["sinceSnapshot"]
        assert tail["snapshotSeq"] >= 10 and tail["events"] == journal["lastSeq"] - tail["snapshotSeq"] < 10
        assert 0 <= tail["bytes"] < journal["bytes"]
        before = tail
    finally:
        service.close()
    service = start()  # replays the tail after the snapshot, then journals ServerStarted
    try:
        journal = _status(service)
        tail = journal["sinceSnapshot"]
        assert tail["snapshotSeq"] == before["snapshotSeq"] or tail["events"] < 10  # ServerStarted may snapshot
        assert tail["events"] == journal["lastSeq"] - tail["snapshotSeq"]
        assert tail["bytes"] <= journal["bytes"] and (tail["bytes"] > 0) == (tail["events"] > 0)
    finally:
        service.close()
