"""Origins resolution (media spec §4.1) and OriginMapStore values, pure."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.media.origins.map_store import parse_origin_url, store_config
from kiln.media.origins.rules import parse_rules, resolve


def origins(*rules: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"properties": props, "origin": list(rules)}


def rule(location: str, scheme: str, *urls: str, **extra: Any) -> dict[str, Any]:
    return {"location": location, "pass": {"scheme": scheme, "urls": {"url": list(urls)}, **extra.pop("pass_", {})},
            **extra}


def test_prefix_location_rewrites_the_url_as_ome_does() -> None:
    found = resolve(origins(rule("/edge_app/", "OVT", "origin:9000/origin_app/")), "edge_app", "stream")
    assert found is not None and found.urls == ["ovt://origin:9000/origin_app/stream"]
    assert found.cause == "Origins rule location=/edge_app/ scheme=ovt"
    assert found.properties == {"persistent": False, "noInputFailoverTimeoutMs": 3000,
                                "unusedStreamDeletionTimeoutMs": 60000, "retryCount": 1}


def test_first_match_in_file_order_and_strict_location() -> None:
    config = origins(rule("/app/cam", "rtsp", "cam:554/live", strictLocation="true"),
                     rule("/app/", "ovt", "o1:9000/app/", "o2:9000/app/"))
    assert resolve(config, "app", "cam").urls == ["rtsp://cam:554/live"]  # type: ignore[union-attr]
    assert resolve(config, "app", "cam2").urls == [  # type: ignore[union-attr]
        "ovt://o1:9000/app/cam2", "ovt://o2:9000/app/cam2"]
    assert resolve(config, "other", "cam") is None


def test_query_of_the_url_is_kept_and_the_viewers_is_forwarded_unless_disabled() -> None:
    config = origins(rule("/app/", "ovt", "o:9000/app/?token=1"))
    assert resolve(config, "app", "s", "a=b").urls == ["ovt://o:9000/app/s?token=1&a=b"]  # type: ignore[union-attr]
    config = origins(rule("/app/", "ovt", "o:9000/app/", pass_={"forwardQueryParams": "false"}))
    assert resolve(config, "app", "s", "a=b").urls == ["ovt://o:9000/app/s"]  # type: ignore[union-attr]


def test_properties_from_xml_strings_and_persistent_per_origin() -> None:
    config = origins(rule("/app/", "ovt", "o:9000/app/", persistent="true"), noInputFailoverTimeout="500",
                     unusedStreamDeletionTimeout="2000", retryCount="3")
    assert resolve(config, "app", "s").properties == {  # type: ignore[union-attr]
        "persistent": True, "noInputFailoverTimeoutMs": 500, "unusedStreamDeletionTimeoutMs": 2000, "retryCount": 3}


def test_failback_is_per_origin_and_its_timeout_per_vhost() -> None:
    config = origins(rule("/a/", "ovt", "o1/a/", "o2/a/", failback="true"), rule("/b/", "ovt", "o1/b/"),
                     streamFailbackTimeout="1500")
    assert resolve(config, "a", "s").properties == {  # type: ignore[union-attr]
        "persistent": False, "noInputFailoverTimeoutMs": 3000, "unusedStreamDeletionTimeoutMs": 60000,
        "retryCount": 1, "failback": True, "streamFailbackTimeoutMs": 1500}
    assert "failback" not in resolve(config, "b", "s").properties  # type: ignore[union-attr]
    default = origins(rule("/a/", "ovt", "o1/a/", "o2/a/", failback="true"))
    assert resolve(default, "a", "s").properties["streamFailbackTimeoutMs"] == 3000  # type: ignore[union-attr]


def test_failback_is_taken_from_origins_and_the_journal_not_from_an_api_body() -> None:
    from kiln.media.ingest.rtsp.properties import parse_pull_properties, properties_from_json

    body = {"properties": {"retryCount": 1, "failback": True, "streamFailbackTimeoutMs": 1500}}
    api = parse_pull_properties(body)  # OME's POST …/streams has no failback: ignored, as OME ignores it
    assert (api.failback, api.failback_interval_s) == (False, 3.0)
    assert "failback" not in api.as_json()
    origin = parse_pull_properties(body, origins=True)
    assert (origin.failback, origin.failback_interval_s) == (True, 1.5)
    assert properties_from_json(origin.as_json()) == origin  # a restart of the edge keeps failing back


def test_relay_is_the_origins_own_and_only_when_given() -> None:
    from kiln.media.ingest.rtsp.properties import parse_pull_properties, properties_from_json

    config = origins(rule("/a/", "ovt", "o/a/", relay="false"), rule("/b/", "ovt", "o/b/", relay="true"),
                     rule("/c/", "ovt", "o/c/"))
    props = [resolve(config, app, "s").properties for app in "abc"]  # type: ignore[union-attr]
    assert [p.get("relay") for p in props] == [False, True, None]
    source = parse_pull_properties({"properties": props[0]}, origins=True)
    assert source.relay is False and properties_from_json(source.as_json()) == source
    assert parse_pull_properties({"properties": {"relay": False}}).relay is None  # OME's API has no relay
    assert "relay" not in parse_pull_properties({"properties": props[2]}, origins=True).as_json()


@pytest.mark.parametrize("bad", [
    None, "text", {"origin": "x"}, origins(rule("/app/", "http", "o/app/")), origins(rule("app/", "ovt", "o/a/")),
    origins({"location": "/app/", "pass": {"scheme": "ovt"}}), origins({"location": "/app/"}),
])
def test_unusable_origins_are_ignored(bad: Any) -> None:
    assert parse_rules(bad) == [] and resolve(bad, "app", "s") is None


def test_map_store_values_must_be_ovt_urls() -> None:
    assert parse_origin_url(b"ovt://10.0.0.1:9000/app/s") == "ovt://10.0.0.1:9000/app/s"
    for bad in (b"this is not a url", b"http://h/app/s", b"ovt://h/app", b"ovt://h:x/app/s", b"\xff", 3, None):
        assert parse_origin_url(bad) is None


def test_map_store_config() -> None:
    config = store_config({"originMapStore": {"redisServer": {"host": "redis:6379", "auth": "pw"},
                                              "originHostName": "o1.example"}})
    assert config is not None and (config.host, config.port, config.auth, config.origin_host_name) == (
        "redis", 6379, "pw", "o1.example")
    assert store_config({"originMapStore": {"redisServer": {"host": "redis"}}}) is None
    assert store_config({}) is None
    for port in ("\u00b2", "9" * 5000, "0", "65536"):  # an API-created vhost's JSON: int() refused the first two
        assert store_config({"originMapStore": {"redisServer": {"host": f"redis:{port}"}}}) is None, port


def test_the_redis_password_in_a_vhosts_config_is_masked_in_journal_output() -> None:
    from kiln.events.redact import MASK, Redactor

    config = {"name": "v", "originMapStore": {"redisServer": {"host": "r:6379", "auth": "hunter2"}}}
    shown = Redactor().payload({"config": config})
    assert shown["config"]["originMapStore"]["redisServer"] == {"host": "r:6379", "auth": MASK}  # type: ignore[index]


def test_relay_on_any_origin_is_run_so_nothing_is_warned() -> None:
    """Relay=true on an RTSP Origin is built (the pull is served as it comes): no Origin setting is warned."""
    from kiln.config.unimplemented import VHOST_ROWS

    vhost = {"origins": {"properties": {"streamFailbackTimeout": "3000"},
                         "origin": [rule("/a/", "ovt", "o/a/"), rule("/c/", "rtsp", "cam/c", relay="true"),
                                    rule("/b/", "ovt", "o/b/", failback="true", relay="false"),
                                    rule("/d/", "rtsp", "cam/d", relay="false")]}}
    assert [r.element for r in VHOST_ROWS if r.present(vhost)] == []
    assert [resolve(vhost["origins"], app, "s").properties.get("relay") for app in "abcd"] == [  # type: ignore[union-attr]
        None, False, True, False]
