"""OME's AdmissionWebhooks (media spec §6): a control server allows, denies, redirects or leases.

Each enabled session start is POSTed to ``ControlServerUrl`` as OME's JSON, signed with
``X-OME-Signature`` (base64url-without-padding HMAC-SHA1 of the raw body with ``SecretKey``); the
answer's ``allowed`` decides. An error, a timeout or a garbled answer denies, as in OME. Sessions
that end are reported with ``status: "closing"`` (500 ms, answer ignored). A breaker keeps a dead
control server from costing one timeout per connection. All I/O is httpx's async client, so one slow
answer delays only the session waiting for it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from kiln.admission.contract import LONGEST_LEASE_MS, AdmissionRequest, Direction, Verdict

log = logging.getLogger(__name__)

RULE = "AdmissionWebhooks"
DEFAULT_TIMEOUT_MS = 3000
CLOSING_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class WebhookConfig:
    control_server_url: str
    secret_key: str
    timeout_ms: int
    providers: frozenset[str]   # lower-case OME type names that are asked
    publishers: frozenset[str]

    @staticmethod
    def parse(section: Mapping[str, Any]) -> WebhookConfig:
        enables = section.get("enables") or {}
        try:
            timeout_ms = int(section.get("timeout") or DEFAULT_TIMEOUT_MS)
        except (TypeError, ValueError):
            timeout_ms = DEFAULT_TIMEOUT_MS
        return WebhookConfig(str(section.get("controlServerUrl") or ""), str(section.get("secretKey") or ""),
                             timeout_ms if timeout_ms > 0 else DEFAULT_TIMEOUT_MS,
                             _names(enables.get("providers") if isinstance(enables, dict) else None),
                             _names(enables.get("publishers") if isinstance(enables, dict) else None))

    def applies(self, protocol: str, direction: Direction) -> bool:
        names = self.providers if direction is Direction.INCOMING else self.publishers
        return protocol.lower() in names


def _names(value: object) -> frozenset[str]:
    items: list[object] = list(value.split(",")) if isinstance(value, str) else list(value) \
        if isinstance(value, list) else []
    return frozenset(str(v).strip().lower() for v in items if str(v).strip())


def ome_time(epoch_s: float) -> str:
    """OME's ISO8601: local time, milliseconds, numeric offset (``2025-01-01T12:00:00.000+09:00``)."""
    return datetime.datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="milliseconds")


def request_body(request: AdmissionRequest, status: str, epoch_s: float, new_url: str | None = None) -> bytes:
    """The JSON OME posts, keys in OME's order; ``new_url`` only on closing a redirected session."""
    client: dict[str, Any] = {"address": request.client[0], "port": request.client[1]}
    if request.real_ip:
        client["real_ip"] = request.real_ip
    if request.user_agent:
        client["user_agent"] = request.user_agent
    body: dict[str, Any] = {"direction": request.direction.value, "protocol": request.protocol,
                            "url": request.url}
    if new_url:
        body["new_url"] = new_url
    body["status"] = status
    body["time"] = ome_time(epoch_s)
    return json.dumps({"client": client, "request": body}).encode("utf-8")


def signature(secret_key: str, body: bytes) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), body, hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def parse_answer(status_code: int, body: bytes) -> Verdict:
    """The control server's answer as a verdict; anything but a 200 with a boolean ``allowed`` denies."""
    if status_code != 200:
        return Verdict.deny(f"control server answered HTTP {status_code}")
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Verdict.deny("control server answered invalid JSON")
    if not isinstance(answer, dict) or not isinstance(answer.get("allowed"), bool):
        return Verdict.deny("control server answer has no boolean 'allowed'")
    reason = answer.get("reason")
    reason = reason if isinstance(reason, str) else ""
    if not answer["allowed"]:
        return Verdict(False, reason or "denied by control server", record=True)
    new_url = answer.get("new_url")
    lifetime = answer.get("lifetime")
    lifetime_ms = lifetime if isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0 else 0
    lifetime_ms = min(lifetime_ms, LONGEST_LEASE_MS)  # 10**29 ms was journaled as is: msgpack stores 64 bits
    redirect = new_url if isinstance(new_url, str) and new_url else None
    # a redirect or a lease is journaled (AdmissionAllowed); a plain allow is only logged
    return Verdict(True, reason, new_url=redirect, lifetime_ms=lifetime_ms, record=bool(redirect or lifetime_ms))


