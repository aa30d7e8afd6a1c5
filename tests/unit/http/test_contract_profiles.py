"""Contract: output profiles (rest-spec §7, §1.8, §1.11, §15; seed 003)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.events import catalog as ce
from kiln.events.codec import event_of
from kiln.service import KilnService
from tests.unit.http.conftest import Api

OK = {"message": "OK", "statusCode": 200}
READ_ONLY = {"message": "[HTTP] The VirtualHost is read-only: [default] (403)", "statusCode": 403}
BASE = "/v1/vhosts/vh/apps/live/outputProfiles"
# the seed's "Create Output Profile" element
SEED_PROFILE = {"name": "bypass_profile", "outputStreamName": "${OriginStreamName}_bypass",
                "encodes": {"videos": [{"bypass": True}], "audios": [{"bypass": True}]}}
VALID = {"name": "ok", "outputStreamName": "o", "encodes": {"videos": [{"bypass": True}]}}


@pytest.fixture
def app(api: Api) -> Api:
    assert api.post("/v1/vhosts", [{"name": "vh"}]).status_code == 200
    assert api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}]).status_code == 200
    return api


def names(api: Api) -> list[str]:
    return list(api.get(BASE).json()["response"])


def test_list_and_get_config_profiles(api: Api) -> None:
    base = "/v1/vhosts/default/apps/app/outputProfiles"
    assert api.get(base).json() == {"message": "OK", "response": ["bypass"], "statusCode": 200}
    assert api.get(f"{base}/bypass").json() == {"message": "OK", "statusCode": 200, "response": {
        "name": "bypass", "outputStreamName": "${OriginStreamName}",
        "encodes": {"videos": [{"name": "bypass_video", "bypass": "true"}],
                    "audios": [{"name": "bypass_audio", "bypass": "true"}]}}}


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", ""), ("GET", "/p"), ("PATCH", "/p"),
                                                ("DELETE", "/p")])
def test_lookups_answer_404(api: Api, method: str, suffix: str) -> None:
    r = api.request(method, f"/v1/vhosts/nope/apps/app/outputProfiles{suffix}", body=[1] if method == "POST" else None)
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = api.request(method, f"/v1/vhosts/default/apps/nope/outputProfiles{suffix}",
                    body=[1] if method == "POST" else None)
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the application: [default/nope] (404)", "statusCode": 404}


def test_get_unknown_profile(app: Api) -> None:
    r = app.get(f"{BASE}/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the output profile: [vh/live/nope] (404)",
                        "statusCode": 404}


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("POST", "", [VALID]),
    ("POST", "", {"not": "an array"}),
    ("POST", "", [{"invalid": True}]),
    ("PATCH", "/bypass", {"outputStreamName": "x", "encodes": {"videos": [{"bypass": True}]}}),
    ("PATCH", "/bypass", [1]),
    ("PATCH", "/bypass", {"name": "x"}),
    ("PATCH", "/nope", {"outputStreamName": "x"}),
    ("DELETE", "/bypass", None),
    ("DELETE", "/nope", None),
])
def test_read_only_vhost_is_403_before_body_and_profile_checks(api: Api, method: str, suffix: str,
                                                              body: Any) -> None:
    r = api.request(method, f"/v1/vhosts/default/apps/app/outputProfiles{suffix}", body=body)
    assert r.status_code == 403
    assert r.json() == READ_ONLY
    assert api.get("/v1/vhosts/default/apps/app/outputProfiles").json()["response"] == ["bypass"]


# -- POST (§7.3) --

def test_create_body_must_be_an_array(app: Api) -> None:
    for body in (VALID, None):
        r = app.post(BASE, body)
        assert r.status_code == 400
        assert r.json() == {"message": "[HTTP] Request body must be an array (400)", "statusCode": 400}


def test_create_empty_array_is_200(app: Api) -> None:
    r = app.post(BASE, [])
    assert r.status_code == 200
    assert r.json() == []
    assert names(app) == ["default"]


def test_create_seed_profile(app: Api) -> None:
    r = app.post(BASE, [SEED_PROFILE])
    assert r.status_code == 200
    assert r.json() == [{"message": "OK", "response": SEED_PROFILE, "statusCode": 200}]
    assert app.get(f"{BASE}/bypass_profile").json() == {"message": "OK", "response": SEED_PROFILE, "statusCode": 200}
    assert names(app) == ["default", "bypass_profile"]
    live = app.get("/v1/vhosts/vh/apps/live").json()["response"]
    assert [p["name"] for p in live["outputProfiles"]["outputProfile"]] == ["default", "bypass_profile"]


def test_create_all_conflicts_is_409(app: Api) -> None:
    r = app.post(BASE, [{**VALID, "name": "default"}])
    assert r.status_code == 409
    assert r.json() == [{"message": 'The output profile "default" already exists', "statusCode": 409}]
    assert names(app) == ["default"]


@pytest.mark.parametrize(("element", "text"), [
    (5, '"name", "outputStreamName", "encodes" are required'),
    ({"name": "x", "outputStreamName": "o"}, '"name", "outputStreamName", "encodes" are required'),
    ({"name": "x", "outputStreamName": 1, "encodes": {"videos": [{"bypass": True}]}},
     '"name" must be a string and "encodes" must be an object'),
    ({"name": "x", "outputStreamName": "o", "encodes": []},
     '"name" must be a string and "encodes" must be an object'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"images": []}},
     '"encodes" must have at least one item (videos array or audios array)'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"audios": {}}}, '"encodes.audios" must be an array'),
    ({"name": "x", "outputStreamName": "o", "encodes": {"audios": []}},
     '"encodes" must have at least one item (videos array or audios array) and each item must have at least one '
     "item"),
])
def test_create_first_invalid_element_aborts_everything(app: Api, element: Any, text: str) -> None:
    r = app.post(BASE, [VALID, element, {"bogus": 1}])
    assert r.status_code == 400
    assert r.json() == {"message": f"[HTTP] Invalid request body: {text} (400)", "statusCode": 400}
    assert names(app) == ["default"]


def test_create_config_error_on_recreation_is_wrapped(app: Api) -> None:
    bad = {"name": "x", "outputStreamName": "o", "encodes": {"videos": [{"bypass": False, "codec": "h264"}]}}
    r = app.post(BASE, [VALID, bad])
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] [Config] Bitrate must be specified when bypass is false (400)",
                        "statusCode": 400}
    r = app.post(BASE, [{**VALID, "foo": 1}])
    assert r.json() == {"message": "[HTTP] [Config] Unknown item found: application.outputProfiles.outputProfile.foo"
                                   " (400)", "statusCode": 400}
    assert names(app) == ["default"]


# -- PATCH (§7.4): parse, 404s, 403, object 400, profile 404, name key 400 --

def test_patch_body_shape_comes_before_profile_404(app: Api) -> None:
    r = app.patch(f"{BASE}/nope", [1])
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] Request body must be an object (400)", "statusCode": 400}
    r = app.patch(f"{BASE}/nope", {"name": "x"})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the output profile: [vh/live/nope] (404)",
                        "statusCode": 404}


@pytest.mark.parametrize("key", ["name", "Name", "nAmE"])
def test_patch_name_key_in_any_case_is_refused(app: Api, key: str) -> None:
    r = app.patch(f"{BASE}/default", {"outputStreamName": "x", key: "default"})
    assert r.status_code == 400
    assert r.json() == {"message": f"[HTTP] The {key} entry cannot be specified in the modification (400)",
                        "statusCode": 400}


def test_patch_is_a_full_replacement(app: Api) -> None:
    body = {"outputStreamName": "${OriginStreamName}_x", "encodes": {"audios": [{"name": "a", "bypass": True}]}}
    r = app.patch(f"{BASE}/default", body)
    assert r.status_code == 200
    assert r.json() == {"message": "OK", "response": {"name": "default", **body}, "statusCode": 200}
    assert app.get(f"{BASE}/default").json()["response"] == {"name": "default", **body}


def test_patch_without_output_stream_name_fails_validation(app: Api) -> None:
    before = app.get(f"{BASE}/default").json()["response"]
    r = app.patch(f"{BASE}/default", {"encodes": {"videos": [{"bypass": True}]}})
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] [Config] application.outputProfiles.outputProfile.outputStreamName is not "
                                   "optional (400)", "statusCode": 400}
    assert app.get(f"{BASE}/default").json()["response"] == before


# -- DELETE (§7.5) --

def test_delete(app: Api) -> None:
    app.post(BASE, [SEED_PROFILE])
    r = app.delete(f"{BASE}/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the output profile: [vh/live/nope] (404)",
                        "statusCode": 404}
    r = app.delete(f"{BASE}/default")
    assert r.status_code == 200
    assert r.json() == OK
    assert names(app) == ["bypass_profile"]
    r = app.get(f"{BASE}/default")
    assert r.json() == {"message": "[HTTP] Could not find the output profile: [vh/live/default] (404)",
                        "statusCode": 404}


def test_create_mixed_200_and_409_is_207_and_journals_one_addition(app: Api, service: KilnService) -> None:
    r = app.post(BASE, [SEED_PROFILE, VALID, {**VALID, "outputStreamName": "again"}])
    assert r.status_code == 207
    assert r.json() == [{"message": "OK", "response": SEED_PROFILE, "statusCode": 200},
                        {"message": "OK", "response": VALID, "statusCode": 200},
                        {"message": 'The output profile "ok" already exists', "statusCode": 409}]
    assert names(app) == ["default", "bypass_profile", "ok"]
    added = [event_of(rec) for rec in service.journal.read() if rec.type == "OutputProfilesAdded"]
    assert added == [ce.OutputProfilesAdded("vh", "live", [SEED_PROFILE, VALID])]
