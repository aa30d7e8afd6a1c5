"""The redaction rules of ``kiln/events/redact.py``: no secret survives, nothing else changes."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiln.events import registered_types
from kiln.events.redact import (
    MASK,
    SECRET_KEYS,
    SECRET_QUERY,
    Redactor,
    redact_push_destination,
    redact_streamid,
    redact_text,
    redact_url,
)

# secrets as people choose them: URL-safe, at least 3 characters, not made only of the mask's stars
secret_text = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"),
                      min_size=3, max_size=24)
plain_text = st.text(alphabet=st.sampled_from("abcdefghij klmnop/:.,-"), max_size=30)
hosts = st.sampled_from(["example.com", "10.0.0.7", "relay.example.com:9000", "[::1]:1935"])
query_names = st.sampled_from(sorted(SECRET_QUERY) + ["PassPhrase", "Signature"])


@pytest.mark.parametrize("url, shown", [
    ("srt://h:9000?passphrase=s3cr3t-pass&latency=200", "srt://h:9000?passphrase=***&latency=200"),
    ("rtsp://admin:hunter2@cam.local/stream1", "rtsp://admin:***@cam.local/stream1"),
    ("rtsp://viewer@cam.local/stream1", "rtsp://viewer@cam.local/stream1"),
    ("rtmp://h/app/s?policy=eyJ4IjoxfQ&signature=abc_DEF", "rtmp://h/app/s?policy=***&signature=***"),
    ("https://h/app/s/llhls.m3u8?Signature=x&other=1#frag", "https://h/app/s/llhls.m3u8?Signature=***&other=1#frag"),
    ("srt://h:1?streamid=srt%3A%2F%2Fh%2Fapp%2Fs%3Fsignature%3Dzz", "srt://h:1?streamid=srt%3A%2F%2Fh%2Fapp%2Fs%3Fsignature%3D***"),
    ("srt://h:1?streamid=app/stream&pbkeylen=16", "srt://h:1?streamid=app/stream&pbkeylen=16"),
    ("rtmp://h/app", "rtmp://h/app"),
])
def test_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("destination, shown", [
    ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl", "rtmp://a.rtmp.youtube.com/live2/***"),
    ("rtmps://h:443/app/inst/key?x=1", "rtmps://h:443/app/inst/***?x=1"),
    ("rtmp://h/app", "rtmp://h/app"),
    ("srt://h:9000/key?passphrase=pppppppppp", "srt://h:9000/***?passphrase=***"),
    ("udp://239.0.0.1:5000", "udp://239.0.0.1:5000"),
    ("tcp://h:5000/key", "tcp://h:5000/***"),
])
def test_push_destinations(destination: str, shown: str) -> None:
    assert redact_push_destination(destination) == shown


def test_streamids() -> None:
    assert redact_streamid("srt://h:9999/app/s?policy=p0l&signature=s1g") == "srt://h:9999/app/s?policy=***&signature=***"
    assert redact_streamid("srt%3A%2F%2Fh%2Fapp%2Fs%3Fsignature%3Ds1g") == "srt://h/app/s?signature=***"
    assert redact_streamid("#!::r=app/stream,m=publish") == "#!::r=app/stream,m=publish"


def test_known_secrets_are_masked_as_tokens_only() -> None:
    assert redact_text("connect to rtmp://h/live/f refused", ["f"]) == "connect to rtmp://h/live/*** refused"
    assert redact_text("key abc, abcd, xabc", ["abc"]) == "key ***, abcd, xabc"


@given(secret=secret_text, name=query_names, host=hosts, before=plain_text, after=plain_text)
def test_no_query_secret_survives(secret: str, name: str, host: str, before: str, after: str) -> None:
    url = f"srt://{host}/app/s?latency=20&{name}={secret}&mode=caller"
    shown = redact_text(f"{before} {url} {after}")
    assert f"{name}={MASK}" in shown and f"{name}={secret}" not in shown
    assert shown.startswith(before) and shown.endswith(after)


@given(secret=secret_text, user=secret_text, host=hosts)
def test_no_password_survives(secret: str, user: str, host: str) -> None:
    shown = redact_url(f"rtsp://{user}:{quote(secret)}@{host}/stream1")
    assert shown == f"rtsp://{user}:{MASK}@{host}/stream1"


@given(key=secret_text, host=hosts, app=secret_text)
def test_no_stream_key_survives_a_payload_or_a_later_reason(key: str, host: str, app: str) -> None:
    redactor = Redactor()
    created = redactor.payload({"url": f"rtmp://{host}/{app}", "stream_key": key, "id": "p"})
    assert created["stream_key"] == MASK
    reason = redactor.payload({"reason": f"the destination refused rtmp://{host}/{app}/{key}: bad key"})
    assert key not in str(reason["reason"]).replace(f"rtmp://{host}/{app}", "")


@given(secret=secret_text, key=st.sampled_from(["secretKey", "SecretKey", "secret_key", "passphrase", "streamKey",
                                                  "password", "accessToken"]))
def test_secret_keys_are_masked_at_any_depth(secret: str, key: str) -> None:
    payload = {"config": {"signedPolicy": {key: secret, "policyQueryKeyName": "policy"}, "list": [{key: secret}]}}
    shown = Redactor().payload(payload)
    assert shown == {"config": {"signedPolicy": {key: MASK, "policyQueryKeyName": "policy"}, "list": [{key: MASK}]}}


def test_a_key_equal_to_a_name_does_not_hide_the_name() -> None:
    redactor = Redactor()
    redactor.payload({"stream_key": "live"})
    assert redactor.payload({"app": "live", "reason": "push to rtmp://h/app/live failed"}) == {
        "app": "live", "reason": f"push to rtmp://h/app/{MASK} failed"}


def test_every_event_field_that_names_a_secret_is_in_the_table() -> None:
    """A new event with a secret-looking field must be covered by the table, or the test says which."""
    words = ("key", "secret", "passphrase", "password", "token", "signature")
    named = {f"{name}.{f.name}" for name, cls in registered_types().items() for f in dataclasses.fields(cls)
             if any(w in f.name.lower() for w in words)}
    uncovered = {n for n in named if n.split(".")[1].replace("_", "").lower() not in SECRET_KEYS}
    assert named and uncovered == set()


@given(secrets=st.lists(st.text(alphabet=st.sampled_from("ab1-_./"), min_size=1, max_size=6), min_size=1, max_size=8),
       glue=st.lists(st.text(alphabet=st.sampled_from("ab1-_ ./:?"), max_size=4), min_size=1, max_size=10),
       picks=st.lists(st.integers(min_value=0, max_value=7), max_size=10))
def test_the_redactors_index_finds_what_testing_every_secret_finds(secrets: list[str], glue: list[str],
                                                                   picks: list[int]) -> None:
    """The CLI's indexed lookup (fast with thousands of stream keys) masks exactly what the plain rule does."""
    redactor = Redactor()
    for secret in secrets:
        redactor.learn({"stream_key": secret})
    text = "".join(g + secrets[p % len(secrets)] for g, p in zip(glue, picks, strict=False)) + glue[-1]
    assert redactor.text(text) == redact_text(text, secrets)


def test_overlapping_secrets_mask_the_same_whichever_order_they_were_learned() -> None:
    """Found by the index property test: '.1' and '1.' overlap in '.1.'; set order decided which won."""
    redactor = Redactor()
    for secret in ["1", "11", "1.", ".1", "111"]:
        redactor.learn({"stream_key": secret})
    assert redactor.text(".1.") == redact_text(".1.", ["111", ".1", "1.", "11", "1"]) == "***."
