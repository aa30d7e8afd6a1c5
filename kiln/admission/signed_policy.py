"""OME's SignedPolicy (media spec §5): a URL signed with the vhost's secret carries its own policy.

The signature is base64url-without-padding of HMAC-SHA1(SecretKey, the URL without the signature
parameter, query kept byte for byte in order); the policy is base64url JSON with millisecond times.
``decide`` is pure (time passed in); :class:`SignedPolicyCheck` is the admission check reading the
vhost's ``signedPolicy`` through a small Protocol.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kiln.admission.contract import AdmissionRequest, Direction, Verdict
from kiln.events.redact import MASK  # the one mask the CLI and logs show too

log = logging.getLogger(__name__)

RULE = "SignedPolicy"


@dataclass(frozen=True)
class SignedPolicyConfig:
    policy_name: str
    signature_name: str
    secret_key: str
    providers: frozenset[str]    # lower-case OME type names that are checked
    publishers: frozenset[str]

    @staticmethod
    def parse(section: Mapping[str, Any]) -> SignedPolicyConfig:
        enables = section.get("enables") or {}
        return SignedPolicyConfig(
            str(section.get("policyQueryKeyName") or "policy"),
            str(section.get("signatureQueryKeyName") or "signature"),
            str(section.get("secretKey") or ""),
            _names(enables.get("providers")), _names(enables.get("publishers")))

    def applies(self, protocol: str, direction: Direction) -> bool:
        names = self.providers if direction is Direction.INCOMING else self.publishers
        return protocol.lower() in names

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.policy_name, self.signature_name)


def _names(value: object) -> frozenset[str]:
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = list(value)
    else:
        items = []
    return frozenset(str(v).strip().lower() for v in items if str(v).strip())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _split(url: str) -> tuple[str, list[str]]:
    base, sep, query = url.partition("?")
    return base, (query.split("&") if sep and query else [])


def _name(item: str) -> str:
    return item.partition("=")[0]


def query_value(url: str, name: str) -> str | None:
    """The last value of a query parameter (case-insensitive name), raw; None when absent."""
    found = None
    for item in _split(url)[1]:
        if _name(item).lower() == name.lower():
            found = item.partition("=")[2]
    return found


def without_param(url: str, name: str) -> str:
    """The URL with every ``name`` parameter removed, the rest of the query kept in order."""
    base, items = _split(url)
    kept = [item for item in items if _name(item).lower() != name.lower()]
    return f"{base}?{'&'.join(kept)}" if kept else base


def signature(url_without_signature: str, secret_key: str) -> str:
    digest = hmac.new(secret_key.encode(), url_without_signature.encode(), hashlib.sha1).digest()
    return b64url(digest)


def encode_policy(policy: Mapping[str, Any]) -> str:
    return b64url(json.dumps(dict(policy), separators=(",", ":")).encode())


def sign_url(url: str, config: SignedPolicyConfig, policy: Mapping[str, Any]) -> str:
    """``url`` with the policy appended and signed (any old policy/signature parameters dropped)."""
    bare = without_param(without_param(url, config.signature_name), config.policy_name)
    sep = "&" if "?" in bare else "?"
    with_policy = f"{bare}{sep}{config.policy_name}={encode_policy(policy)}"
    return f"{with_policy}&{config.signature_name}={signature(with_policy, config.secret_key)}"


def redact(url: str, names: tuple[str, ...]) -> str:
    """The URL with the values of ``names`` parameters replaced (for logs and the journal)."""
    lowered = {n.lower() for n in names}
    base, items = _split(url)
    if not items:
        return url
    out = [f"{_name(i)}={MASK}" if _name(i).lower() in lowered else i for i in items]
    return f"{base}?{'&'.join(out)}"


def _ms(policy: Mapping[str, Any], key: str) -> int | None:
    """A policy time; raises ValueError when present but not an unsigned integer."""
    value = policy.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} is not an unsigned integer")
    return value


def _in_cidr(address: str, cidr: object) -> bool:
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
        ip = ipaddress.ip_address(address.removeprefix("::ffff:"))
    except ValueError:
        return False
    return ip.version == network.version and ip in network


def decide(config: SignedPolicyConfig, request: AdmissionRequest, now_ms: int) -> Verdict:
    """OME's order: signature present, policy present, signature matches, policy is JSON,
    url_expire present and not past, url_activate reached, stream_expire not past, allow_ip, real_ip."""
    secrets = config.secrets

    def deny(reason: str) -> Verdict:
        return Verdict.deny(reason, secrets=secrets)

    given = query_value(request.url, config.signature_name)
    if not given:
        return deny(f"no {config.signature_name} in the URL")
    encoded = query_value(request.url, config.policy_name)
    if encoded is None:
        return deny(f"no {config.policy_name} in the URL")
    expected = signature(without_param(request.url, config.signature_name), config.secret_key)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return deny("signature does not match")
    try:
        policy = json.loads(b64url_decode(encoded))
    except (ValueError, binascii.Error):
        return deny("policy is not base64url JSON")
    if not isinstance(policy, dict):
        return deny("policy is not a JSON object")
    try:
        url_expire = _ms(policy, "url_expire")
        url_activate = _ms(policy, "url_activate")
        stream_expire = _ms(policy, "stream_expire")
    except ValueError as exc:
        return deny(f"policy {exc}")
    if url_expire is None:
        return deny("policy has no url_expire")
    if now_ms >= url_expire:
        return deny(f"url expired at {url_expire}")
    if url_activate is not None and now_ms < url_activate:
        return deny(f"url not active before {url_activate}")
    if stream_expire is not None and now_ms >= stream_expire:
        return deny(f"stream expired at {stream_expire}")
    if "allow_ip" in policy and not _in_cidr(request.client[0], policy["allow_ip"]):
        return deny(f"client {request.client[0]} not in allow_ip {policy['allow_ip']}")
    if "real_ip" in policy:
        real = request.real_ip or request.client[0]
        if not _in_cidr(real, policy["real_ip"]):
            return deny(f"real ip {real} not in real_ip {policy['real_ip']}")
    return Verdict(True, stream_expire_ms=stream_expire, secrets=secrets)


class SignedPolicies(Protocol):
    """Where the check reads a vhost's ``signedPolicy`` section (OME JSON; None: not configured)."""

    def signed_policy(self, vhost: str) -> Mapping[str, Any] | None: ...


class SignedPolicyCheck:
    """The SignedPolicy admission check: pure decisions, no I/O, so it answers at once."""

    name = RULE

    def __init__(self, policies: SignedPolicies, clock: Callable[[], float] = time.time) -> None:
        self.policies = policies
        self.clock = clock

    async def check(self, request: AdmissionRequest) -> Verdict:
        section = self.policies.signed_policy(request.vhost)
        if not section:
            return Verdict.allow()
        config = SignedPolicyConfig.parse(section)
        if not config.applies(request.protocol, request.direction):
            return Verdict.allow(secrets=config.secrets)
        return decide(config, request, int(self.clock() * 1000))

    async def closed(self, request: AdmissionRequest) -> None:
        return None
