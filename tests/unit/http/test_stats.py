"""Statistics endpoints: shape, timestamps and lookups (rest-spec §13)."""

from __future__ import annotations

from freezegun import freeze_time

from tests.unit.http.conftest import Api

FIELDS = {"avgThroughputIn", "avgThroughputOut", "connections", "createdTime", "lastRecvTime", "lastSentTime",
          "lastThroughputIn", "lastThroughputOut", "lastUpdatedTime", "maxThroughputIn", "maxThroughputOut",
          "maxTotalConnectionTime", "maxTotalConnections", "totalBytesIn", "totalBytesOut", "totalConnections"}
CONNECTIONS = {"file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc"}


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
