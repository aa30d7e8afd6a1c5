"""What admission is asked, what one check answers, and what the step answers.

A check is anything with ``async check(request) -> Verdict`` and ``async closed(request)``; the step
runs them in order (SignedPolicy first, then AdmissionWebhooks), the first denial wins, redirects
and leases combine. Times are epoch milliseconds, as in OME's policies and webhooks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

# A lease longer than a century is no lease anyone means, and longer ones cannot be kept: a threading.Timer refuses
# waits beyond ~292 years (OverflowError in its thread) and the journal stores no int beyond 64 bits. Control
# servers say "for ever" with such numbers (JavaScript's Number.MAX_SAFE_INTEGER ms): they are taken as this long.
LONGEST_LEASE_MS = 100 * 365 * 24 * 3600 * 1000


class Direction(enum.Enum):
    INCOMING = "incoming"   # a publisher (provider side)
    OUTGOING = "outgoing"   # a player (publisher side)


@dataclass(frozen=True)
class AdmissionRequest:
    """One session asking to start. ``protocol`` is OME's type name (``RTMP``, ``SRT``, ``LLHLS``,
    ``Thumbnail``, ...); ``url`` is the full URL as OME signs it (explicit port, original query)."""

    protocol: str
    direction: Direction
    url: str
    client: tuple[str, int]
    vhost: str
    app: str
    stream: str
    real_ip: str | None = None      # X-Real-IP, else the first X-Forwarded-For item (HTTP only)
    user_agent: str | None = None

    @property
    def query(self) -> str:
        return urlsplit(self.url).query


@dataclass(frozen=True)
class Verdict:
    """One check's answer. ``secrets`` names query parameters whose values must never be journaled;
    ``record`` asks the audit to journal an allow too (denials are always journaled)."""

    allowed: bool
    reason: str = ""
    new_url: str | None = None
    lifetime_ms: int = 0                 # 0: unlimited
    stream_expire_ms: int | None = None  # epoch ms: the session is cut at this time
    secrets: tuple[str, ...] = ()
    record: bool = False

    @staticmethod
    def allow(*, secrets: tuple[str, ...] = ()) -> Verdict:
        return Verdict(True, secrets=secrets)

    @staticmethod
    def deny(reason: str, *, secrets: tuple[str, ...] = ()) -> Verdict:
        return Verdict(False, reason, secrets=secrets)


class Check(Protocol):
    """One admission rule of a vhost (SignedPolicy, AdmissionWebhooks)."""

    name: str  # the rule's name in logs and journal events, e.g. "SignedPolicy"

    async def check(self, request: AdmissionRequest) -> Verdict:
        """Allow, deny, redirect or lease. Must not block the event loop (run blocking I/O elsewhere)."""
        ...

    async def closed(self, request: AdmissionRequest) -> None:
        """The admitted session ended (webhooks send their closing notification)."""
        ...


@dataclass(frozen=True)
class Admission:
    """The step's answer: the first denial, or an allow with the redirect and the earliest deadline."""

    allowed: bool
    reason: str = ""
    rule: str = ""                 # the check that denied ("" when allowed)
    new_url: str | None = None
    deadline_ms: int | None = None  # epoch ms after which the session is cut (None: never)
    secrets: tuple[str, ...] = field(default=())

    def seconds_left(self, now_ms: int) -> float | None:
        """Seconds until the deadline (never negative), None without one."""
        if self.deadline_ms is None:
            return None
        return min(max(0.0, (self.deadline_ms - now_ms) / 1000), LONGEST_LEASE_MS / 1000)

    def expired(self, now_ms: int) -> bool:
        return self.deadline_ms is not None and now_ms >= self.deadline_ms


ALLOWED = Admission(True)


class Admitter(Protocol):
    """What an ingest or publisher needs: ask once at start, report the end."""

    async def admit(self, request: AdmissionRequest) -> Admission: ...

    async def closed(self, request: AdmissionRequest) -> None: ...


class OpenDoor:
    """The admitter of a server without access control (and of tests that do not exercise it)."""

    async def admit(self, request: AdmissionRequest) -> Admission:
        return ALLOWED

    async def closed(self, request: AdmissionRequest) -> None:
        return None
