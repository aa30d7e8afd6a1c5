"""Startup replay progress: quiet for a short replay, a line per interval for a long one."""

from __future__ import annotations

import logging

import pytest

from kiln.replay_progress import with_progress


class Clock:
    """Advances a fixed step each time it is read: a replay that takes ``step`` per clock look."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_long_replay_logs_progress_and_passes_every_record_through(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiln.replay")
    out = list(with_progress(range(1, 10_001), 1, 10_000, seq_of=lambda r: r, interval=2.0, clock=Clock(1.0)))
    assert out == list(range(1, 10_001))
    lines = [r.getMessage() for r in caplog.records]
    progress = [line for line in lines if line.startswith("journal replay progress")]
    assert progress and progress[0].startswith("journal replay progress records=2048/10000 percent=20.5 seq=2048/10000")
    assert "rate=" in progress[0] and "eta=" in progress[0]
    assert lines[-1].startswith("journal replay done records=10000")


def test_a_short_replay_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kiln.replay")
    assert len(list(with_progress(range(500), 0, 499, seq_of=lambda r: r, clock=Clock(0.0001)))) == 500
    assert caplog.records == []
