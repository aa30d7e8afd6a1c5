"""App/vhost JSON validation with OME's messages, and the defaults OME fills on POST apps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kiln.config import load_default_config
from kiln.config.validate import (
    ConfigError,
    fill_app_defaults,
    parse_bitrate,
    validate_app_json,
    validate_vhost_json,
)
from tests.unit.config.samples import FULL_VHOST


def app(**extra: Any) -> dict[str, Any]:
    return {"name": "app", "type": "live", **extra}


def profile(*videos: dict[str, Any], audios: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    encodes: dict[str, Any] = {"videos": list(videos)}
    if audios is not None:
        encodes["audios"] = audios
    return {"outputProfile": [{"name": "p", "outputStreamName": "${OriginStreamName}", "encodes": encodes}]}


def message(check: Any, value: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        check(value)
    return str(info.value)


# --- fill_app_defaults -----------------------------------------------------------------------
def test_fill_defaults_for_a_bare_app_matches_ome() -> None:
    filled = fill_app_defaults({"name": "app", "type": "live"})
    assert filled["providers"] == {"ovt": {}, "rtspPull": {}, "webrtc": {}, "srt": {}, "rtmp": {}}
    assert filled["publishers"] == {"llhls": {}, "webrtc": {}, "ovt": {}}
    [prof] = filled["outputProfiles"]["outputProfile"]
    assert prof["name"] == "default" and prof["outputStreamName"] == "${OriginStreamName}"
    assert prof["encodes"]["videos"] == [{"name": "bypass_video", "bypass": True}]
    assert prof["encodes"]["audios"] == [
        {"name": "opus", "codec": "opus", "bitrate": 128000, "samplerate": 48000, "channel": 2,
         "bypassIfMatch": {"codec": "eq"}},
        {"name": "aac", "codec": "aac", "bitrate": 128000, "samplerate": 48000, "channel": 2,
         "bypassIfMatch": {"codec": "eq"}},
    ]
    validate_app_json(filled)


def test_fill_defaults_does_not_merge_given_sections_or_touch_the_input() -> None:
    given = app(publishers={"push": {}}, providers={})
    before = copy.deepcopy(given)
    filled = fill_app_defaults(given)
    assert filled["publishers"] == {"push": {}}
    assert filled["providers"] == {}
    assert "outputProfiles" in filled
    assert given == before
    filled["outputProfiles"]["outputProfile"][0]["name"] = "changed"
    assert fill_app_defaults(given)["outputProfiles"]["outputProfile"][0]["name"] == "default"


# --- application messages --------------------------------------------------------------------
def test_app_name_and_type_are_not_optional() -> None:
    assert message(validate_app_json, {"type": "live"}) == "application.name is not optional"
    assert message(validate_app_json, {"name": "app"}) == "application.type is not optional"
    assert message(validate_app_json, {"name": "app", "type": None}) == "application.type is not optional"


@pytest.mark.parametrize("value", ["Live", "broadcast", ""])
def test_unknown_app_type(value: str) -> None:
    assert message(validate_app_json, app(type=value)) == f"Unknown type: {value}"


def test_vod_is_a_known_type() -> None:
    validate_app_json(app(type="vod"))


def test_unknown_items_are_reported_with_their_dotted_path() -> None:
    assert message(validate_app_json, app(foo=1)) == "Unknown item found: application.foo"
    assert message(validate_app_json, app(dynamic=False)) == "Unknown item found: application.dynamic"
    assert (message(validate_app_json, app(publishers={"llhls": {"foo": "1"}}))
            == "Unknown item found: application.publishers.llhls.foo")
    assert (message(validate_app_json, app(outputProfiles=profile({"name": "v", "bypass": True, "gop": 1})))
            == "Unknown item found: application.outputProfiles.outputProfile.encodes.videos.gop")


def test_unknown_item_is_reported_before_a_missing_one() -> None:
    assert message(validate_app_json, {"foo": 1}) == "Unknown item found: application.foo"


def test_bitrate_required_when_not_bypassed() -> None:
    expected = "Bitrate must be specified when bypass is false"
    assert message(validate_app_json, app(outputProfiles=profile({"name": "v", "codec": "h264"}))) == expected
    assert message(validate_app_json, app(outputProfiles=profile({"name": "v", "bypass": "false"}))) == expected
    assert message(validate_app_json, app(outputProfiles=profile(
        {"name": "v", "bypass": True}, audios=[{"name": "a", "codec": "aac", "bitrate": 0}]))) == expected


def test_an_infinite_bitrate_is_no_bitrate() -> None:
    expected = "Bitrate must be specified when bypass is false"
    for bitrate in ("inf", "1e400", float("inf")):
        assert message(validate_app_json, app(outputProfiles=profile(
            {"name": "v", "codec": "h264", "bitrate": bitrate}))) == expected, bitrate


def test_bypassed_or_bitrated_encodes_pass_as_bools_ints_or_strings() -> None:
    validate_app_json(app(outputProfiles=profile({"name": "v", "bypass": True})))
    validate_app_json(app(outputProfiles=profile({"name": "v", "bypass": "true"})))
    validate_app_json(app(outputProfiles=profile({"name": "v", "codec": "h264", "bitrate": "2M"},
                                                 audios=[{"name": "a", "codec": "aac", "bitrate": 128000}])))


def test_output_profile_needs_stream_name() -> None:
    body = app(outputProfiles={"outputProfile": [{"name": "p", "encodes": {}}]})
    expected = "application.outputProfiles.outputProfile.outputStreamName is not optional"
    assert message(validate_app_json, body) == expected


def test_type_checked_before_later_sections() -> None:
    body = app(type="tv", outputProfiles=profile({"name": "v"}))
    assert message(validate_app_json, body) == "Unknown type: tv"


def test_wrong_json_kinds_are_rejected_clearly() -> None:
    assert message(validate_app_json, app(providers=[])) == "application.providers must be an object"
    assert (message(validate_app_json, app(outputProfiles={"outputProfile": {}}))
            == "application.outputProfiles.outputProfile must be an array")
    assert (message(validate_app_json, app(publishers={"llhls": {"segmentCount": {}}}))
            == "application.publishers.llhls.segmentCount must be a string, number or boolean")


# --- virtual host messages -------------------------------------------------------------------
def test_vhost_messages() -> None:
    assert message(validate_vhost_json, {"host": {"names": ["*"]}}) == "virtualHost.name is not optional"
    assert message(validate_vhost_json, {"name": "v", "foo": {}}) == "Unknown item found: virtualHost.foo"
    assert message(validate_vhost_json, {"name": "v", "host": {"tls": {}}}) == "virtualHost.host.names is not optional"
    assert (message(validate_vhost_json, {"name": "v", "origins": {"origin": [{"location": "/a/", "pass": {
        "scheme": "ovt", "urls": {"urls": ["x"]}}}]}})
        == "Unknown item found: virtualHost.origins.origin.pass.urls.urls")


def test_apps_inside_a_vhost_are_validated_as_applications() -> None:
    body = {"name": "v", "applications": {"application": [app(), {"name": "x", "type": "live", "bar": 1}]}}
    assert message(validate_vhost_json, body) == "Unknown item found: application.bar"
    body = {"name": "v", "applications": {"application": [{"name": "y"}]}}
    assert message(validate_vhost_json, body) == "application.type is not optional"


def test_seed_style_vhost_json_with_numbers_is_valid() -> None:
    validate_vhost_json({
        "name": "vhost", "host": {"names": ["a.example", "b.example"], "tls": {"certPath": "c", "keyPath": "k"}},
        "signedPolicy": {"enables": {"providers": "rtmp", "publishers": "llhls"}, "policyQueryKeyName": "policy",
                         "secretKey": "s", "signatureQueryKeyName": "signature"},
        "admissionWebhooks": {"controlServerUrl": "https://c/a", "secretKey": "", "timeout": 3000,
                              "enables": {"providers": "rtmp", "publishers": "llhls"}},
        "originMapStore": {"originHostName": "o", "redisServer": {"auth": "a", "host": "r:6379"}},
    })


def test_xml_loaded_configs_are_valid_vhost_json() -> None:
    validate_vhost_json(FULL_VHOST)
    for vhost in load_default_config().vhosts:
        validate_vhost_json(vhost)


@pytest.mark.parametrize(("value", "bits"), [("128000", 128000), ("500K", 512000), ("2M", 2097152),
                                             (64000, 64000), ("", None), ("fast", None), (True, None),
                                             # int() of an infinity raised OverflowError (the API's 500)
                                             ("inf", None), ("-inf", None), ("1e400", None), ("1e400K", None),
                                             (float("inf"), None), ("nan", None), (64000.9, 64000)])
def test_parse_bitrate(value: Any, bits: int | None) -> None:
    assert parse_bitrate(value) == bits
