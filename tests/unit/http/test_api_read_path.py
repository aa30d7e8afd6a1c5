"""The API's read path kept short (bench/api.py): the answers stay those of the plain path, byte for byte."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response
from starlette.testclient import TestClient

from kiln.errors import ApiError
from kiln.http.api_protocol import headers_too_large
from kiln.http.apps import with_reserved_mpegts_streams
from kiln.http.auth import TokenCheck, check_authorization
from kiln.http.envelope import BASE_HEADERS, JSON_TYPE, dumps, error, json_answer, ok, ok_encoded
from kiln.http.jsonbody import _DECODER, BodyError, _message, _strip_comments_and_trailing_commas, parse_body
from kiln.http.push import push_json
from kiln.http.rendered import RenderedJson, json_list
from kiln.http.router import Router
from kiln.service import KilnService
from tests.unit.http.conftest import Api

PUSH = {"stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/live", "streamKey": "k"}


def test_ok_encoded_is_ok_byte_for_byte() -> None:
    for value in ([], ["a"], {"z": 1, "a": [1, {"b": "é"}]}, "text", 0):
        assert ok_encoded(dumps(value)).body == ok(value).body
        assert ok_encoded(dumps(value)).raw_headers == ok(value).raw_headers
    assert json_list([dumps({"b": 1, "a": 2}), dumps([])]) == dumps([{"b": 1, "a": 2}, []])
    assert json_list([]) == dumps([])


def test_ok_without_a_response_is_the_envelope_byte_for_byte() -> None:
    assert ok().body == dumps({"message": "OK", "statusCode": 200}) == ok(None, 200).body
    def headers(response: Any) -> list[tuple[bytes, bytes]]:
        return [(name, value) for name, value in response.raw_headers if name != b"content-length"]

    assert headers(ok()) == headers(ok(0))  # the same headers as an envelope rendered by dumps
    assert ok(None, 201).body == dumps({"message": "Created", "statusCode": 201})


def test_rendered_json_renders_again_when_its_source_changes_and_stays_bounded() -> None:
    calls: list[int] = []
    kept = RenderedJson(limit=3)

    def render(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    assert kept.get("a", (1,), lambda: render(1)) == b'{"n":1}'
    assert kept.get("a", (1,), lambda: render(99)) == b'{"n":1}'  # same source: kept
    assert kept.get("a", (2,), lambda: render(2)) == b'{"n":2}'  # changed: rendered again
    config = {"x": [1]}
    assert kept.get("b", (config,), lambda: render(3)) == b'{"n":3}'
    assert kept.get("b", ({"x": [1]},), lambda: render(4)) == b'{"n":3}'  # an equal value is the same source
    assert calls == [1, 2, 3]
    kept.get("c", (0,), lambda: render(5))
    kept.get("d", (0,), lambda: render(6))  # beyond the limit: emptied, then kept
    assert len(kept) == 1


def test_the_push_list_follows_every_change_of_its_tasks(api: Api, service: KilnService) -> None:
    def expected() -> bytes:
        tasks = service.tasks.push_list("default", "app")
        return ok([push_json(t) for t in tasks]).body

    path = "/v1/vhosts/default/apps/app"
    for k in range(3):
        assert api.post(path + ":startPush", {**PUSH, "id": f"p{k}"}).status_code == 200
    first = api.post(path + ":pushes", {})
    assert first.content == expected() and len(first.json()["response"]) == 3
    assert api.post(path + ":pushes", {}).content == first.content  # from what was rendered
    assert api.post(path + ":stopPush", {"id": "p1"}).status_code == 200
    again = api.post(path + ":pushes", {})
    assert again.content == expected() and [p["id"] for p in again.json()["response"]] == ["p0", "p2"]
    assert api.post(path + ":pushes", {"id": "p2"}).json()["response"][0]["id"] == "p2"
    # a task changed in place by the read model (a session's totals) is rendered again
    task = service.tasks.pushes[("default", "app", "p0")]
    task.total_sent_bytes, task.state = 12345, "error"
    changed = api.post(path + ":pushes", {}).json()["response"][0]
    assert (changed["totalsentBytes"], changed["state"]) == (12345, "error")
    assert api.post(path + ":pushes", {}).content == expected()


def test_one_app_and_one_vhost_follow_a_patch(api: Api, service: KilnService) -> None:
    assert api.post("/v1/vhosts", [{"name": "tv"}]).status_code == 200
    assert api.post("/v1/vhosts/tv/apps", [{"name": "live", "type": "live"}]).status_code == 200
    first = api.get("/v1/vhosts/tv/apps/live")
    view = service.catalog.app("tv", "live")
    assert view is not None
    assert first.content == ok({**with_reserved_mpegts_streams(view.config), "dynamic": view.dynamic}).body
    assert api.patch("/v1/vhosts/tv/apps/live", {"providers": {"webrtc": {"timeout": 60000}}}).status_code == 200
    view = service.catalog.app("tv", "live")
    assert view is not None and view.config["providers"]["webrtc"] == {"timeout": 60000}
    assert api.get("/v1/vhosts/tv/apps/live").json()["response"]["providers"]["webrtc"] == {"timeout": 60000}
    assert api.get("/v1/vhosts/tv/apps/live").content == ok({**view.config, "dynamic": view.dynamic}).body
    vhost = service.catalog.vhost("tv")
    assert vhost is not None and api.get("/v1/vhosts/tv").content == ok(vhost.config).body


def test_the_canonical_header_and_every_other_one_get_check_authorizations_answer() -> None:
    check = TokenCheck("user:secret")
    good = "Basic " + base64.b64encode(b"user:secret").decode()
    assert check(good) is None
    for header in (None, "Basic", "bAsIc " + good[6:], "Basic " + base64.b64encode(b"user:secreT").decode(),
                   good + " ", "Bearer x", "Basic é", good.replace("Basic", "Basic ")):
        assert check(header) == check_authorization(header, "user:secret"), header


def test_the_route_table_is_asked_once_per_path_and_gives_each_call_its_own_params() -> None:
    router = Router()

    async def handler(call: object) -> None:
        raise AssertionError

    router.add("GET", r"/v1/vhosts/(?P<vhost>[^/]*)", handler)
    found = router.match("GET", "/v1/vhosts/a%2Fb")
    assert found is not None and found[1] == {"vhost": "a/b"}
    found[1]["vhost"] = "changed"
    again = router.match("GET", "/v1/vhosts/a%2Fb")
    assert again is not None and again[1] == {"vhost": "a/b"}
    assert router.match("POST", "/v1/vhosts/a") is None and router.match("HEAD", "/v1/vhosts/a") is not None
    for n in range(3000):  # bounded
        router.match("GET", f"/v1/vhosts/{n}")
    assert len(router._found) <= 1024


def test_console_paths_go_to_the_console_and_everything_else_to_the_api(anon: TestClient) -> None:
    assert anon.get("/console", follow_redirects=False).status_code == 308
    assert anon.post("/console/x").status_code == 405  # the files' own answer to a write
    for method, path in (("POST", "/console"), ("GET", "/consolex")):
        r = anon.request(method, path)
        assert r.status_code == 401 and r.json()["statusCode"] == 401  # the API's: auth, then routing


def test_the_api_ports_431_is_the_envelope_the_app_would_answer() -> None:
    """On the wire: tests/e2e/test_api_wire.py and tests/chaos/test_slowloris.py."""
    answer = error(headers_too_large(4096))
    assert answer.body == b'{"message":"[HTTP] Request headers are larger than 4096 bytes (431)","statusCode":431}'
    assert headers_too_large(10) == ApiError(431, "Request headers are larger than 10 bytes")


def _parsed_the_long_way(raw: bytes) -> object:
    """parse_body as it was: every body through the comment and trailing-comma loop."""
    text = raw.decode("utf-8")
    if not text.strip():
        return None
    cleaned = _strip_comments_and_trailing_commas(text).lstrip()
    try:
        return _DECODER.raw_decode(cleaned)[0]  # parse_body's decoder: numbers read as jsoncpp reads them
    except json.JSONDecodeError as exc:
        return ("error", "[JSON] " + _message(cleaned, exc))


def _parsed(raw: bytes) -> object:
    try:
        return parse_body(raw)
    except BodyError as exc:
        return ("error", exc.text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(alphabet='{}[],:"\\/ \t\r\n*abc01-.', max_size=60),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='a/,]}"\\ ', max_size=6),
                 lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                 max_leaves=12).map(json.dumps),
))
def test_a_body_with_nothing_to_strip_parses_as_through_the_loop(text: str) -> None:
    for variant in (text, text.replace("]", ",]").replace("}", " ,}"), text + "// c", "/* c */" + text):
        raw = variant.encode("utf-8")
        assert _parsed(raw) == _parsed_the_long_way(raw), variant


@pytest.mark.parametrize(("encoded", "status", "headers"), [
    (b'{"message":"OK","statusCode":200}', 200, None),
    (b'{"message":"OK","response":[],"statusCode":200}', 200, None),
    (b'{"message":"Not Found","statusCode":404}', 404, None),
    (b'{"message":"x","statusCode":207}', 207, None),
    (b'{"message":"no","statusCode":401}', 401, {"WWW-Authenticate": 'Basic realm="x"'}),
    (b"", 200, None),
])
def test_a_json_answer_has_the_headers_starlette_would_give_it(encoded: bytes, status: int,
                                                               headers: dict[str, str] | None) -> None:
    made = json_answer(encoded, status, headers)
    starlette = Response(encoded, status_code=status, media_type=None,
                         headers={**BASE_HEADERS, "Content-Type": JSON_TYPE, **(headers or {})})
    assert (made.body, made.status_code, made.raw_headers, made.background, made.media_type) == \
        (starlette.body, starlette.status_code, starlette.raw_headers, starlette.background, starlette.media_type)
    assert made.headers["content-length"] == str(len(encoded))
