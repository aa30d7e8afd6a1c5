"""Interceptor order, Basic auth messages, routing, envelope (rest-spec §1, §15)."""

from __future__ import annotations

import base64

from starlette.testclient import TestClient

from tests.unit.http.conftest import Api

CHALLENGE = 'Basic realm="OvenMediaEngine"'


def test_missing_header_is_401_with_challenge(anon: TestClient) -> None:
    r = anon.get("/v1/vhosts")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == CHALLENGE
    assert r.text == '{"message":"[HTTP] Authorization header is required to call API (401)","statusCode":401}'


def test_every_401_message(anon: TestClient) -> None:
    cases = {
        "Basic": "[HTTP] Invalid authorization header (401)",
        "Basic a b": "[HTTP] Invalid authorization header (401)",
        "Bearer abc": "[HTTP] Not supported credential type: Bearer (401)",
        "Basic !!!notbase64": "[HTTP] Invalid credential format (401)",
        "Basic " + base64.b64encode(b"wrong").decode(): "[HTTP] Invalid credential (401)",
    }
    for header, message in cases.items():
        r = anon.get("/v1/vhosts", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json() == {"message": message, "statusCode": 401}
        assert r.headers["www-authenticate"] == CHALLENGE


def test_scheme_is_case_insensitive(anon: TestClient) -> None:
    r = anon.get("/v1/vhosts", headers={"Authorization": "bAsIc " + base64.b64encode(b"ome-access-token").decode()})
    assert r.status_code == 200


def test_options_needs_no_auth_and_answers_204(anon: TestClient) -> None:
    r = anon.options("/v1/vhosts/anything/at/all")
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["server"] == "OvenMediaEngine"


def test_auth_runs_before_routing(anon: TestClient) -> None:
    assert anon.get("/no/such/route").status_code == 401


def test_unknown_route_and_unknown_method_are_controller_not_found(api: Api) -> None:
    expected = {"message": "[HTTP] Controller not found (404)", "statusCode": 404}
    assert api.get("/v1/nothing").json() == expected
    r = api.request("PUT", "/v1/vhosts")
    assert r.status_code == 404 and r.json() == expected
    assert api.delete("/v1/vhosts").json() == expected
    assert api.get("/v1/stats/current/vhosts").json() == expected


def test_envelope_is_compact_sorted_and_typed(api: Api) -> None:
    r = api.get("/v1/vhosts")
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["server"] == "OvenMediaEngine"
    assert r.text == '{"message":"OK","response":["default"],"statusCode":200}'


def test_head_answers_like_get_without_body(api: Api) -> None:
    r = api.request("HEAD", "/v1/vhosts")
    assert r.status_code == 200
    assert r.content == b""


def test_empty_segment_is_a_name_that_does_not_exist(api: Api) -> None:
    r = api.get("/v1/vhosts/")
    assert r.status_code == 404
    assert r.json()["message"] == "[HTTP] Could not find the virtual host: [] (404)"


def test_names_are_percent_decoded_once_then_compared_exactly(api: Api) -> None:
    assert api.get("/v1/vhosts/def%61ult").json()["response"]["name"] == "default"
    r = api.get("/v1/vhosts/Default")
    assert r.json()["message"] == "[HTTP] Could not find the virtual host: [Default] (404)"


def test_version_reports_kiln(api: Api) -> None:
    body = api.get("/v1/version").json()
    assert body["statusCode"] == 200
    assert body["response"]["version"]
    assert body["response"]["gitVersion"].startswith("kiln-")


def test_cors_pattern_echoes_matching_origin(api: Api) -> None:
    r = api.get("/v1/vhosts", headers={"Origin": "https://a.kiln.test", "Access-Control-Request-Headers": "X-A"})
    assert r.headers["access-control-allow-origin"] == "https://a.kiln.test"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-methods"] == "OPTIONS, HEAD, GET, POST, PUT, PATCH, DELETE"
    assert r.headers["access-control-allow-headers"] == "X-A"


def test_cors_headers_removed_for_other_origins(api: Api) -> None:
    r = api.get("/v1/vhosts", headers={"Origin": "https://evil.example"})
    for name in ("access-control-allow-origin", "access-control-allow-methods",
                 "access-control-allow-credentials"):
        assert name not in r.headers


def test_cors_on_preflight_and_on_401(anon: TestClient) -> None:
    r = anon.options("/v1/vhosts", headers={"Origin": "http://x.kiln.test"})
    assert r.headers["access-control-allow-origin"] == "http://x.kiln.test"
    r = anon.get("/v1/vhosts", headers={"Origin": "http://x.kiln.test"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "http://x.kiln.test"


def test_invalid_json_is_400_before_lookups(api: Api) -> None:
    r = api.post("/v1/vhosts/nope/apps", raw=b"{not json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("[HTTP] [JSON] * Line 1, Column 2")


def test_json_is_parsed_leniently_like_jsoncpp(api: Api) -> None:
    raw = b'\xef\xbb\xbf[ // a comment\n {"name": "lenient", /* c */ "host": {"names": ["*"],},}, ] trailing'
    r = api.post("/v1/vhosts", raw=raw)
    assert r.status_code == 200, r.text
    assert r.json()[0]["response"]["name"] == "lenient"


def test_huge_body_is_refused_with_an_envelope(api: Api) -> None:
    r = api.post("/v1/vhosts", raw=b"[" + b" " * (2 << 20) + b"]")
    assert r.status_code == 413
    assert r.json()["statusCode"] == 413


def test_quirk_routes(api: Api) -> None:
    r = api.post("/v1/vhosts:reloadCertificate")
    assert r.status_code == 500
    assert r.json()["message"] == "[HTTP] Could not find the virtual host regex group (500)"
    assert api.get("/v1/vhosts:").status_code == 500
