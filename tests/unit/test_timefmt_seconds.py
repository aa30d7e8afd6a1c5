"""OME's time format with the per-second cache (kiln/timefmt.py): the same text as formatting each time in full,
across second boundaries, millisecond rounding up into the next second, and a change of the local zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln import timefmt


def in_full(ts: float) -> str:
    whole = int(ts // 1)
    millis = int(round((ts - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    local = time.localtime(whole)
    offset = local.tm_gmtoff or 0
    hours, minutes = divmod(abs(offset) // 60, 60)
    return (f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{millis:03d}{'-' if offset < 0 else '+'}"
            f"{hours:02d}:{minutes:02d}")


@pytest.fixture
def zone() -> Iterator[None]:
    before = os.environ.get("TZ")
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
def test_a_time_formats_as_in_full(ts: float) -> None:
    assert timefmt._format(ts) == in_full(ts)


def test_times_of_one_second_and_the_zone_changing(zone: None) -> None:
    base = 1_796_597_863.0
    for tz in ("UTC", "Asia/Seoul", "America/St_Johns"):
        os.environ["TZ"] = tz
        time.tzset()
        for ts in (base, base + 0.2214, base + 0.9996, base + 1.0004, 0.0):
            assert timefmt.format_time(ts) == in_full(ts), (tz, ts)
    assert timefmt.format_time(base + 0.9996).startswith("2026-12-06T19:27:44.000-03:30")