class Breaker:
    """Opens after ``failures`` transport failures in a row; while open, requests are denied at once.

    After ``cooldown_s`` the next request is tried again (one probe); ``failures <= 0`` disables it.
    """

    def __init__(self, failures: int = 3, cooldown_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._count: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def is_open(self, url: str) -> bool:
        until = self._open_until.get(url)
        if until is None:
            return False
        if self.clock() >= until:
            del self._open_until[url]
            self._count[url] = self.failures - 1   # half open: one more failure re-opens it
            log.info("admission webhook breaker half-open url=%s", url)
            return False
        return True

    def failed(self, url: str) -> None:
        if self.failures <= 0:
            return
        self._count[url] = self._count.get(url, 0) + 1
        if self._count[url] >= self.failures and url not in self._open_until:
            self._open_until[url] = self.clock() + self.cooldown_s
            log.warning("admission webhook breaker open url=%s failures=%d cooldown_s=%.1f: sessions are denied "
                        "without asking", url, self._count[url], self.cooldown_s)

    def succeeded(self, url: str) -> None:
        if self._count.pop(url, 0):
            log.info("admission webhook breaker closed url=%s", url)


class WebhookSettings(Protocol):
    """Where a vhost's ``admissionWebhooks`` section is read, at request time."""

    def admission_webhooks(self, vhost: str) -> dict[str, Any] | None: ...


class WebhookCheck:
    """The AdmissionWebhooks check (after SignedPolicy in the admission step)."""

    name = RULE

    def __init__(self, settings: WebhookSettings, *, breaker: Breaker | None = None,
                 clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.breaker = breaker if breaker is not None else Breaker()
        self.clock = clock
        self.transport = transport
        self._redirects: dict[tuple[str, str, tuple[str, int]], str] = {}
        self._tls: ssl.SSLContext | None = None

    async def _tls_context(self) -> ssl.SSLContext:
        """The client TLS context every request shares, made once on a worker thread: a client made without
        one loads the CA bundle (about 25 ms of CPU) on the event loop, for every admission and closing."""
        if self._tls is None:
            self._tls = await asyncio.to_thread(httpx.create_ssl_context)
        return self._tls

    def _config(self, request: AdmissionRequest) -> WebhookConfig | None:
        section = self.settings.admission_webhooks(request.vhost)
        if not section:
            return None
        config = WebhookConfig.parse(section)
        if not config.control_server_url or not config.applies(request.protocol, request.direction):
            return None
        return config

    async def check(self, request: AdmissionRequest) -> Verdict:
        config = self._config(request)
        if config is None:
            return Verdict.allow()
        url = config.control_server_url
        if self.breaker.is_open(url):
            log.warning("admission webhook skipped: breaker open url=%s protocol=%s stream=%s/%s", url,
                        request.protocol, request.app, request.stream)
            return Verdict.deny("control server unreachable (breaker open)")
        body = request_body(request, "opening", self.clock())
        timeout_s = config.timeout_ms / 1000
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                status_code, answer = await self._post(url, config.secret_key, body, timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            self.breaker.failed(url)
            log.warning("admission webhook timed out url=%s timeout_ms=%d protocol=%s stream=%s/%s: denied", url,
                        config.timeout_ms, request.protocol, request.app, request.stream)
            return Verdict.deny(f"control server did not answer within {config.timeout_ms} ms")
        except httpx.HTTPError as exc:
            self.breaker.failed(url)
            log.warning("admission webhook failed url=%s error=%r protocol=%s stream=%s/%s: denied", url, exc,
                        request.protocol, request.app, request.stream)
            return Verdict.deny(f"control server unreachable: {exc}")
        self.breaker.succeeded(url)
        verdict = parse_answer(status_code, answer)
        log.info("admission webhook answered url=%s status=%d allowed=%s new_url=%s lifetime_ms=%d reason=%r "
                 "elapsed_ms=%d", url, status_code, verdict.allowed, verdict.new_url, verdict.lifetime_ms,
                 verdict.reason, (time.monotonic() - started) * 1000)
        if verdict.allowed and verdict.new_url:
            self._redirects[_key(request)] = verdict.new_url
        return verdict

    async def closed(self, request: AdmissionRequest) -> None:
        new_url = self._redirects.pop(_key(request), None)
        config = self._config(request)
        if config is None or self.breaker.is_open(config.control_server_url):
            return
        body = request_body(request, "closing", self.clock(), new_url)
        try:
            async with asyncio.timeout(CLOSING_TIMEOUT_S):
                await self._post(config.control_server_url, config.secret_key, body, CLOSING_TIMEOUT_S)
        except (TimeoutError, httpx.HTTPError) as exc:
            log.info("admission webhook closing notification not delivered url=%s error=%r",
                     config.control_server_url, exc)

    async def _post(self, url: str, secret_key: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "X-OME-Signature": signature(secret_key, body)}
        verify = await self._tls_context() if self.transport is None else True
        async with httpx.AsyncClient(timeout=timeout_s, transport=self.transport, verify=verify) as client:
            response = await client.post(url, content=body, headers=headers)
            return response.status_code, response.content


def _key(request: AdmissionRequest) -> tuple[str, str, tuple[str, int]]:
    return (request.protocol, request.url, request.client)
