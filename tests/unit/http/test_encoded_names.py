"""Percent-encoded names in REST paths (issue 20 item 1): routes match the raw path, then decode each name once.

A user who publishes ``app/caméra`` sees ``"caméra"`` in ``/streams`` and must be able to address it as
``streams/cam%C3%A9ra``; names with spaces, ``+``, ``%``, non-ASCII and reserved characters round-trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from kiln.http.router import APP, STREAM, VHOST, Call, Router, decode_params
from tests.unit.http.conftest import Api

STREAM_ROUTE = rf"/v1/vhosts/{VHOST}/apps/{APP}/streams/{STREAM}"
ACTION_ROUTE = rf"/v1/vhosts/{VHOST}/apps/{APP}:startPush"


async def _unused(call: Call) -> Response:
    raise AssertionError("the router test never calls a handler")


def _router(*paths: str) -> Router:
    router = Router()
    handler: Callable[[Call], Awaitable[Response]] = _unused
    for path in paths:
        router.add("GET, POST", path, handler)
    return router


def _params(router: Router, path: str, method: str = "GET") -> dict[str, str] | None:
    found = router.match(method, path)
    return None if found is None else found[1]


def full_encoding(name: str) -> str:
    """Every byte as %XX, unreserved characters included: as valid as quote()'s form, and it keeps
    ``.``/``..`` away from client-side dot-segment removal."""
    return "".join(f"%{b:02X}" for b in name.encode("utf-8"))


# -- the router --

@pytest.mark.parametrize(("raw", "name"), [
    ("cam%C3%A9ra", "caméra"),
    ("cam%c3%a9ra%201", "caméra 1"),
    ("caméra", "caméra"),                     # a client that sends the UTF-8 unencoded
    ("a+b", "a+b"),                           # a path is not a form: + stays +
    ("a%2Bb", "a+b"),
    ("100%25", "100%"),
    ("%2525", "%25"),                         # decoded once, not until nothing changes
    ("a%2Fb", "a/b"),
    ("%3F%23%5B%5D%40", "?#[]@"),
    ("bad%FFutf8", "bad\ufffdutf8"),          # not UTF-8: a name nobody can have, so a 404 names it
    ("100%", "100%"),                         # a stray % is kept as written
])
def test_each_captured_name_is_decoded_once(raw: str, name: str) -> None:
    router = _router(STREAM_ROUTE)
    assert _params(router, f"/v1/vhosts/default/apps/app/streams/{raw}") == {
        "vhost": "default", "app": "app", "stream": name}


def test_encoded_separators_never_split_a_segment_or_start_an_action() -> None:
    router = _router(ACTION_ROUTE, STREAM_ROUTE)
    assert _params(router, "/v1/vhosts/default/apps/app/streams/a%2Fb") == {
        "vhost": "default", "app": "app", "stream": "a/b"}
    assert _params(router, "/v1/vhosts/default/apps/app/streams/a/b") is None
    assert _params(router, "/v1/vhosts/default/apps/app:startPush", "POST") == {"vhost": "default", "app": "app"}
    # an encoded colon is part of the app name, not an action separator
    assert _params(router, "/v1/vhosts/default/apps/app%3AstartPush", "POST") is None


def test_decode_params_leaves_plain_names_alone() -> None:
    assert decode_params({"vhost": "default", "app": "live_1-x.y~"}) == {"vhost": "default", "app": "live_1-x.y~"}


# -- through the API --

def test_unknown_stream_404_names_the_decoded_stream(api: Api) -> None:
    r = api.get("/v1/vhosts/default/apps/app/streams/cam%C3%A9ra%201")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the stream: [default/#default#app/caméra 1] (404)",
                        "statusCode": 404}
    r = api.post("/v1/vhosts/default/apps/app/streams/cam%C3%A9ra%201:sendEvent", {})
    assert r.status_code == 404
    assert r.json()["message"] == "[HTTP] Could not find the stream: [default/#default#app/caméra 1] (404)"
    r = api.get("/v1/vhosts/default/apps/n%C3%B6pe")
    assert r.json()["message"] == "[HTTP] Could not find the application: [default/nöpe] (404)"


def test_an_encoded_vhost_name_finds_the_vhost(api: Api) -> None:
    r = api.get("/v1/vhosts/def%61ult")
    assert r.status_code == 200
    assert r.json()["response"]["name"] == "default"
    r = api.get("/v1/vhosts/def%2561ult")
    assert r.json()["message"] == "[HTTP] Could not find the virtual host: [def%61ult] (404)"


def test_stats_use_decoded_names(api: Api) -> None:
    r = api.get("/v1/stats/current/vhosts/default/apps/app/streams/cam%C3%A9ra")
    assert r.status_code == 404
    assert "caméra" in r.json()["message"] and "%C3" not in r.json()["message"]
    assert api.get("/v1/stats/current/vhosts/def%61ult/apps/%61pp").status_code == 200


NAMES = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" +%:/?#[]@!$&'()*,;=.~-_\"<>\\^`{|}")),
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    ),
    min_size=1, max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
@example(name=".")
@example(name="..")
def test_vhost_app_and_profile_names_round_trip_through_encoded_paths(api: Api, name: str) -> None:
    """A vhost, an app in it and an output profile in that, all named ``name`` and made through the API, are
    reached through both encodings of the name; listings show the name; after deletion the 404s speak it."""
    made = api.post("/v1/vhosts", [{"name": name}])
    assert made.status_code == 200 and made.json()[0]["statusCode"] == 200, made.text
    # "." and ".." as a raw segment are dot-segments that HTTP clients (httpx, curl) remove before
    # sending, so such a name is only reachable percent-encoded
    forms = (quote(name, safe="") if name not in (".", "..") else full_encoding(name), full_encoding(name))
    try:
        for vh in forms:
            got = api.get(f"/v1/vhosts/{vh}")
            assert got.status_code == 200, (vh, got.text)
            assert got.json()["response"]["name"] == name
        vh = forms[0]
        created = api.post(f"/v1/vhosts/{vh}/apps", [{"name": name, "type": "live"}])
        assert created.status_code == 200 and created.json()[0]["statusCode"] == 200, created.text
        assert api.get(f"/v1/vhosts/{vh}/apps").json()["response"] == [name]
        for encoded in forms:
            app = f"/v1/vhosts/{forms[1]}/apps/{encoded}"
            got = api.get(app)
            assert got.status_code == 200, (encoded, got.text)
            assert got.json()["response"]["name"] == name
            assert api.get(f"{app}/streams").json()["response"] == []
            assert api.get(f"/v1/stats/current/vhosts/{vh}/apps/{encoded}").status_code == 200
        app = f"/v1/vhosts/{vh}/apps/{forms[0]}"
        profile = {"name": name, "outputStreamName": "o", "encodes": {"videos": [{"bypass": True}]}}
        made = api.post(f"{app}/outputProfiles", [profile])
        assert made.status_code == 200 and made.json()[0]["statusCode"] == 200, made.text
        for encoded in forms:
            got = api.get(f"{app}/outputProfiles/{encoded}")
            assert got.status_code == 200, (encoded, got.text)
            assert got.json()["response"]["name"] == name
        assert api.delete(f"{app}/outputProfiles/{forms[1]}").status_code == 200
        gone = api.get(f"{app}/outputProfiles/{forms[0]}")
        assert gone.json()["message"] == f"[HTTP] Could not find the output profile: [{name}/{name}/{name}] (404)"
        assert api.delete(f"/v1/vhosts/{vh}/apps/{forms[1]}").status_code == 200
        gone = api.get(app)
        assert gone.json()["message"] == f"[HTTP] Could not find the application: [{name}/{name}] (404)"
    finally:
        assert api.delete(f"/v1/vhosts/{forms[1]}").status_code == 200
    gone = api.get(f"/v1/vhosts/{forms[0]}")
    assert gone.json()["message"] == f"[HTTP] Could not find the virtual host: [{name}] (404)"
