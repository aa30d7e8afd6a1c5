"""OME's timestamp format: server-local time, milliseconds, numeric offset with a colon.

OME prints ``+00:00`` (never ``Z``) and shows a time that was never set as the Unix epoch in
local time, e.g. ``1970-01-01T09:00:00.000+09:00`` in KST.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TypeVar

EPOCH = 0.0
K = TypeVar("K")
V = TypeVar("V")


_FORMATTED: dict[tuple[float, int, int], str] = {}


def format_time(ts: float) -> str:
    """Format a Unix time (seconds, float) as OME does."""
    # the same few times (created, started, finished, the epoch) are shown again on every listing, and
    # formatting one took longer than the rest of a push's JSON: remembered per zone (tzset changes these)
    key = (ts, time.timezone, time.altzone)
    found = _FORMATTED.get(key)
    return found if found is not None else _remember(_FORMATTED, key, 4096, _format(ts))


_SECONDS: dict[tuple[int, int, int], tuple[str, str]] = {}


def _format(ts: float) -> str:
    whole = int(ts // 1)
    millis = int(round((ts - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    # each new task's created time is a new float, but many fall in the same second: its date and offset
    # (localtime + strftime, most of the cost) are remembered per second and zone
    key = (whole, time.timezone, time.altzone)
    parts = _SECONDS.get(key)
    if parts is None:
        parts = _remember(_SECONDS, key, 1024, _second(whole))
    return f"{parts[0]}.{millis:03d}{parts[1]}"


def _remember(cache: dict[K, V], key: K, limit: int, value: V) -> V:
    """Keep ``value`` under ``key``; a cache that reached ``limit`` starts again empty (bounded memory)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


def _second(whole: int) -> tuple[str, str]:
    # time.localtime, not datetime: freezegun's datetime.fromtimestamp ignores the local zone
    local = time.localtime(whole)
    offset = local.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local), f"{sign}{hours:02d}:{minutes:02d}"


def now() -> float:
    """The current Unix time; one place so freezegun and tests agree."""
    return time.time()


def parse_time(text: str) -> float:
    """Parse an ISO-8601 time (OME's format, or a date, or with ``Z``) into a Unix time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()
