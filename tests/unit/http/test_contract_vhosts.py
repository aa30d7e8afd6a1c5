"""Contract: virtual hosts and certificate reloads (rest-spec §4, §5, §1.8, §1.11; seed 003)."""

from __future__ import annotations

from typing import Any

from tests.unit.http.conftest import Api

OK = {"message": "OK", "statusCode": 200}

# the seed's "Create Virtual Host" request element, renamed
SEED_VHOST: dict[str, Any] = {
    "name": "enterprise",
    "distribution": "ovenServer",
    "host": {"names": ["ome-dev.airensoft.com", "prod.airensoft.com"],
             "tls": {"certPath": "/etc/pki/airensoft.com/_airensoft_com.crt",
                     "chainCertPath": "/etc/pki/airensoft.com/_airensoft_com.ca-bundle",
                     "keyPath": "/etc/pki/airensoft.com/_airensoft_com.key"}},
    "signedPolicy": {"enables": {"providers": "rtmp,webrtc,srt", "publishers": "webrtc,llhls"},
                     "policyQueryKeyName": "policy", "secretKey": "aKq#1kj", "signatureQueryKeyName": "signature"},
    "admissionWebhooks": {"controlServerUrl": "https://control.server/admission",
                          "enables": {"providers": "rtmp,webrtc,srt", "publishers": "webrtc,llhls"},
                          "secretKey": "", "timeout": 3000},
    "origins": {"origin": [{"location": "/app/rtsp",
                            "pass": {"scheme": "rtsp", "urls": {"url": ["rtsp.server:8554/ca-01"]}}}]},
    "originMapStore": {"originHostName": "ome-dev.airensoft.com",
                       "redisServer": {"auth": "!@#ovenmediaengine", "host": "redis.server:6379"}},
}


def test_list_is_in_creation_order(api: Api) -> None:
    for name in ("zeta", "alpha", "mid"):
        assert api.post("/v1/vhosts", [{"name": name}]).status_code == 200
    assert api.get("/v1/vhosts").json() == {"message": "OK", "response": ["default", "zeta", "alpha", "mid"],
                                            "statusCode": 200}
    api.delete("/v1/vhosts/zeta")
    api.post("/v1/vhosts", [{"name": "zeta"}])
    assert api.get("/v1/vhosts").json()["response"] == ["default", "alpha", "mid", "zeta"]


def test_create_echoes_the_seed_vhost_and_get_returns_it(api: Api) -> None:
    r = api.post("/v1/vhosts", [SEED_VHOST, {"name": "free", "host": {"names": ["ovenmediaengine.com"]}}])
    assert r.status_code == 200
    assert r.json() == [{"message": "OK", "response": SEED_VHOST, "statusCode": 200},
                        {"message": "OK", "response": {"name": "free", "host": {"names": ["ovenmediaengine.com"]}},
                         "statusCode": 200}]
    assert api.get("/v1/vhosts/enterprise").json() == {"message": "OK", "response": SEED_VHOST, "statusCode": 200}


def test_config_vhost_get_has_no_applications(api: Api) -> None:
    assert api.get("/v1/vhosts/default").json() == {
        "message": "OK", "response": {"host": {"names": ["*"]}, "name": "default"}, "statusCode": 200}


def test_applications_in_the_body_are_created_but_not_echoed(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "v3", "applications": {"application": [{"name": "x", "type": "live"}]}}])
    assert r.json() == [{"message": "OK", "response": {"name": "v3"}, "statusCode": 200}]
    assert api.get("/v1/vhosts/v3").json() == {"message": "OK", "response": {"name": "v3"}, "statusCode": 200}
    assert api.get("/v1/vhosts/v3/apps").json() == {"message": "OK", "response": ["x"], "statusCode": 200}


def test_config_errors_per_element(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "h", "host": {}}])
    assert r.status_code == 400
    assert r.json() == [{"message": "[Config] virtualHost.host.names is not optional", "statusCode": 400}]
    r = api.post("/v1/vhosts", [{"name": "h", "host": {"names": ["*"], "bogus": 1}}])
    assert r.json() == [{"message": "[Config] Unknown item found: virtualHost.host.bogus", "statusCode": 400}]
    assert api.get("/v1/vhosts").json()["response"] == ["default"]


