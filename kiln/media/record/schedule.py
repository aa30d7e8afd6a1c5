"""``schedule``: "second minute hour" with ``*``, ``n`` or ``*/n`` per field (rest-spec §10.5)."""

from __future__ import annotations

from datetime import datetime, timedelta


def _matches(field: str, value: int) -> bool:
    if field == "*":
        return True
    if field.startswith("*/"):
        step = int(field[2:])
        return step > 0 and value % step == 0 or step == 0 and value == 0
    return int(field) == value


def next_time(schedule: str, after: float) -> float:
    """The first wall-clock second strictly after ``after`` (Unix time) that the schedule names."""
    sec_f, min_f, hour_f = schedule.split()
    t = datetime.fromtimestamp(int(after)) + timedelta(seconds=1)
    for _ in range(2 * 24 * 3600):
        if _matches(hour_f, t.hour) and _matches(min_f, t.minute) and _matches(sec_f, t.second):
            return t.timestamp()
        if not _matches(hour_f, t.hour):
            t = (t + timedelta(hours=1)).replace(minute=0, second=0)
        elif not _matches(min_f, t.minute):
            t = (t + timedelta(minutes=1)).replace(second=0)
        else:
            t += timedelta(seconds=1)
    raise ValueError(f"schedule {schedule!r} never fires")
