"""Contract: streams and stream actions without media (rest-spec §8, §11, §12, §14, §1.10, §15).

Unit tests have no ingest, so only what is answered before a live stream is needed is checked
here: lookups, pull-body validation, pull failure. Everything that needs a live stream (GET
stream body, 409 "Stream already exists", sendEvent(s) body checks and 500s, dump checks,
concludeHlsLive success) belongs to tests/e2e.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.http.conftest import Api

STREAMS = "/v1/vhosts/default/apps/app/streams"
NO_STREAM = {"message": "[HTTP] Could not find the stream: [default/#default#app/s] (404)", "statusCode": 404}
NO_VHOST = {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
NO_APP = {"message": "[HTTP] Could not find the application: [default/nope] (404)", "statusCode": 404}
ACTIONS = ["sendEvent", "sendEvents", "startHlsDump", "stopHlsDump", "hlsDumps", "concludeHlsLive"]


def test_list_streams(api: Api) -> None:
    assert api.get(STREAMS).json() == {"message": "OK", "response": [], "statusCode": 200}
    r = api.get("/v1/vhosts/nope/apps/app/streams")
    assert r.status_code == 404
    assert r.json() == NO_VHOST
    r = api.get("/v1/vhosts/default/apps/nope/streams")
    assert r.status_code == 404
    assert r.json() == NO_APP


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_stream(api: Api, method: str) -> None:
    r = api.request(method, f"{STREAMS}/s")
    assert r.status_code == 404
    assert r.json() == NO_STREAM
    r = api.request(method, "/v1/vhosts/default/apps/nope/streams/s")
    assert r.json() == NO_APP
    r = api.request(method, "/v1/vhosts/nope/apps/app/streams/s")
    assert r.json() == NO_VHOST


def test_stream_names_are_percent_decoded(api: Api) -> None:
    r = api.get(f"{STREAMS}/a%20b")
    assert r.json() == {"message": "[HTTP] Could not find the stream: [default/#default#app/a b] (404)",
                        "statusCode": 404}


# -- POST streams (§8.2) --

def test_pull_lookups_come_before_the_body_checks(api: Api) -> None:
    r = api.post("/v1/vhosts/nope/apps/app/streams", [1])
    assert r.status_code == 404
    assert r.json() == NO_VHOST
    r = api.post("/v1/vhosts/default/apps/nope/streams", [1])
    assert r.json() == NO_APP


@pytest.mark.parametrize(("body", "text"), [
    (None, "Request body must be an object"),
    ([{"name": "s", "urls": ["rtsp://h/a"]}], "Request body must be an object"),
    ({}, "Stream name or urls is required"),
    ({"name": "s"}, "Stream name or urls is required"),
    ({"urls": ["rtsp://h/a"]}, "Stream name or urls is required"),
    ({"name": 5, "urls": ["rtsp://h/a"]}, "Stream name or urls is required"),
    ({"name": "s", "urls": "rtsp://h/a"}, "Stream name or urls is required"),
    ({"name": "s", "urls": []}, "Urls must be at least one"),
    ({"name": "s", "urls": ["rtsp://h/a", 7]}, "Url must be a string"),
    ({"name": "s", "urls": [None]}, "Url must be a string"),
])
def test_pull_body_checks_in_order(api: Api, body: Any, text: str) -> None:
    """The read-only config vhost is allowed here: the answers are body errors, never 403."""
    r = api.post(STREAMS, body)
    assert r.status_code == 400
    assert r.json() == {"message": f"[HTTP] {text} (400)", "statusCode": 400}


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x", "srt://127.0.0.1:1", "nonsense"])
def test_pull_with_an_unsupported_scheme_is_502_naming_the_api_url(api: Api, url: str) -> None:
    r = api.post(STREAMS, {"name": "cam", "urls": [url], "properties": {"persistent": True}})
    assert r.status_code == 502
    assert r.json() == {"message": "[HTTP] Could not pull the stream : http://kiln.test/v1/vhosts/default/apps/app/"
                                   "streams (502)", "statusCode": 502}
    assert api.get(STREAMS).json() == {"message": "OK", "response": [], "statusCode": 200}


# -- stream actions: the stream lookup comes before any body check --

@pytest.mark.parametrize("action", ACTIONS)
def test_actions_on_unknown_stream(api: Api, action: str) -> None:
    for body in (None, {}, [], {"eventFormat": "bogus", "events": 5}, {"outputStreamName": "x", "id": "d"}):
        r = api.post(f"{STREAMS}/s:{action}", body)
        assert r.status_code == 404, (action, body)
        assert r.json() == NO_STREAM


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_on_unknown_vhost_and_app(api: Api, action: str) -> None:
    r = api.post(f"/v1/vhosts/nope/apps/app/streams/s:{action}", {})
    assert r.status_code == 404
    assert r.json() == NO_VHOST
    r = api.post(f"/v1/vhosts/default/apps/nope/streams/s:{action}", {})
    assert r.status_code == 404
    assert r.json() == NO_APP


def test_send_subtitles_on_unknown_stream(api: Api) -> None:
    r = api.post(f"{STREAMS}/s:sendSubtitles", {"format": "webvtt", "data": []})
    assert r.status_code == 404
    assert r.json() == NO_STREAM
