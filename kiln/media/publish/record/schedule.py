"""``schedule``: "second minute hour" with ``*``, ``n`` or ``*/n`` per field (rest-spec §10.5)."""

from __future__ import annotations

import time


def _matches(field: str, value: int) -> bool:
    if field == "*":
        return True
    if field.startswith("*/"):
        step = int(field[2:])
        return step > 0 and value % step == 0 or step == 0 and value == 0
    return int(field) == value


def next_time(schedule: str, after: float) -> float:
    """The first wall-clock second strictly after ``after`` (Unix time) that the schedule names.

    Local time via ``time.localtime`` (not datetime: freezegun's datetime ignores the zone)."""
    sec_f, min_f, hour_f = schedule.split()
    t = int(after) + 1
    for _ in range(3 * 24 * 3600):
        lt = time.localtime(t)
        if not _matches(hour_f, lt.tm_hour):
            t += 3600 - lt.tm_min * 60 - lt.tm_sec
        elif not _matches(min_f, lt.tm_min):
            t += 60 - lt.tm_sec
        elif _matches(sec_f, lt.tm_sec):
            return float(t)
        else:
            t += 1
    raise ValueError(f"schedule {schedule!r} never fires")
