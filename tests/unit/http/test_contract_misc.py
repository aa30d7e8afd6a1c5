"""Contract: version, statistics and the API server's certificate (rest-spec §3, §5, §13, §14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from starlette.testclient import TestClient

from kiln import OME_API_COMPATIBILITY, __version__
from tests.unit.http.conftest import SERVER_XML, Api, start_service

OK = {"message": "OK", "statusCode": 200}


def fresh_metrics(at: str) -> dict[str, Any]:
    return {"avgThroughputIn": 0, "avgThroughputOut": 0,
            "connections": {"dash": 0, "file": 0, "hls": 0, "hlsv3": 0, "lldash": 0, "llhls": 0, "mpegtspush": 0,
                            "ovt": 0, "push": 0, "rtmppush": 0, "srt": 0, "thumbnail": 0, "webrtc": 0},
            "createdTime": at, "lastRecvTime": at, "lastSentTime": at, "lastThroughputIn": 0, "lastThroughputOut": 0,
            "lastUpdatedTime": at, "maxThroughputIn": 0, "maxThroughputOut": 0, "maxTotalConnectionTime": at,
            "maxTotalConnections": 0, "totalBytesIn": 0, "totalBytesOut": 0, "totalConnections": 0}


def test_version_reports_kiln_and_the_ome_api_it_follows(api: Api) -> None:
    """Issue 2: "GET /v1/version reports Kiln's version" — Kiln's choice over OME's 0.20.0."""
    r = api.get("/v1/version")
    assert r.status_code == 200
    assert r.json() == {**OK, "response": {"gitVersion": f"kiln-{__version__}", "version": __version__,
                                           "omeCompatibility": OME_API_COMPATIBILITY}}
    assert OME_API_COMPATIBILITY == "0.20.0"


# -- §13 statistics --

@freeze_time("2030-01-02 03:04:05.678")
def test_new_vhost_and_app_metrics_start_at_creation(api: Api, seoul_tz: None) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    at = "2030-01-02T12:04:05.678+09:00"
    assert api.get("/v1/stats/current/vhosts/vh").json() == {**OK, "response": fresh_metrics(at)}
    assert api.get("/v1/stats/current/vhosts/vh/apps/live").json() == {**OK, "response": fresh_metrics(at)}


def test_server_metrics_are_fresh_at_start(tmp_path: Path, seoul_tz: None) -> None:
    with freeze_time("2030-05-06 07:08:09.010"):
        service = start_service(tmp_path / "data")
        try:
            with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
                api = Api(client)
                at = "2030-05-06T16:08:09.010+09:00"
                assert api.get("/v1/stats/current").json() == {**OK, "response": fresh_metrics(at)}
                assert api.get("/v1/stats/current/vhosts/default/apps/app").json() == {
                    **OK, "response": fresh_metrics(at)}
        finally:
            service.close()


def test_app_metrics_restart_when_the_app_is_reconfigured(api: Api, seoul_tz: None) -> None:
    with freeze_time("2030-01-02 03:04:05.678"):
        api.post("/v1/vhosts", [{"name": "vh"}])
        api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    with freeze_time("2030-01-02 03:10:00.000"):
        assert api.patch("/v1/vhosts/vh/apps/live", {"type": "live"}).status_code == 200
    app = api.get("/v1/stats/current/vhosts/vh/apps/live").json()["response"]
    assert app == fresh_metrics("2030-01-02T12:10:00.000+09:00")
    vhost = api.get("/v1/stats/current/vhosts/vh").json()["response"]
    assert vhost["createdTime"] == "2030-01-02T12:04:05.678+09:00"


def test_stats_lookups(api: Api) -> None:
    cases = {
        "/v1/stats/current/vhosts/nope": "[HTTP] Could not find the virtual host: [nope] (404)",
        "/v1/stats/current/vhosts/nope/apps/app": "[HTTP] Could not find the virtual host: [nope] (404)",
        "/v1/stats/current/vhosts/default/apps/nope": "[HTTP] Could not find the application: [default/nope] (404)",
        "/v1/stats/current/vhosts/nope/apps/app/streams/s": "[HTTP] Could not find the virtual host: [nope] (404)",
        "/v1/stats/current/vhosts/default/apps/nope/streams/s":
            "[HTTP] Could not find the application: [default/nope] (404)",
        "/v1/stats/current/vhosts/default/apps/app/streams/s":
            "[HTTP] Could not find the stream: [default/#default#app/s] (404)",
    }
    for path, message in cases.items():
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.json() == {"message": message, "statusCode": 404}


@pytest.mark.parametrize("path", ["/v1/stats/current/vhosts", "/v1/stats/current/vhosts/default/apps",
                                  "/v1/stats/current/vhosts/default/apps/app/streams",
                                  "/v1/stats/current/vhosts/default/apps/app/streams/s/outputs"])
def test_there_are_no_stats_list_endpoints(api: Api, path: str) -> None:
    assert api.get(path).json() == {"message": "[HTTP] Controller not found (404)", "statusCode": 404}


def test_internals(api: Api) -> None:
    assert api.get("/v1/stats/current/internals").json() == {
        **OK, "response": ["/v1/stats/current/internals/queues"]}
    r = api.get("/v1/stats/current/internals/queues")
    assert r.status_code == 200
    assert isinstance(r.json()["response"], list)


# -- §5 the API server's own certificate --

def test_api_certificate_reload_without_tls(api: Api) -> None:
    r = api.post("/v1/managers/api:reloadCertificate")
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] TLS is not enabled for the API Server (400)", "statusCode": 400}
    assert api.post("/v1/managers/api:reloadCertificate", {}).json() == r.json()


TLS_XML = SERVER_XML.replace(
    "<Managers><API><Port>0</Port></API></Managers>",
    "<Managers><API><Port>0</Port><TLSPort>0</TLSPort></API></Managers>",
).replace(
    "<Managers>\n    <API>",
    "<Managers>\n    <Host><Names><Name>*</Name></Names><TLS><CertPath>/nonexistent/api.crt</CertPath>"
    "<KeyPath>/nonexistent/api.key</KeyPath></TLS></Host>\n    <API>",
)


@pytest.fixture
def tls_api(tmp_path: Path) -> Iterator[Api]:
    service = start_service(tmp_path / "data", TLS_XML)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield Api(client)
    finally:
        service.close()


def test_api_certificate_reload_with_an_unreadable_certificate(tls_api: Api) -> None:
    r = tls_api.post("/v1/managers/api:reloadCertificate")
    assert r.status_code == 500
    assert r.json() == {"message": "[HTTP] Failed to create a certificate for the API Server (500)",
                        "statusCode": 500}
