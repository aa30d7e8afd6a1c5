"""AdmissionWebhooks: OME's request JSON and signature, answer parsing, timeouts and the breaker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.admission.audit import JournalAudit
from kiln.admission.contract import LONGEST_LEASE_MS, AdmissionRequest, Direction
from kiln.admission.webhooks import Breaker, WebhookCheck, parse_answer, request_body, signature
from kiln.eventlog import EventLog
from kiln.journal import Journal, NewRecord

REQUEST = AdmissionRequest("RTMP", Direction.INCOMING, "rtmp://10.0.0.1:1935/app/stream?k=v", ("1.2.3.4", 50000),
                           "default", "app", "stream")
SECTION = {"controlServerUrl": "http://control.test/admission", "secretKey": "s3cret", "timeout": 300,
           "enables": {"providers": "rtmp,srt", "publishers": "llhls"}}


class Settings:
    def __init__(self, section: dict[str, Any] | None) -> None:
        self.section = section

    def admission_webhooks(self, vhost: str) -> dict[str, Any] | None:
        return self.section


def handler_answering(answer: Any, status: int = 200, seen: list[httpx.Request] | None = None,
                      delay: float = 0.0) -> httpx.MockTransport:
    async def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if delay:
            await asyncio.sleep(delay)
        content = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        return httpx.Response(status, content=content)
    return httpx.MockTransport(handle)


def test_request_body_is_omes_json() -> None:
    request = AdmissionRequest("LLHLS", Direction.OUTGOING, "http://h:3333/app/s/llhls.m3u8", ("5.6.7.8", 4000),
                               "default", "app", "s", real_ip="9.9.9.9", user_agent="curl/8")
    body = json.loads(request_body(request, "opening", 1_700_000_000.25))
    assert list(body) == ["client", "request"]
    assert body["client"] == {"address": "5.6.7.8", "port": 4000, "real_ip": "9.9.9.9", "user_agent": "curl/8"}
    assert list(body["request"]) == ["direction", "protocol", "url", "status", "time"]
    assert body["request"]["direction"] == "outgoing"
    assert body["request"]["protocol"] == "LLHLS"
    assert body["request"]["url"] == "http://h:3333/app/s/llhls.m3u8"
    assert body["request"]["status"] == "opening"
    assert body["request"]["time"][10] == "T" and body["request"]["time"][19:23] == ".250"
    assert body["request"]["time"][23] in "+-" and body["request"]["time"][26] == ":"


def test_closing_body_carries_the_redirect_and_omits_unknown_client_fields() -> None:
    body = json.loads(request_body(REQUEST, "closing", 0, new_url="rtmp://10.0.0.1:1935/app/other"))
    assert body["client"] == {"address": "1.2.3.4", "port": 50000}
    assert body["request"]["new_url"] == "rtmp://10.0.0.1:1935/app/other"
    assert body["request"]["status"] == "closing"


def test_signature_is_base64url_hmac_sha1_without_padding() -> None:
    body = b'{"a": 1}'
    expected = base64.urlsafe_b64encode(hmac.new(b"key", body, hashlib.sha1).digest()).decode().rstrip("=")
    assert signature("key", body) == expected
    assert "=" not in expected and len(expected) == 27


@pytest.mark.parametrize(("status", "body", "reason"), [
    (500, b'{"allowed": true}', "control server answered HTTP 500"),
    (200, b"not json", "control server answered invalid JSON"),
    (200, b'{"allowed": "yes"}', "control server answer has no boolean 'allowed'"),
    (200, b"[true]", "control server answer has no boolean 'allowed'"),
    (200, b'{"allowed": false}', "denied by control server"),
    (200, b'{"allowed": false, "reason": "banned"}', "banned"),
])
def test_answers_that_deny(status: int, body: bytes, reason: str) -> None:
    verdict = parse_answer(status, body)
    assert not verdict.allowed
    assert verdict.reason == reason


def test_an_allow_with_redirect_and_lifetime() -> None:
    verdict = parse_answer(200, b'{"allowed": true, "new_url": "rtmp://h:1935/app/x", "lifetime": 1500, '
                                b'"reason": "ok"}')
    assert (verdict.allowed, verdict.new_url, verdict.lifetime_ms, verdict.reason) == (
        True, "rtmp://h:1935/app/x", 1500, "ok")
    assert verdict.record
    plain = parse_answer(200, b'{"allowed": true, "lifetime": 0}')
    assert plain.allowed and plain.lifetime_ms == 0 and not plain.record
    assert parse_answer(200, b'{"allowed": true, "lifetime": "9"}').lifetime_ms == 0


@pytest.mark.parametrize("lifetime", [9007199254740991, 10**29])  # JavaScript's MAX_SAFE_INTEGER; beyond 64 bits
def test_a_lifetime_longer_than_a_century_is_a_century_and_is_journaled(lifetime: int, tmp_path: Path) -> None:
    """10**29 went into AdmissionAllowed as is; msgpack cannot store it, and that stopped the journal."""
    verdict = parse_answer(200, json.dumps({"allowed": True, "lifetime": lifetime}).encode())
    assert verdict.allowed and verdict.record and verdict.lifetime_ms == LONGEST_LEASE_MS
    journal = Journal.open(tmp_path, fsync=False)
    try:
        JournalAudit(EventLog(journal, NewRecord)).decided(REQUEST, "AdmissionWebhooks", verdict)
        [record] = list(journal.read(1))
        assert (record.type, record.payload["lifetime_ms"]) == ("AdmissionAllowed", LONGEST_LEASE_MS)
    finally:
        journal.close()


def test_check_posts_signed_json_and_follows_the_answer() -> None:
    seen: list[httpx.Request] = []
    check = WebhookCheck(Settings(SECTION), transport=handler_answering(
        {"allowed": True, "new_url": "rtmp://10.0.0.1:1935/app/b", "lifetime": 2000}, seen=seen))
    verdict = asyncio.run(check.check(REQUEST))
    assert verdict.allowed and verdict.new_url == "rtmp://10.0.0.1:1935/app/b" and verdict.lifetime_ms == 2000
    (sent,) = seen
    assert sent.method == "POST" and str(sent.url) == "http://control.test/admission"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["x-ome-signature"] == signature("s3cret", sent.content)
    assert json.loads(sent.content)["request"]["status"] == "opening"


def test_closing_notification_names_the_redirect() -> None:
    seen: list[httpx.Request] = []
    check = WebhookCheck(Settings(SECTION), transport=handler_answering(
        {"allowed": True, "new_url": "rtmp://10.0.0.1:1935/app/b"}, seen=seen))

    async def run() -> None:
        await check.check(REQUEST)
        await check.closed(REQUEST)
    asyncio.run(run())
    closing = json.loads(seen[1].content)["request"]
    assert closing["status"] == "closing" and closing["new_url"] == "rtmp://10.0.0.1:1935/app/b"
    assert seen[1].headers["x-ome-signature"] == signature("s3cret", seen[1].content)


def test_protocols_not_enabled_and_vhosts_without_webhooks_are_not_asked() -> None:
    seen: list[httpx.Request] = []
    transport = handler_answering({"allowed": False}, seen=seen)
    thumbnail = AdmissionRequest("Thumbnail", Direction.OUTGOING, "http://h/app/s/thumb.jpg", ("1.1.1.1", 1),
                                 "default", "app", "s")
    assert asyncio.run(WebhookCheck(Settings(SECTION), transport=transport).check(thumbnail)).allowed
    assert asyncio.run(WebhookCheck(Settings(None), transport=transport).check(REQUEST)).allowed
    srt = AdmissionRequest("srt", Direction.INCOMING, "srt://h:9999/app/s", ("1.1.1.1", 1), "default", "app", "s")
    assert not asyncio.run(WebhookCheck(Settings(SECTION), transport=transport).check(srt)).allowed
    assert len(seen) == 1


def test_a_slow_control_server_denies_after_the_timeout() -> None:
    check = WebhookCheck(Settings(SECTION), transport=handler_answering({"allowed": True}, delay=2.0))
    verdict = asyncio.run(check.check(REQUEST))
    assert not verdict.allowed
    assert verdict.reason == "control server did not answer within 300 ms"


def test_an_unreachable_control_server_denies() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)
    verdict = asyncio.run(WebhookCheck(Settings(SECTION), transport=httpx.MockTransport(refuse)).check(REQUEST))
    assert not verdict.allowed and verdict.reason.startswith("control server unreachable")


def test_breaker_opens_after_failures_in_a_row_and_probes_after_cooldown() -> None:
    now = [0.0]
    calls: list[int] = []

    async def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)
    check = WebhookCheck(Settings(SECTION), breaker=Breaker(2, 5.0, clock=lambda: now[0]),
                         transport=httpx.MockTransport(refuse))
    for _ in range(4):
        asyncio.run(check.check(REQUEST))
    assert len(calls) == 2
    last = asyncio.run(check.check(REQUEST))
    assert last.reason == "control server unreachable (breaker open)"
    now[0] = 6.0
    asyncio.run(check.check(REQUEST))
    assert len(calls) == 3            # one probe after the cooldown, which failed: open again
    asyncio.run(check.check(REQUEST))
    assert len(calls) == 3


def test_breaker_closes_when_the_control_server_answers() -> None:
    breaker = Breaker(2, 5.0, clock=lambda: 0.0)
    breaker.failed("u")
    breaker.succeeded("u")
    breaker.failed("u")
    assert not breaker.is_open("u")
    breaker.failed("u")
    assert breaker.is_open("u")
    assert not Breaker(0).is_open("u")
