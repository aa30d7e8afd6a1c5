"""``kiln sign URL --vhost V``: a signed URL from the configured SignedPolicy key (media spec §5)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from kiln.admission.signed_policy import SignedPolicyConfig, sign_url

DEFAULT_LIFETIME_S = 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the URL to sign, with an explicit port (rtmp://host:1935/app/stream)")
    parser.add_argument("--vhost", required=True, help="the virtual host whose SignedPolicy key signs")
    parser.add_argument("-c", "--config", help="OME Server.xml (default: the embedded default)")
    parser.add_argument("--expire", type=float, default=DEFAULT_LIFETIME_S,
                        help=f"url_expire, seconds from now (default {DEFAULT_LIFETIME_S})")
    parser.add_argument("--url-expire-ms", type=int, help="url_expire as epoch milliseconds (overrides --expire)")
    parser.add_argument("--activate", type=float, help="url_activate, seconds from now")
    parser.add_argument("--url-activate-ms", type=int, help="url_activate as epoch milliseconds")
    parser.add_argument("--stream-expire", type=float, help="stream_expire, seconds from now")
    parser.add_argument("--stream-expire-ms", type=int, help="stream_expire as epoch milliseconds")
    parser.add_argument("--allow-ip", help="allow_ip, an IPv4 CIDR such as 192.168.0.0/24")
    parser.add_argument("--real-ip", help="real_ip, an IPv4 CIDR matched against X-Real-IP/X-Forwarded-For")


def policy_from(args: argparse.Namespace, now_ms: int) -> dict[str, Any]:
    """The policy JSON in OME's key order; times in epoch milliseconds."""

    def at(ms: int | None, seconds: float | None) -> int | None:
        return ms if ms is not None else (now_ms + int(seconds * 1000) if seconds is not None else None)

    policy: dict[str, Any] = {"url_expire": at(args.url_expire_ms, args.expire)}
    for key, value in (("url_activate", at(args.url_activate_ms, args.activate)),
                       ("stream_expire", at(args.stream_expire_ms, args.stream_expire)),
                       ("allow_ip", args.allow_ip), ("real_ip", args.real_ip)):
        if value is not None:
            policy[key] = value
    return policy


def find_policy(vhosts: Sequence[Mapping[str, Any]], name: str) -> SignedPolicyConfig | str:
    """The vhost's SignedPolicy, or why there is none."""
    for vhost in vhosts:
        if vhost.get("name") == name:
            section = vhost.get("signedPolicy")
            if not isinstance(section, dict) or not section.get("secretKey"):
                return f"virtual host {name!r} has no SignedPolicy/SecretKey"
            return SignedPolicyConfig.parse(section)
    known = ", ".join(str(v.get("name")) for v in vhosts) or "none"
    return f"no virtual host {name!r} (configured: {known})"


def run(args: argparse.Namespace, vhosts: Sequence[Mapping[str, Any]], out: TextIO, err: TextIO) -> int:
    found = find_policy(vhosts, args.vhost)
    if isinstance(found, str):
        err.write(f"error: {found}\n")
        return 2
    if "://" not in args.url:
        err.write("error: the URL needs a scheme, host and port, e.g. rtmp://host:1935/app/stream\n")
        return 2
    out.write(sign_url(args.url, found, policy_from(args, int(time.time() * 1000))) + "\n")
    return 0
