"""Contract: applications (rest-spec §6, §1.8, §1.11, §1.12, §15; seed 003)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.http.conftest import Api

OK = {"message": "OK", "statusCode": 200}
READ_ONLY = {"message": "[HTTP] The VirtualHost is read-only: [default] (403)", "statusCode": 403}
DEFAULT_PROFILES = {"outputProfile": [{
    "name": "default",
    "outputStreamName": "${OriginStreamName}",
    "encodes": {
        "videos": [{"name": "bypass_video", "bypass": True}],
        "audios": [
            {"name": "opus", "codec": "opus", "bitrate": 128000, "samplerate": 48000, "channel": 2,
             "bypassIfMatch": {"codec": "eq"}},
            {"name": "aac", "codec": "aac", "bitrate": 128000, "samplerate": 48000, "channel": 2,
             "bypassIfMatch": {"codec": "eq"}},
        ],
    },
}]}
DEFAULT_PROVIDERS = {"ovt": {}, "rtmp": {}, "rtspPull": {}, "srt": {}, "webrtc": {}}
DEFAULT_PUBLISHERS = {"llhls": {}, "ovt": {}, "webrtc": {}}


def defaulted(name: str, app_type: str = "live") -> dict[str, Any]:
    return {"dynamic": False, "name": name, "type": app_type, "outputProfiles": DEFAULT_PROFILES,
            "providers": DEFAULT_PROVIDERS, "publishers": DEFAULT_PUBLISHERS}


@pytest.fixture
def vh(api: Api) -> Api:
    assert api.post("/v1/vhosts", [{"name": "vh"}]).status_code == 200
    return api


def test_list_apps(vh: Api) -> None:
    assert vh.get("/v1/vhosts/default/apps").json() == {"message": "OK", "response": ["app"], "statusCode": 200}
    assert vh.get("/v1/vhosts/vh/apps").json() == {"message": "OK", "response": [], "statusCode": 200}
    vh.post("/v1/vhosts/vh/apps", [{"name": "b", "type": "live"}, {"name": "a", "type": "live"}])
    assert vh.get("/v1/vhosts/vh/apps").json()["response"] == ["b", "a"]
    r = vh.get("/v1/vhosts/nope/apps")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}


def test_config_app_echoes_xml_text(api: Api) -> None:
    assert api.get("/v1/vhosts/default/apps/app").json() == {"message": "OK", "statusCode": 200, "response": {
        "dynamic": False, "name": "app", "type": "live",
        "outputProfiles": {"outputProfile": [{
            "name": "bypass", "outputStreamName": "${OriginStreamName}",
            "encodes": {"videos": [{"name": "bypass_video", "bypass": "true"}],
                        "audios": [{"name": "bypass_audio", "bypass": "true"}]}}]},
        "providers": {"rtmp": {}},
        "publishers": {"llhls": {}, "push": {}, "file": {}}}}


def test_raw_app_quirk_is_the_config_without_dynamic(api: Api) -> None:
    full = api.get("/v1/vhosts/default/apps/app").json()["response"]
    del full["dynamic"]
    assert api.get("/v1/vhosts/default/apps/app:").json() == {"message": "OK", "response": full, "statusCode": 200}


def test_get_unknown_app(vh: Api) -> None:
    r = vh.get("/v1/vhosts/vh/apps/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the application: [vh/nope] (404)", "statusCode": 404}
    r = vh.get("/v1/vhosts/nope/apps/nope")
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}


# -- POST apps: parse, vhost 404, read-only 403, array 400 (§6.2) --

def test_create_on_read_only_vhost_is_403_before_the_shape_check(api: Api) -> None:
    for body in ([{"name": "x", "type": "live"}], {"not": "an array"}, None):
        r = api.post("/v1/vhosts/default/apps", body)
        assert r.status_code == 403, body
        assert r.json() == READ_ONLY
    assert api.get("/v1/vhosts/default/apps").json()["response"] == ["app"]


def test_create_on_unknown_vhost_is_404_before_the_shape_check(api: Api) -> None:
    r = api.post("/v1/vhosts/nope/apps", {"x": 1})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}


def test_create_body_must_be_an_array(vh: Api) -> None:
    for body in ({"name": "x", "type": "live"}, None, "x"):
        r = vh.post("/v1/vhosts/vh/apps", body)
        assert r.status_code == 400, body
        assert r.json() == {"message": "[HTTP] Request body must be an array (400)", "statusCode": 400}


def test_create_empty_array_is_200(vh: Api) -> None:
    r = vh.post("/v1/vhosts/vh/apps", [])
    assert r.status_code == 200
    assert r.json() == []


def test_create_fills_defaults_and_answers_full_objects(vh: Api) -> None:
    r = vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}, {"name": "vod", "type": "vod"}])
    assert r.status_code == 200
    assert r.json() == [{"message": "OK", "response": defaulted("live"), "statusCode": 200},
                        {"message": "OK", "response": defaulted("vod", "vod"), "statusCode": 200}]
    assert vh.get("/v1/vhosts/vh/apps/live").json() == {"message": "OK", "response": defaulted("live"),
                                                        "statusCode": 200}


def test_create_mixed_200_and_409_is_207(vh: Api) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    r = vh.post("/v1/vhosts/vh/apps", [{"name": "new", "type": "live"}, {"name": "live", "type": "live"}])
    assert r.status_code == 207
    assert r.json() == [{"message": "OK", "response": defaulted("new"), "statusCode": 200},
                        {"message": "Could not create the application: [vh/live] already exists",
                         "statusCode": 409}]


def test_create_duplicate_within_one_request(vh: Api) -> None:
    r = vh.post("/v1/vhosts/vh/apps", [{"name": "d", "type": "live"}, {"name": "d", "type": "live"}])
    assert r.status_code == 207
    assert r.json()[1] == {"message": "Could not create the application: [vh/d] already exists", "statusCode": 409}


def test_create_echoes_given_sections_as_sent(vh: Api) -> None:
    profiles = {"outputProfile": [{"name": "bypass_profile", "outputStreamName": "${OriginStreamName}_b",
                                   "encodes": {"videos": [{"bypass": True}], "audios": [{"bypass": True}]}}]}
    body = {"name": "custom", "type": "live", "outputProfiles": profiles,
            "providers": {"rtmp": {}, "srt": {}}, "publishers": {"llhls": {}, "push": {}, "file": {}}}
    r = vh.post("/v1/vhosts/vh/apps", [body])
    assert r.json() == [{"message": "OK", "response": {**body, "dynamic": False}, "statusCode": 200}]


@pytest.mark.parametrize(("element", "message"), [
    ({"name": "x"}, "[Config] application.type is not optional"),
    ({"type": "live"}, "[Config] application.name is not optional"),
    ({"name": "x", "type": "LIVE2"}, "[Config] Unknown type: LIVE2"),
    ({"name": "x", "type": "live", "foo": 1}, "[Config] Unknown item found: application.foo"),
    ({"name": "x", "type": "live", "providers": {"rtmp": {}, "foo": {}}},
     "[Config] Unknown item found: application.providers.foo"),
    ({"name": "x", "type": "live", "dynamic": True}, "[Config] Unknown item found: application.dynamic"),
])
def test_create_config_errors_abort_with_top_level_400(vh: Api, element: dict[str, Any], message: str) -> None:
    r = vh.post("/v1/vhosts/vh/apps", [{"name": "before", "type": "live"}, element, {"name": "after", "type": "live"}])
    assert r.status_code == 400
    assert r.json() == {"message": message, "statusCode": 400}
    assert vh.get("/v1/vhosts/vh/apps").json()["response"] == ["before"]


def test_create_invalid_encode_is_a_config_error(vh: Api) -> None:
    profiles = {"outputProfile": [{"name": "p", "outputStreamName": "o",
                                   "encodes": {"videos": [{"codec": "h264", "bypass": False}]}}]}
    r = vh.post("/v1/vhosts/vh/apps", [{"name": "x", "type": "live", "outputProfiles": profiles}])
    assert r.status_code == 400
    assert r.json() == {"message": "[Config] Bitrate must be specified when bypass is false", "statusCode": 400}


# -- PATCH (§6.4): parse, 404s, 403, object 400, forbidden keys, merge --

def test_patch_lookups_then_read_only(api: Api) -> None:
    r = api.patch("/v1/vhosts/nope/apps/app", {"name": "x"})
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = api.patch("/v1/vhosts/default/apps/nope", {"name": "x"})
    assert r.json() == {"message": "[HTTP] Could not find the application: [default/nope] (404)", "statusCode": 404}
    for body in ({"name": "x"}, [1], {"type": "live"}):
        r = api.patch("/v1/vhosts/default/apps/app", body)
        assert r.status_code == 403, body
        assert r.json() == READ_ONLY


def test_patch_body_must_be_an_object(vh: Api) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    for body in ([1], "x", 5):
        r = vh.patch("/v1/vhosts/vh/apps/live", body)
        assert r.status_code == 400, body
        assert r.json() == {"message": "[HTTP] Request body must be an object (400)", "statusCode": 400}


def test_patch_forbidden_keys_are_checked_in_order(vh: Api) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    r = vh.patch("/v1/vhosts/vh/apps/live", {"outputProfiles": {}, "dynamic": True, "name": "live"})
    assert r.json() == {"message": "[HTTP] Cannot change [name] using this API (400)", "statusCode": 400}
    r = vh.patch("/v1/vhosts/vh/apps/live", {"outputProfiles": {}, "dynamic": True})
    assert r.json() == {"message": "[HTTP] Cannot change [dynamic] using this API (400)", "statusCode": 400}
    r = vh.patch("/v1/vhosts/vh/apps/live", {"outputProfiles": None, "type": "live"})
    assert r.json() == {"message": "[HTTP] Cannot change [outputProfiles] using this API (400)", "statusCode": 400}


def test_patch_merges_objects_replaces_arrays_and_null_removes(vh: Api) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live",
                                    "publishers": {"llhls": {"crossDomains": {"urls": ["a.example", "b.example"]}},
                                                   "webrtc": {}}}])
    r = vh.patch("/v1/vhosts/vh/apps/live", {"publishers": {"llhls": {"crossDomains": {"urls": ["c.example"]}},
                                                           "webrtc": None, "push": {}},
                                            "providers": {"srt": None}})
    assert r.status_code == 200, r.text
    expected = {**defaulted("live"),
                "providers": {"ovt": {}, "rtmp": {}, "rtspPull": {}, "webrtc": {}},
                "publishers": {"llhls": {"crossDomains": {"urls": ["c.example"]}}, "push": {}}}
    assert r.json() == {"message": "OK", "response": expected, "statusCode": 200}
    assert vh.get("/v1/vhosts/vh/apps/live").json() == {"message": "OK", "response": expected, "statusCode": 200}


def test_patch_type(vh: Api) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    assert vh.patch("/v1/vhosts/vh/apps/live", {"type": "vod"}).json() == {
        "message": "OK", "response": defaulted("live", "vod"), "statusCode": 200}


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "bogus"}, "[Config] Unknown type: bogus"),
    ({"type": None}, "[Config] application.type is not optional"),
    ({"providers": {"nope": {}}}, "[Config] Unknown item found: application.providers.nope"),
])
def test_patch_invalid_result_is_a_config_error_and_changes_nothing(vh: Api, body: dict[str, Any],
                                                                   message: str) -> None:
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    r = vh.patch("/v1/vhosts/vh/apps/live", body)
    assert r.status_code == 400
    assert r.json() == {"message": message, "statusCode": 400}
    assert vh.get("/v1/vhosts/vh/apps/live").json()["response"] == defaulted("live")


# -- DELETE (§6.5) --

def test_delete_checks_and_success(vh: Api) -> None:
    r = vh.delete("/v1/vhosts/nope/apps/app")
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = vh.delete("/v1/vhosts/vh/apps/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the application: [vh/nope] (404)", "statusCode": 404}
    r = vh.delete("/v1/vhosts/default/apps/app")
    assert r.status_code == 403
    assert r.json() == READ_ONLY
    vh.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    r = vh.delete("/v1/vhosts/vh/apps/live")
    assert r.status_code == 200
    assert r.json() == OK
    r = vh.get("/v1/vhosts/vh/apps/live")
    assert r.json() == {"message": "[HTTP] Could not find the application: [vh/live] (404)", "statusCode": 404}
    r = vh.get("/v1/stats/current/vhosts/vh/apps/live")
    assert r.json() == {"message": "[HTTP] Could not find the application: [vh/live] (404)", "statusCode": 404}
