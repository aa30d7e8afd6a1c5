"""SignedPolicy decisions with time passed in; URLs signed by the test's own OME signer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kiln.admission.contract import AdmissionRequest, Direction
from kiln.admission.signed_policy import SignedPolicyCheck, SignedPolicyConfig, decide, redact, sign_url
from tests.peers.ome_signer import (
    flip_signature_byte,
    ome_policy,
    ome_sign,
    ome_sign_raw,
    ome_signature_ok,
)

KEY = "aKq#1kj"
BASE = "rtmp://127.0.0.1:1935/app/stream"
NOW = 1_700_000_000_000
CONFIG = SignedPolicyConfig("policy", "signature", KEY, frozenset({"rtmp", "srt"}), frozenset({"llhls"}))


def request(url: str, client: str = "127.0.0.1", real_ip: str | None = None) -> AdmissionRequest:
    return AdmissionRequest("RTMP", Direction.INCOMING, url, (client, 50000), "default", "app", "stream",
                            real_ip=real_ip)


def verdict_for(policy: dict[str, Any], **kw: Any) -> Any:
    return decide(CONFIG, request(ome_sign(BASE, KEY, policy), **kw), NOW)


def test_signed_url_is_allowed_with_its_stream_expire() -> None:
    v = verdict_for({"url_expire": NOW + 60_000, "stream_expire": NOW + 90_000})
    assert v.allowed and v.stream_expire_ms == NOW + 90_000
    assert v.secrets == ("policy", "signature")


def test_other_query_parameters_are_signed_in_order() -> None:
    url = ome_sign(BASE + "?token=1&b=2", KEY, {"url_expire": NOW + 1})
    assert decide(CONFIG, request(url), NOW).allowed
    swapped = url.replace("token=1&b=2", "b=2&token=1")
    assert decide(CONFIG, request(swapped), NOW).reason == "signature does not match"


@pytest.mark.parametrize("url, reason", [
    (BASE, "no signature in the URL"),
    (BASE + "?signature=", "no signature in the URL"),
    (BASE + "?signature=abc", "no policy in the URL"),
])
def test_missing_parts_are_denied_in_omes_order(url: str, reason: str) -> None:
    v = decide(CONFIG, request(url), NOW)
    assert not v.allowed and v.reason == reason


def test_flipped_signature_byte_is_denied() -> None:
    url = flip_signature_byte(ome_sign(BASE, KEY, {"url_expire": NOW + 60_000}))
    assert decide(CONFIG, request(url), NOW).reason == "signature does not match"


def test_wrong_key_is_denied() -> None:
    url = ome_sign(BASE, "other", {"url_expire": NOW + 60_000})
    assert decide(CONFIG, request(url), NOW).reason == "signature does not match"


@pytest.mark.parametrize("policy, reason", [
    ({"url_activate": NOW}, "policy has no url_expire"),
    ({"url_expire": "soon"}, "policy url_expire is not an unsigned integer"),
    ({"url_expire": NOW}, f"url expired at {NOW}"),
    ({"url_expire": NOW + 10, "url_activate": NOW + 1}, f"url not active before {NOW + 1}"),
    ({"url_expire": NOW + 10, "stream_expire": NOW - 1}, f"stream expired at {NOW - 1}"),
    ({"url_expire": NOW + 10, "allow_ip": "10.0.0.0/8"}, "client 127.0.0.1 not in allow_ip 10.0.0.0/8"),
])
def test_policy_rules(policy: dict[str, Any], reason: str) -> None:
    v = verdict_for(policy)
    assert not v.allowed and v.reason == reason


def test_url_activate_reached_and_allow_ip_inside_pass() -> None:
    assert verdict_for({"url_expire": NOW + 10, "url_activate": NOW, "allow_ip": "127.0.0.0/24"}).allowed


def test_real_ip_uses_the_forwarded_address_else_the_peer() -> None:
    policy = {"url_expire": NOW + 10, "real_ip": "192.168.1.0/24"}
    assert verdict_for(policy, real_ip="192.168.1.7").allowed
    assert not verdict_for(policy).allowed


def test_policy_not_json_is_denied() -> None:
    url = ome_sign_raw(BASE + "?policy=bm90anNvbg", KEY)
    assert decide(CONFIG, request(url), NOW).reason == "policy is not base64url JSON"


def test_custom_query_names_and_case_insensitive_removal() -> None:
    config = SignedPolicyConfig("p", "sig", KEY, frozenset({"rtmp"}), frozenset())
    url = ome_sign(BASE, KEY, {"url_expire": NOW + 10}, "p", "sig").replace("&sig=", "&SIG=")
    assert decide(config, request(url), NOW).allowed


def test_kiln_signer_matches_the_independent_one() -> None:
    policy = {"url_expire": NOW + 10, "stream_expire": NOW + 5}
    signed = sign_url(BASE + "?x=1", CONFIG, policy)
    assert signed.startswith(BASE + "?x=1&policy=")
    assert ome_signature_ok(signed, KEY) and ome_policy(signed) == policy
    assert not ome_signature_ok(flip_signature_byte(signed), KEY)


def test_redact_hides_the_policy_and_signature_values() -> None:
    url = ome_sign(BASE + "?x=1", KEY, {"url_expire": 1})
    assert redact(url, ("policy", "signature")) == BASE + "?x=1&policy=***&signature=***"


class Policies:
    def __init__(self, section: dict[str, Any] | None) -> None:
        self.section = section

    def signed_policy(self, vhost: str) -> dict[str, Any] | None:
        return self.section


SECTION = {"policyQueryKeyName": "policy", "signatureQueryKeyName": "signature", "secretKey": KEY,
           "enables": {"providers": "rtmp,srt", "publishers": "llhls"}}


def test_check_applies_only_to_enabled_modules() -> None:
    check = SignedPolicyCheck(Policies(SECTION), clock=lambda: NOW / 1000)
    rtmp = request(BASE)
    hls = AdmissionRequest("LLHLS", Direction.OUTGOING, "http://h:3333/app/s/llhls.m3u8", ("127.0.0.1", 1),
                           "default", "app", "s")
    thumb = AdmissionRequest("Thumbnail", Direction.OUTGOING, "http://h:3333/app/s/thumb.jpg", ("127.0.0.1", 1),
                             "default", "app", "s")
    assert not asyncio.run(check.check(rtmp)).allowed
    assert not asyncio.run(check.check(hls)).allowed
    assert asyncio.run(check.check(thumb)).allowed
    assert asyncio.run(SignedPolicyCheck(Policies(None)).check(rtmp)).allowed


def test_enables_as_list_and_mixed_case() -> None:
    config = SignedPolicyConfig.parse({**SECTION, "enables": {"providers": ["RTMP"], "publishers": " LLHLS , x"}})
    assert config.applies("rtmp", Direction.INCOMING) and config.applies("LLHLS", Direction.OUTGOING)
    assert not config.applies("srt", Direction.INCOMING)
