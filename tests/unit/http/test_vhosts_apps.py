"""Virtual hosts, applications and output profiles (rest-spec §4, §6, §7; seed 003)."""

from __future__ import annotations

from typing import Any

from tests.unit.http.conftest import Api

DEFAULT_PROFILE = {
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
}


def make_vhost(api: Api, name: str = "vh", **extra: Any) -> Any:
    r = api.post("/v1/vhosts", [{"name": name, "host": {"names": ["*"]}, **extra}])
    assert r.status_code == 200, r.text
    return r.json()[0]["response"]


def make_app(api: Api, vhost: str = "vh", name: str = "live", **extra: Any) -> Any:
    r = api.post(f"/v1/vhosts/{vhost}/apps", [{"name": name, "type": "live", **extra}])
    assert r.status_code == 200, r.text
    return r.json()[0]["response"]


def test_config_vhost_is_listed_and_read_only(api: Api) -> None:
    assert api.get("/v1/vhosts").json()["response"] == ["default"]
    r = api.delete("/v1/vhosts/default")
    assert r.status_code == 403
    assert r.json()["message"] == "[HTTP] The VirtualHost is read-only: [default] (403)"
    r = api.post("/v1/vhosts/default/apps", [{"name": "x", "type": "live"}])
    assert r.status_code == 403
    assert api.delete("/v1/vhosts/default/apps/app").status_code == 403
    assert api.patch("/v1/vhosts/default/apps/app", {"type": "live"}).status_code == 403


def test_config_app_echoes_xml_strings(api: Api) -> None:
    app = api.get("/v1/vhosts/default/apps/app").json()["response"]
    assert app["name"] == "app" and app["dynamic"] is False
    video = app["outputProfiles"]["outputProfile"][0]["encodes"]["videos"][0]
    assert video["bypass"] == "true"


def test_create_vhost_multi_status(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "a", "host": {"names": ["a.example"]}},
                                {"name": "default"},
                                {"host": {"names": ["x"]}}])
    assert r.status_code == 207
    items = r.json()
    assert items[0] == {"message": "OK", "response": {"name": "a", "host": {"names": ["a.example"]}},
                        "statusCode": 200}
    assert items[1] == {"message": "The virtual host already exists: [default]", "statusCode": 409}
    assert items[2] == {"message": "[Config] virtualHost.name is not optional", "statusCode": 400}
    assert api.get("/v1/vhosts").json()["response"] == ["default", "a"]


def test_create_vhost_all_conflicts_is_409_and_empty_is_200(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "default"}])
    assert r.status_code == 409
    r = api.post("/v1/vhosts", [])
    assert r.status_code == 200 and r.json() == []
    r = api.post("/v1/vhosts", {"name": "x"})
    assert r.status_code == 400
    assert r.json()["message"] == "[HTTP] Request body must be an array (400)"


def test_vhost_get_and_delete(api: Api) -> None:
    make_vhost(api, "vh", distribution="ovenServer")
    r = api.get("/v1/vhosts/vh")
    assert r.json()["response"] == {"distribution": "ovenServer", "host": {"names": ["*"]}, "name": "vh"}
    assert api.delete("/v1/vhosts/vh").json() == {"message": "OK", "statusCode": 200}
    r = api.get("/v1/vhosts/vh")
    assert r.status_code == 404
    assert r.json()["message"] == "[HTTP] Could not find the virtual host: [vh] (404)"
    assert api.delete("/v1/vhosts/vh").status_code == 404


def test_unknown_vhost_key_is_config_error(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "bad", "foo": 1}])
    assert r.json()[0] == {"message": "[Config] Unknown item found: virtualHost.foo", "statusCode": 400}


def test_app_defaults_filled_when_sections_absent(api: Api) -> None:
    make_vhost(api)
    app = make_app(api)
    assert app["providers"] == {"ovt": {}, "rtspPull": {}, "webrtc": {}, "srt": {}, "rtmp": {}}
    assert app["publishers"] == {"llhls": {}, "webrtc": {}, "ovt": {}}
    assert app["outputProfiles"] == {"outputProfile": [DEFAULT_PROFILE]}
    assert app["dynamic"] is False
    got = api.get("/v1/vhosts/vh/apps/live").json()["response"]
    assert got == app


def test_app_given_section_is_not_merged_with_defaults(api: Api) -> None:
    make_vhost(api)
    app = make_app(api, publishers={"push": {}})
    assert app["publishers"] == {"push": {}}


def test_app_errors(api: Api) -> None:
    make_vhost(api)
    make_app(api)
    r = api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    assert r.status_code == 409
    assert r.json() == [{"message": "Could not create the application: [vh/live] already exists",
                         "statusCode": 409}]
    r = api.post("/v1/vhosts/vh/apps", [{"name": "ok1", "type": "live"}, {"name": "bad"}, {"name": "never",
                                                                                         "type": "live"}])
    assert r.status_code == 400
    assert r.json() == {"message": "[Config] application.type is not optional", "statusCode": 400}
    names = api.get("/v1/vhosts/vh/apps").json()["response"]
    assert names == ["live", "ok1"]  # earlier elements stay created, later ones never are
    r = api.post("/v1/vhosts/vh/apps", [{"name": "t", "type": "other"}])
    assert r.json()["message"] == "[Config] Unknown type: other"
    r = api.post("/v1/vhosts/vh/apps", [{"name": "t", "type": "live", "dynamic": False}])
    assert r.json()["message"] == "[Config] Unknown item found: application.dynamic"
    r = api.post("/v1/vhosts/nope/apps", [])
    assert r.json()["message"] == "[HTTP] Could not find the virtual host: [nope] (404)"
    r = api.get("/v1/vhosts/vh/apps/nope")
    assert r.json()["message"] == "[HTTP] Could not find the application: [vh/nope] (404)"