def test_mixed_200_and_400_is_207_and_only_the_good_one_exists(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "good"}, {"name": "bad", "nope": True}])
    assert r.status_code == 207
    assert r.json() == [{"message": "OK", "response": {"name": "good"}, "statusCode": 200},
                        {"message": "[Config] Unknown item found: virtualHost.nope", "statusCode": 400}]
    assert api.get("/v1/vhosts").json()["response"] == ["default", "good"]


def test_duplicate_within_one_request_is_409(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "twin"}, {"name": "twin"}])
    assert r.status_code == 207
    assert r.json() == [{"message": "OK", "response": {"name": "twin"}, "statusCode": 200},
                        {"message": "The virtual host already exists: [twin]", "statusCode": 409}]


def test_all_conflicts_answer_409_with_the_array(api: Api) -> None:
    r = api.post("/v1/vhosts", [{"name": "default"}, {"name": "default"}])
    assert r.status_code == 409
    assert r.json() == [{"message": "The virtual host already exists: [default]", "statusCode": 409}] * 2


def test_body_must_be_an_array(api: Api) -> None:
    expected = {"message": "[HTTP] Request body must be an array (400)", "statusCode": 400}
    for raw in (b"", b"{}", b'"x"', b"null", b"5"):
        r = api.post("/v1/vhosts", raw=raw)
        assert r.status_code == 400, raw
        assert r.json() == expected


def test_created_vhost_is_writable(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    r = api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    assert r.status_code == 200
    assert api.delete("/v1/vhosts/vh/apps/live").json() == OK


def test_get_unknown_vhost(api: Api) -> None:
    r = api.get("/v1/vhosts/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}


def test_delete_checks_404_then_403(api: Api) -> None:
    r = api.delete("/v1/vhosts/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = api.delete("/v1/vhosts/default")
    assert r.status_code == 403
    assert r.json() == {"message": "[HTTP] The VirtualHost is read-only: [default] (403)", "statusCode": 403}
    assert api.get("/v1/vhosts").json()["response"] == ["default"]


def test_delete_tears_down_apps(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    assert api.delete("/v1/vhosts/vh").json() == OK
    r = api.get("/v1/vhosts/vh/apps/live")
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [vh] (404)", "statusCode": 404}
    r = api.get("/v1/stats/current/vhosts/vh")
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [vh] (404)", "statusCode": 404}
    api.post("/v1/vhosts", [{"name": "vh"}])
    assert api.get("/v1/vhosts/vh/apps").json() == {"message": "OK", "response": [], "statusCode": 200}


# -- §5 certificate reloads --

def test_reload_all_certificates(api: Api) -> None:
    r = api.post("/v1/vhosts:reloadAllCertificates")
    assert r.status_code == 200
    assert r.json() == OK
    assert api.post("/v1/vhosts:reloadAllCertificates", {}).json() == OK


def test_reload_one_certificate_is_allowed_on_a_read_only_vhost(api: Api) -> None:
    assert api.post("/v1/vhosts/default:reloadCertificate").json() == OK
    assert api.post("/v1/vhosts/default:reloadAllCertificates").json() == OK


def test_reload_certificate_of_unknown_vhost(api: Api) -> None:
    r = api.post("/v1/vhosts/nope:reloadCertificate")
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}


def test_reload_failure_is_500_and_names_the_log(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "t", "host": {"names": ["*"], "tls": {"certPath": "/nonexistent/k.crt",
                                                                          "keyPath": "/nonexistent/k.key"}}}])
    expected = {"message": "[HTTP] Failed to reload certificate. Check server log for more information. (500)",
                "statusCode": 500}
    for path in ("/v1/vhosts/t:reloadCertificate", "/v1/vhosts:reloadAllCertificates"):
        r = api.post(path)
        assert r.status_code == 500, path
        assert r.json() == expected
    assert api.post("/v1/vhosts/default:reloadCertificate").json() == OK  # other vhosts unaffected


def test_reload_certificate_quirk_paths(api: Api) -> None:
    expected = {"message": "[HTTP] Could not find the virtual host regex group (500)", "statusCode": 500}
    assert api.post("/v1/vhosts:reloadCertificate").json() == expected
    assert api.get("/v1/vhosts:").json() == expected
