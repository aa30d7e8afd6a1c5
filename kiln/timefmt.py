"""OME's timestamp format: server-local time, milliseconds, numeric offset with a colon.

OME prints ``+00:00`` (never ``Z``) and shows a time that was never set as the Unix epoch in
local time, e.g. ``1970-01-01T09:00:00.000+09:00`` in KST.
"""

from __future__ import annotations

import time
from datetime import datetime

EPOCH = 0.0


def format_time(ts: float) -> str:
    """Format a Unix time (seconds, float) as OME does."""
    dt = datetime.fromtimestamp(ts).astimezone()
    offset = dt.strftime("%z") or "+0000"
    return f"{dt.strftime('%Y-%m-%dT%H:%M:%S')}.{dt.microsecond // 1000:03d}{offset[:3]}:{offset[3:]}"


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
