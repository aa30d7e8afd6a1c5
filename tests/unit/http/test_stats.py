"""Statistics endpoints: shape, timestamps and lookups (rest-spec §13)."""

from __future__ import annotations

import threading

import pytest
from freezegun import freeze_time

from kiln.actors.app import AppActor
from kiln.service import KilnService
from kiln.timefmt import now
from tests.unit.http.conftest import Api

FIELDS = {"avgThroughputIn", "avgThroughputOut", "connections", "createdTime", "lastRecvTime", "lastSentTime",
          "lastThroughputIn", "lastThroughputOut", "lastUpdatedTime", "maxThroughputIn", "maxThroughputOut",
          "maxTotalConnectionTime", "maxTotalConnections", "totalBytesIn", "totalBytesOut", "totalConnections"}
CONNECTIONS = {"file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc",  # OME 0.20
               "dash", "hls", "lldash", "mpegtspush", "rtmppush"}  # older OME (issue 19 item 5)


def test_server_vhost_app_metrics_have_every_field(api: Api) -> None:
    for path in ("/v1/stats/current", "/v1/stats/current/vhosts/default",
                 "/v1/stats/current/vhosts/default/apps/app"):
        body = api.get(path).json()["response"]
        assert set(body) == FIELDS, path
        assert set(body["connections"]) == CONNECTIONS
        assert body["totalBytesIn"] == 0 and body["totalConnections"] == 0
        assert body["lastRecvTime"] == body["createdTime"]


def test_stats_lookups(api: Api) -> None:
    assert api.get("/v1/stats/current/vhosts/nope").json()["message"] == (
        "[HTTP] Could not find the virtual host: [nope] (404)")
    assert api.get("/v1/stats/current/vhosts/default/apps/nope").json()["message"] == (
        "[HTTP] Could not find the application: [default/nope] (404)")
    r = api.get("/v1/stats/current/vhosts/default/apps/app/streams/s")
    assert r.json()["message"] == "[HTTP] Could not find the stream: [default/#default#app/s] (404)"
    assert api.get("/v1/stats/current/internals").json()["response"] == ["/v1/stats/current/internals/queues"]


def test_created_vhost_has_its_own_created_time(api: Api) -> None:
    with freeze_time("2030-01-02 03:04:05.678"):
        api.post("/v1/vhosts", [{"name": "vh"}])
    body = api.get("/v1/stats/current/vhosts/vh").json()["response"]
    server = api.get("/v1/stats/current").json()["response"]
    assert body["createdTime"].startswith("2030-01-02T")
    assert body["createdTime"] != server["createdTime"]


def test_stats_compose_a_streams_bytes_and_restart_the_app_when_it_is_reconfigured(
        api: Api, service: KilnService) -> None:
    with freeze_time("2030-01-02 03:04:05") as clock:
        api.post("/v1/vhosts", [{"name": "vh", "host": {"names": ["*"]}}])
        api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
        service.stats.stream_created("vh", "live", "cam", now())  # what the stream supervisor does on publish
        meter = service.stats.ingest_meter("vh", "live", "cam")  # what the live stream counts its input in
        clock.tick(1.5)
        meter.add_in(4000, now())
        service.stats.bytes_out("vh", "live", "cam", 700)
        base = "/v1/stats/current/vhosts/vh/apps/live"
        for path in (f"{base}/streams/cam", base, "/v1/stats/current/vhosts/vh"):
            body = api.get(path).json()["response"]
            assert (body["totalBytesIn"], body["totalBytesOut"], body["lastThroughputIn"]) == (4000, 700, 4000), path
        clock.tick(2)
        assert api.patch("/v1/vhosts/vh/apps/live", {"providers": {"rtmp": {}}}).status_code == 200
        app = api.get(base).json()["response"]
        assert app["createdTime"].startswith("2030-01-02T") and app["createdTime"] == app["lastRecvTime"]
        assert (app["totalBytesIn"], app["totalBytesOut"], app["maxThroughputIn"]) == (0, 0, 0)
        assert api.get(f"{base}/streams/cam").json()["response"]["totalBytesIn"] == 4000
        assert api.get("/v1/stats/current/vhosts/vh").json()["response"]["totalBytesIn"] == 4000


def test_an_apps_counters_exist_when_its_creation_is_answered(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app actor's thread may start late on a busy machine; the app's own figures must be there once
    its creation is answered (they were made in that thread: meanwhile the stats API showed the vhost's,
    and a stream's first bytes missed the app's totals)."""
    started = threading.Event()
    held = threading.Event()
    original = AppActor.on_start

    def late_start(self: AppActor) -> None:
        started.set()
        held.wait(10)
        original(self)

    monkeypatch.setattr(AppActor, "on_start", late_start)
    try:
        with freeze_time("2030-01-02 03:04:05") as clock:
            api.post("/v1/vhosts", [{"name": "vh"}])
            clock.tick(60)
            assert api.post("/v1/vhosts/vh/apps", [{"name": "fresh", "type": "live"}]).status_code == 200
            assert started.wait(10)
            body = api.get("/v1/stats/current/vhosts/vh/apps/fresh").json()["response"]
        assert body["createdTime"].startswith("2030-01-02T03:05:05"), body["createdTime"]
    finally:
        held.set()
