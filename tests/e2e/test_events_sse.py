"""``GET /v1/events`` on a running Kiln: a client reads, drops, resumes with ``Last-Event-ID`` and has every
journal record exactly once, in the journal's own JSON (``kiln journal show --json``)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.sse import SseEvent, read_events

pytestmark = pytest.mark.e2e


def created(name: str) -> object:
    def seen(events: list[SseEvent]) -> bool:
        return any(e.event == "VhostCreated" and e.data["payload"].get("name") == name for e in events)
    return seen


def journal_json(k: KilnProcess) -> dict[int, dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {r["seq"]: r for r in map(json.loads, out.splitlines())}


def test_sse_resumes_with_last_event_id_without_loss_or_repeat(kiln: KilnProcess) -> None:
    api = kiln.api
    assert api.post("/v1/vhosts", json=[{"name": "sse1", "host": {"names": ["sse1.test"]}}]).status_code == 200
    first, comments = read_events(api, "/v1/events?from=1", created("sse1"))
    assert comments and comments[0] == "kiln journal from seq 1"
    # while the client is away, more happens
    assert api.post("/v1/vhosts", json=[{"name": "sse2", "host": {"names": ["sse2.test"]}},
                                        {"name": "sse3", "host": {"names": ["sse3.test"]}}]).status_code == 200
    assert api.post("/v1/vhosts/sse3/apps", json=[{"name": "live", "type": "live"}]).status_code == 200
    api.post("/v1/vhosts/default/apps/app:startPush",
             json={"id": "yt", "stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/live",
                   "streamKey": "sekret-key"})
    # the browser reconnects to the same URL with the last id it saw
    second, _ = read_events(api, "/v1/events?from=1", lambda ev: any(e.event == "PushCreated" for e in ev),
                            last_event_id=first[-1].id)
    seqs = [e.id for e in first + second]
    assert seqs == list(range(1, seqs[-1] + 1)), seqs
    journal = journal_json(kiln)
    for e in first + second:
        assert e.data == journal[e.id] and e.event == journal[e.id]["type"]
    push = next(e for e in second if e.event == "PushCreated")
    assert "sekret-key" not in json.dumps(push.data) and push.data["payload"]["stream_key"] == "***"


def test_sse_live_tail_and_filters(kiln: KilnProcess) -> None:
    api = kiln.api
    other = httpx.Client(base_url=str(api.base_url), headers=dict(api.headers), timeout=30)

    def meanwhile() -> None:  # once the stream is open: it starts after the newest record
        assert other.post("/v1/vhosts", json=[{"name": "live1", "host": {"names": ["live1.test"]}}]).status_code == 200
        assert other.post("/v1/vhosts/live1/apps", json=[{"name": "a", "type": "live"}]).status_code == 200

    events, _ = read_events(api, "/v1/events?entity=app:live1&type=AppCreated", lambda ev: len(ev) >= 1,
                            on_open=meanwhile)
    other.close()
    assert [(e.event, e.data["entity"]) for e in events] == [("AppCreated", "app:live1/a")]
    assert events[0].id > 1


def test_a_dropped_client_leaves_no_tail_and_an_open_stream_does_not_hold_shutdown(kiln: KilnProcess) -> None:
    def open_tails() -> float:
        for line in kiln.api.get("/metrics").text.splitlines():
            if line.startswith("kiln_feed_tails "):
                return float(line.split()[1])
        raise AssertionError("kiln_feed_tails missing")

    read_events(kiln.api, "/v1/events?from=1", lambda ev: len(ev) >= 1)
    kiln.wait_for(lambda: open_tails() == 0, 20, "the dropped client's tail closed")
    import threading
    import time

    ended: list[float] = []

    def hold_open() -> None:
        with httpx.Client(base_url=str(kiln.api.base_url), headers=dict(kiln.api.headers)) as client, \
                client.stream("GET", "/v1/events", timeout=httpx.Timeout(60)) as answer:
            for _ in answer.iter_lines():
                pass
        ended.append(time.monotonic())

    reader = threading.Thread(target=hold_open, daemon=True)
    reader.start()
    kiln.wait_for(lambda: open_tails() == 1, 20, "the stream open")
    asked = time.monotonic()
    assert kiln.stop() == 0
    reader.join(30)
    assert ended and ended[0] - asked < 15, "the event stream held Kiln's shutdown"