def test_patch_app_merges_and_forbids_keys(api: Api) -> None:
    make_vhost(api)
    make_app(api)
    r = api.patch("/v1/vhosts/vh/apps/live", {"providers": {"webrtc": {"timeout": 60000}}})
    assert r.status_code == 200, r.text
    app = r.json()["response"]
    assert app["providers"]["webrtc"] == {"timeout": 60000}
    assert app["providers"]["rtmp"] == {}
    for key in ("name", "dynamic", "outputProfiles"):
        r = api.patch("/v1/vhosts/vh/apps/live", {key: "x"})
        assert r.status_code == 400
        assert r.json()["message"] == f"[HTTP] Cannot change [{key}] using this API (400)"
    r = api.patch("/v1/vhosts/vh/apps/live", [1])
    assert r.json()["message"] == "[HTTP] Request body must be an object (400)"
    r = api.patch("/v1/vhosts/vh/apps/live", {"publishers": {"push": {}}, "providers": None})
    app = r.json()["response"]
    assert app["publishers"]["push"] == {} and "providers" not in app
    r = api.patch("/v1/vhosts/vh/apps/live", {"bogus": 1})
    assert r.json() == {"message": "[Config] Unknown item found: application.bogus", "statusCode": 400}


def test_raw_app_quirk(api: Api) -> None:
    r = api.get("/v1/vhosts/default/apps/app:")
    assert r.status_code == 200
    assert "dynamic" not in r.json()["response"]


def test_delete_app(api: Api) -> None:
    make_vhost(api)
    make_app(api)
    assert api.delete("/v1/vhosts/vh/apps/live").json() == {"message": "OK", "statusCode": 200}
    assert api.get("/v1/vhosts/vh/apps").json()["response"] == []


def test_output_profiles(api: Api) -> None:
    make_vhost(api)
    make_app(api)
    base = "/v1/vhosts/vh/apps/live/outputProfiles"
    assert api.get(base).json()["response"] == ["default"]
    profile = {"name": "bypass_profile", "outputStreamName": "${OriginStreamName}_bypass",
               "encodes": {"videos": [{"bypass": True}], "audios": [{"bypass": True}]}}
    r = api.post(base, [profile, {**profile}])
    assert r.status_code == 207
    assert r.json() == [{"message": "OK", "response": profile, "statusCode": 200},
                        {"message": 'The output profile "bypass_profile" already exists', "statusCode": 409}]
    assert api.get(base).json()["response"] == ["default", "bypass_profile"]
    assert api.get(f"{base}/bypass_profile").json()["response"] == profile
    r = api.get(f"{base}/nope")
    assert r.json()["message"] == "[HTTP] Could not find the output profile: [vh/live/nope] (404)"
    replaced = {"outputStreamName": "${OriginStreamName}_b", "encodes": {"videos": [{"bypass": True}]}}
    r = api.patch(f"{base}/bypass_profile", replaced)
    assert r.json()["response"] == {"name": "bypass_profile", **replaced}
    r = api.patch(f"{base}/bypass_profile", {"NAME": "x"})
    assert r.json()["message"] == "[HTTP] The NAME entry cannot be specified in the modification (400)"
    r = api.patch(f"{base}/bypass_profile", {"encodes": {"videos": [{"bypass": True}]}})
    assert r.status_code == 400 and r.json()["message"].startswith("[HTTP] [Config] ")
    assert api.delete(f"{base}/bypass_profile").json() == {"message": "OK", "statusCode": 200}
    assert api.get(base).json()["response"] == ["default"]
    assert api.delete(f"{base}/bypass_profile").status_code == 404


def test_output_profile_body_messages_in_order(api: Api) -> None:
    make_vhost(api)
    make_app(api)
    base = "/v1/vhosts/vh/apps/live/outputProfiles"
    p = "[HTTP] Invalid request body: "
    cases = [
        ({"name": "x"}, p + '"name", "outputStreamName", "encodes" are required (400)'),
        ({"name": 1, "outputStreamName": "s", "encodes": {}},
         p + '"name" must be a string and "encodes" must be an object (400)'),
        ({"name": "x", "outputStreamName": "s", "encodes": {}},
         p + '"encodes" must have at least one item (videos array or audios array) (400)'),
        ({"name": "x", "outputStreamName": "s", "encodes": {"videos": {}}},
         p + '"encodes.videos" must be an array (400)'),
        ({"name": "x", "outputStreamName": "s", "encodes": {"videos": [], "audios": []}},
         p + '"encodes" must have at least one item (videos array or audios array) and each item must have at '
             "least one item (400)"),
    ]
    for body, message in cases:
        r = api.post(base, [{"name": "ok", "outputStreamName": "o", "encodes": {"videos": [{"bypass": True}]}},
                            body])
        assert r.status_code == 400, body
        assert r.json()["message"] == message
    assert api.get(base).json()["response"] == ["default"]  # the first invalid element aborted everything


def test_profile_on_read_only_vhost_is_403(api: Api) -> None:
    r = api.post("/v1/vhosts/default/apps/app/outputProfiles", [])
    assert r.status_code == 403
    r = api.delete("/v1/vhosts/default/apps/app/outputProfiles/bypass")
    assert r.status_code == 403
