"""Wall-clock logic of recording: schedule boundaries and path macros, in a non-UTC zone."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time

from kiln.media.publish.record.paths import DEFAULT_FILE, MacroValues, container_for, expand, real_path
from kiln.media.publish.record.schedule import next_time
from kiln.timefmt import parse_time


@pytest.fixture(autouse=True)
def seoul(seoul_tz: None) -> None:
    """Every test here runs in Asia/Seoul (the shared fixture in tests/conftest.py)."""


def local(text: str) -> float:
    return parse_time(text + "+09:00")


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("*/3 * *", "2026-11-29T10:00:01", "2026-11-29T10:00:03"),
    ("*/3 * *", "2026-11-29T10:00:03", "2026-11-29T10:00:06"),
    ("0 */1 *", "2026-11-29T10:00:00", "2026-11-29T10:01:00"),
    ("10 */1 *", "2026-11-29T10:00:11", "2026-11-29T10:01:10"),
    ("0 0 */2", "2026-11-29T23:30:00", "2026-11-30T00:00:00"),
    ("0 30 9", "2026-11-29T10:00:00", "2026-11-30T09:30:00"),
])
def test_next_split_time_is_on_local_wall_clock(schedule: str, after: str, expected: str) -> None:
    with freeze_time("2026-11-29T01:00:00Z"):  # freezegun must not shift local-time logic
        assert next_time(schedule, local(after)) == local(expected)


def test_macros_use_local_time_and_sequence() -> None:
    values = MacroValues("tx1", "r1", "default", "app", "out", 3, local("2026-11-29T10:00:05"),
                         local("2026-11-29T10:00:07"))
    with freeze_time("2026-01-01T00:00:00Z"):
        assert expand(DEFAULT_FILE, values) == "tx1_default_app_out_20261129100005_20261129100007.ts"
        assert expand("${Id}/${SourceStream}_${Sequence}_${StartTime:hh-mm}.mp4", values) == "r1/out_3_10-00.mp4"
    assert expand("${Unknown}", values) == "${Unknown}"


def test_paths_and_containers(tmp_path: Path) -> None:
    assert real_path("/rec", "/a/b.mp4", tmp_path) == Path("/rec/a/b.mp4")
    assert real_path("", "a/b.ts", tmp_path) == tmp_path / "records" / "a/b.ts"
    assert real_path("", "/abs/b.ts", tmp_path) == Path("/abs/b.ts")
    assert [container_for(p) for p in ("x.mp4", "x.TS", "x.webm", "x.flv")] == ["mp4", "mpegts", "webm", "mpegts"]
