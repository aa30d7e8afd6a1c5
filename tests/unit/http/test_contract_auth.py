"""Contract: interceptors before any handler runs — auth, CORS, routing, body parsing, envelope (rest-spec §1, §15).

Complements test_auth_routing.py: every method is authenticated, auth beats body parsing, the
CrossDomains variants of §1.4, the 404 fallback for each method a route does not take, and the
exact jsoncpp-style parse error.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kiln.http.jsonbody import parse_body
from tests.unit.http.conftest import AUTH, SERVER_XML, Api, start_service

CHALLENGE = 'Basic realm="OvenMediaEngine"'
METHODS_HEADER = "OPTIONS, HEAD, GET, POST, PUT, PATCH, DELETE"
NO_HEADER = {"message": "[HTTP] Authorization header is required to call API (401)", "statusCode": 401}
NOT_FOUND = {"message": "[HTTP] Controller not found (404)", "statusCode": 404}


def client_for(tmp_path: Path, xml: str) -> Iterator[TestClient]:
    service = start_service(tmp_path / "data", xml)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield client
    finally:
        service.close()


def with_cross_domains(block: str) -> str:
    return SERVER_XML.replace("<CrossDomains><Url>*.kiln.test</Url></CrossDomains>", block)


@pytest.fixture
def no_cors(tmp_path: Path) -> Iterator[TestClient]:
    yield from client_for(tmp_path, with_cross_domains(""))


def basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


# -- §1.3 authentication --

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/vhosts"),
    ("POST", "/v1/vhosts"),
    ("PATCH", "/v1/vhosts/default/apps/app"),
    ("DELETE", "/v1/vhosts/default"),
    ("HEAD", "/v1/vhosts"),
    ("PUT", "/v1/vhosts"),
    ("GET", "/v1/version"),
    ("GET", "/v1/stats/current"),
    ("POST", "/v1/vhosts/default/apps/app:startPush"),
])
def test_every_method_but_options_needs_auth(anon: TestClient, method: str, path: str) -> None:
    r = anon.request(method, path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == CHALLENGE
    if method != "HEAD":
        assert r.json() == NO_HEADER


def test_auth_runs_before_body_parsing(anon: TestClient) -> None:
    r = anon.post("/v1/vhosts", content=b"{not json")
    assert r.status_code == 401
    assert r.json() == NO_HEADER


def test_wrong_token_on_a_write_is_invalid_credential(anon: TestClient) -> None:
    r = anon.post("/v1/vhosts", json=[{"name": "x"}], headers=basic("ome-access-token "))
    assert r.status_code == 401
    assert r.json() == {"message": "[HTTP] Invalid credential (401)", "statusCode": 401}
    assert r.headers["www-authenticate"] == CHALLENGE


def test_two_spaces_is_an_invalid_header(anon: TestClient) -> None:
    payload = base64.b64encode(b"ome-access-token").decode()
    r = anon.get("/v1/vhosts", headers={"Authorization": "Basic  " + payload})
    assert r.json() == {"message": "[HTTP] Invalid authorization header (401)", "statusCode": 401}


def test_scheme_is_reported_as_sent(anon: TestClient) -> None:
    r = anon.get("/v1/vhosts", headers={"Authorization": "Digest abc"})
    assert r.json() == {"message": "[HTTP] Not supported credential type: Digest (401)", "statusCode": 401}


def test_token_is_compared_as_a_whole_string(tmp_path: Path) -> None:
    xml = SERVER_XML.replace("<AccessToken>ome-access-token</AccessToken>", "<AccessToken>user:pa ss</AccessToken>")
    for client in client_for(tmp_path, xml):
        assert client.get("/v1/vhosts", headers=basic("user:pa ss")).status_code == 200
        r = client.get("/v1/vhosts", headers=basic("user"))
        assert r.json() == {"message": "[HTTP] Invalid credential (401)", "statusCode": 401}


# -- §1.4 CORS and preflight --

def test_options_anywhere_is_204_with_empty_body_and_no_auth(anon: TestClient) -> None:
    for path in ("/v1/vhosts", "/v1/vhosts/nope/apps/nope:startPush", "/not/a/route"):
        r = anon.options(path, headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 204, path
        assert r.content == b""


def test_without_cross_domains_only_allow_methods_is_sent(no_cors: TestClient) -> None:
    r = no_cors.get("/v1/vhosts", headers={**AUTH, "Origin": "https://anything.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == METHODS_HEADER
    for name in ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-headers"):
        assert name not in r.headers
    r = no_cors.options("/v1/vhosts", headers={"Origin": "https://anything.example"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-methods"] == METHODS_HEADER
    assert "access-control-allow-origin" not in r.headers


def test_star_entry_wins_over_other_entries(tmp_path: Path) -> None:
    xml = with_cross_domains("<CrossDomains><Url>https://a.example</Url><Url>*</Url></CrossDomains>")
    for client in client_for(tmp_path, xml):
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "https://other.example"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == METHODS_HEADER


def test_single_null_entry_answers_null(tmp_path: Path) -> None:
    for client in client_for(tmp_path, with_cross_domains("<CrossDomains><Url>null</Url></CrossDomains>")):
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "https://other.example"})
        assert r.headers["access-control-allow-origin"] == "null"


def test_null_with_other_entries_is_ignored(tmp_path: Path) -> None:
    xml = with_cross_domains("<CrossDomains><Url>null</Url><Url>https://a.example</Url></CrossDomains>")
    for client in client_for(tmp_path, xml):
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "https://a.example"})
        assert r.headers["access-control-allow-origin"] == "https://a.example"
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "null"})
        assert "access-control-allow-origin" not in r.headers


def test_pattern_without_scheme_allows_an_http_or_https_prefix(tmp_path: Path) -> None:
    xml = with_cross_domains("<CrossDomains><Url>a.example</Url></CrossDomains>")
    for client in client_for(tmp_path, xml):
        for origin in ("http://a.example", "https://a.example", "a.example"):
            r = client.get("/v1/vhosts", headers={**AUTH, "Origin": origin})
            assert r.headers["access-control-allow-origin"] == origin, origin
        for origin in ("ftp://a.example", "https://a.example.evil", "https://b.a.example"):
            r = client.get("/v1/vhosts", headers={**AUTH, "Origin": origin})
            assert "access-control-allow-origin" not in r.headers, origin


def test_wildcard_matches_any_characters(api: Api) -> None:
    for origin in ("https://x.kiln.test", "https://a.b.kiln.test", "x.kiln.test"):
        r = api.get("/v1/vhosts", headers={"Origin": origin})
        assert r.headers["access-control-allow-origin"] == origin, origin
    for origin in ("https://x.kiln.test.evil", "https://kiln.test"):
        r = api.get("/v1/vhosts", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers, origin


def test_pattern_with_scheme_must_match_the_scheme(tmp_path: Path) -> None:
    xml = with_cross_domains("<CrossDomains><Url>https://*.example.com</Url></CrossDomains>")
    for client in client_for(tmp_path, xml):
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "https://a.example.com"})
        assert r.headers["access-control-allow-origin"] == "https://a.example.com"
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "http://a.example.com"})
        assert "access-control-allow-origin" not in r.headers


def test_allow_headers_only_echoed_when_requested(api: Api) -> None:
    r = api.get("/v1/vhosts", headers={"Origin": "https://a.kiln.test"})
    assert "access-control-allow-headers" not in r.headers


def test_custom_headers_replace_and_add(tmp_path: Path) -> None:
    xml = with_cross_domains(
        "<CrossDomains><Url>*.kiln.test</Url>"
        "<Header><Key>Access-Control-Allow-Credentials</Key><Value>false</Value></Header>"
        "<Header><Key>X-Extra</Key><Value>yes</Value></Header></CrossDomains>")
    for client in client_for(tmp_path, xml):
        r = client.get("/v1/vhosts", headers={**AUTH, "Origin": "https://a.kiln.test"})
        assert r.headers["access-control-allow-origin"] == "https://a.kiln.test"
        assert r.headers["access-control-allow-credentials"] == "false"
        assert r.headers["x-extra"] == "yes"


def test_cors_headers_on_errors(api: Api) -> None:
    r = api.get("/v1/nothing", headers={"Origin": "https://a.kiln.test"})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == "https://a.kiln.test"
    r = api.get("/v1/vhosts/nope", headers={"Origin": "https://a.kiln.test"})
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    assert r.headers["access-control-allow-origin"] == "https://a.kiln.test"


def test_disallowed_origin_on_preflight_removes_cors_headers(anon: TestClient) -> None:
    r = anon.options("/v1/vhosts", headers={"Origin": "https://evil.example", "Access-Control-Request-Headers": "X"})
    assert r.status_code == 204
    for name in ("access-control-allow-origin", "access-control-allow-methods",
                 "access-control-allow-credentials", "access-control-allow-headers"):
        assert name not in r.headers


# -- §1.2 routing --

@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/version"),
    ("DELETE", "/v1/version"),
    ("PATCH", "/v1/vhosts/default"),
    ("POST", "/v1/vhosts/default"),
    ("PUT", "/v1/vhosts/default/apps/app"),
    ("POST", "/v1/vhosts/default/apps/app"),
    ("DELETE", "/v1/vhosts/default/apps"),
    ("PATCH", "/v1/vhosts/default/apps/app/streams/s"),
    ("GET", "/v1/vhosts/default/apps/app:startPush"),
    ("GET", "/v1/vhosts/default/apps/app:stopRecord"),
    ("DELETE", "/v1/vhosts/default/apps/app/outputProfiles"),
    ("POST", "/v1/stats/current"),
    ("GET", "/v1/managers/api:reloadCertificate"),
    ("GET", "/v1/vhosts:reloadAllCertificates"),
    ("GET", "/V1/vhosts"),
    ("GET", "/v1/VHOSTS"),
    ("GET", "/v1/vhosts/default/"),
    ("GET", "/v1/vhosts/default/apps/app:unknownAction"),
    ("GET", "/v1/stats/current/vhosts/default/apps"),
    ("GET", "/v2/vhosts"),
    ("GET", "/"),
])
def test_paths_and_methods_without_a_route(api: Api, method: str, path: str) -> None:
    r = api.request(method, path)
    assert r.status_code == 404
    assert r.json() == NOT_FOUND


def test_stream_segment_may_contain_a_colon(api: Api) -> None:
    """{stream} is [^/]*, so GET on an action path is a stream lookup, not "Controller not found"."""
    r = api.get("/v1/vhosts/default/apps/app/streams/s:sendEvent")
    assert r.json() == {"message": "[HTTP] Could not find the stream: [default/#default#app/s:sendEvent] (404)",
                        "statusCode": 404}


def test_query_string_is_ignored(api: Api) -> None:
    r = api.get("/v1/vhosts?name=other&x=1")
    assert r.json() == {"message": "OK", "response": ["default"], "statusCode": 200}
    r = api.get("/v1/vhosts/default?x=/apps")
    assert r.json() == {"message": "OK", "response": {"host": {"names": ["*"]}, "name": "default"},
                        "statusCode": 200}


def test_unknown_route_is_404_even_with_bad_json(api: Api) -> None:
    r = api.post("/v1/nothing", raw=b"{not json")
    assert r.json() == NOT_FOUND


def test_head_on_a_missing_resource_keeps_the_status(api: Api) -> None:
    r = api.request("HEAD", "/v1/vhosts/nope")
    assert r.status_code == 404
    assert r.content == b""


# -- §1.5 request bodies --

def test_parse_error_message_is_jsoncpp_style(api: Api) -> None:
    r = api.post("/v1/vhosts", raw=b"x")
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] [JSON] * Line 1, Column 1\n  Syntax error: value, object or array expected."
                                   "\n (400)", "statusCode": 400}


def test_parse_error_reports_the_line(api: Api) -> None:
    r = api.post("/v1/vhosts", raw=b"[\n  {\"name\": \"a\"},\n  ]x\n]\n{")
    assert r.status_code == 200  # trailing garbage after the first value is ignored
    r = api.post("/v1/vhosts", raw=b"[\n\n  nope]")
    assert r.status_code == 400
    assert r.json()["message"].startswith("[HTTP] [JSON] * Line 3, Column 3\n")


def test_a_number_of_more_digits_than_python_reads_is_a_400(api: Api) -> None:
    """json raises a bare ValueError (no JSONDecodeError) for an integer of more than 4,300 digits: it was a 500."""
    for line, raw in ((2, b'[\n  {"name": "a", "x": ' + b"1" * 5000 + b"}]"),
                      (3, b'// c\n[\n  {"name": "a", "x": ' + b"1" * 5000 + b"},]")):  # comments: the second parse
        r = api.post("/v1/vhosts", raw=raw)
        assert r.status_code == 400
        assert r.json()["message"] == (f"[HTTP] [JSON] * Line {line}, Column 22\n  '11111111111111111111...' "
                                       "(5000 digits) is not a number.\n (400)")
    assert api.get("/v1/vhosts").json()["response"] == ["default"]


def test_integers_are_read_as_jsoncpp_reads_them(api: Api) -> None:
    """Int64/UInt64 when they fit, else doubles (one no double holds is not a number). Python kept any size, and the
    journal (msgpack) stores 64 bits: an app with segmentCount 10**30 was applied, then its AppCreated refused
    (a 500, the name taken by an app no GET showed; before this branch's journal fix, the journal stopped)."""
    assert parse_body(b"[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 7]") \
        == [2**64 - 1, float(2**64), -(2**63), float(-(2**63) - 1), 7]
    assert api.post("/v1/vhosts", [{"name": "tv"}]).status_code == 200
    big = b"1" + b"0" * 30
    r = api.post("/v1/vhosts/tv/apps", raw=b'[{"name": "a1", "type": "live", "publishers": {"llhls": {"segmentCount": '
                 + big + b"}}}]")
    assert r.status_code == 200, r.text
    r = api.patch("/v1/vhosts/tv/apps/a1", raw=b'{"publishers": {"llhls": {"segmentCount": ' + big + b"}}}")
    assert r.status_code == 200, r.text
    assert api.get("/v1/vhosts/tv/apps").json()["response"] == ["a1"]
    r = api.post("/v1/vhosts/tv/apps", raw=b'[{"name": "a2", "x": 1' + b"0" * 400 + b"}]")
    assert r.json()["message"] == ("[HTTP] [JSON] * Line 1, Column 22\n  '10000000000000000000...' (401 digits) "
                                   "is not a number.\n (400)")


def test_nan_and_infinities_are_syntax_errors_as_in_jsoncpp(api: Api) -> None:
    """Python's json takes NaN, Infinity and 1e400 (inf); jsoncpp does not. Taken into an app's JSON, no answer could
    render it ('Out of range float values are not JSON compliant'): that PATCH and every later GET of the app were
    500s, after a restart too, since the journal kept the value."""
    assert api.post("/v1/vhosts", [{"name": "tv"}]).status_code == 200
    assert api.post("/v1/vhosts/tv/apps", [{"name": "app", "type": "live", "publishers": {"llhls": {}}}]).status_code \
        == 200
    for value, what in ((b"NaN", "Syntax error: value, object or array expected."),
                        (b"Infinity", "Syntax error: value, object or array expected."),
                        (b"-Infinity", "Syntax error: value, object or array expected."),
                        (b"1e400", "'1e400' is not a number.")):
        r = api.patch("/v1/vhosts/tv/apps/app", raw=b'{"publishers": {"llhls": {"chunkDuration": ' + value + b"}}}")
        assert r.status_code == 400 and r.json()["message"] == f"[HTTP] [JSON] * Line 1, Column 44\n  {what}\n (400)", \
            r.text
        r = api.post("/v1/vhosts/tv/apps/app/outputProfiles", raw=b'[{"name": "p", "outputStreamName": "x", '
                     b'"encodes": {"videos": [{"codec": "h264", "bitrate": 500000, "framerate": ' + value + b"}]}}]")
        assert r.status_code == 400, r.text
    assert api.get("/v1/vhosts/tv/apps/app").status_code == 200
    assert api.patch("/v1/vhosts/tv/apps/app", raw=b'{"publishers": {"llhls": {"chunkDuration": 1e308}}}').status_code \
        == 200  # finite: a double jsoncpp reads
    assert api.get("/v1/vhosts/tv/apps/app").status_code == 200


def test_a_lone_surrogate_escape_is_a_json_error_and_a_pair_is_one_character(api: Api) -> None:
    """``"\\ud800"`` is valid JSON for Python, not for jsoncpp (a high surrogate needs its low half) nor for UTF-8:
    taken, it reached the command's events, which the journal (msgpack) cannot store: the command answered 500 and
    its actor kept it (a 409 for the same id next), now a 500 that changes nothing; refused here, it is a 400."""
    push = b'{"id": "p1", "stream": {"name": "cam%s"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:9/live"}'
    for escape, column in ((b"\\ud800", 37), (b"\\udc00", 37), (b"\\ud800\\ud800\\udc00", 37),
                           (b"\\ud83d\\ude00\\ud800", 49)):
        r = api.post("/v1/vhosts/default/apps/app:startPush", raw=push % escape)
        assert r.status_code == 400 and r.json()["message"] == (
            f"[HTTP] [JSON] * Line 1, Column {column}\n  expecting another \\u token to begin the second half of a "
            "unicode surrogate pair\n (400)"), r.text
    assert api.post("/v1/vhosts/default/apps/app:pushes", {}).json()["response"] == []
    r = api.post("/v1/vhosts/default/apps/app:startPush", raw=push % b"\\ud83d\\ude00")  # a pair: one emoji
    assert r.status_code == 200, r.text
    assert [p["stream"]["name"] for p in api.post("/v1/vhosts/default/apps/app:pushes", {}).json()["response"]] \
        == ["cam\U0001f600"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/vhosts"),
    ("POST", "/v1/vhosts/nope/apps"),
    ("PATCH", "/v1/vhosts/nope/apps/nope"),
    ("POST", "/v1/vhosts/nope/apps/nope/outputProfiles"),
    ("PATCH", "/v1/vhosts/nope/apps/nope/outputProfiles/nope"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams"),
    ("POST", "/v1/vhosts/nope/apps/nope:startPush"),
    ("POST", "/v1/vhosts/nope/apps/nope:stopPush"),
    ("POST", "/v1/vhosts/nope/apps/nope:pushes"),
    ("POST", "/v1/vhosts/nope/apps/nope:startRecord"),
    ("POST", "/v1/vhosts/nope/apps/nope:stopRecord"),
    ("POST", "/v1/vhosts/nope/apps/nope:records"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:sendEvent"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:sendEvents"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:startHlsDump"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:stopHlsDump"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:hlsDumps"),
    ("POST", "/v1/vhosts/nope/apps/nope/streams/s:concludeHlsLive"),
    ("POST", "/v1/vhosts:reloadAllCertificates"),
    ("POST", "/v1/vhosts/nope:reloadCertificate"),
    ("POST", "/v1/managers/api:reloadCertificate"),
])
def test_every_body_route_parses_before_lookups(api: Api, method: str, path: str) -> None:
    r = api.request(method, path, raw=b"x")
    assert r.status_code == 400, path
    assert r.json() == {"message": "[HTTP] [JSON] * Line 1, Column 1\n  Syntax error: value, object or array expected."
                                   "\n (400)", "statusCode": 400}


def test_send_subtitles_parses_before_lookups(api: Api) -> None:
    r = api.post("/v1/vhosts/nope/apps/nope/streams/s:sendSubtitles", raw=b"x")
    assert r.status_code == 400


def test_later_duplicate_key_wins(api: Api) -> None:
    r = api.post("/v1/vhosts", raw=b'[{"name": "first", "name": "second"}]')
    assert r.json() == [{"message": "OK", "response": {"name": "second"}, "statusCode": 200}]


def test_get_routes_ignore_a_body(api: Api) -> None:
    r = api.request("GET", "/v1/vhosts", raw=b"{not json")
    assert r.json() == {"message": "OK", "response": ["default"], "statusCode": 200}


# -- §1.6 envelope --

def test_error_envelope_headers(api: Api) -> None:
    r = api.get("/v1/vhosts/nope")
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["server"] == "OvenMediaEngine"
    assert r.text == '{"message":"[HTTP] Could not find the virtual host: [nope] (404)","statusCode":404}'


def test_non_ascii_is_escaped(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "café", "host": {"names": ["日本.example"]}}])
    assert r.status_code == 200
    assert r.text == ('[{"message":"OK","response":{"host":{"names":["\\u65e5\\u672c.example"]},'
                      '"name":"caf\\u00e9"},"statusCode":200}]')
    assert r.json()[0]["response"]["name"] == "café"


def test_401_envelope_is_json(anon: TestClient) -> None:
    r = anon.get("/v1/vhosts")
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["server"] == "OvenMediaEngine"
