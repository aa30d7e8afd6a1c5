"""Crash chaos at CI size: ~1,000 mixed API commands, >= 20 kill -9s, nothing acknowledged lost.

`make chaos` runs the same thing bigger (tests/chaos/runner.py).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from tests.chaos.runner import ChaosRun
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("KILN_CHAOS_KILLS", "20"))
COMMANDS = int(os.environ.get("KILN_CHAOS_COMMANDS", "1000"))


def test_kill9_under_mixed_commands_loses_nothing_acknowledged(tmp_path: Path, rtsp_source: RtspSource) -> None:
    seed = int(os.environ.get("KILN_CHAOS_SEED", random.randrange(1 << 30)))
    run = ChaosRun(tmp_path / "kiln", rtsp_source.url, seed=seed)
    report = run.run(KILLS, COMMANDS)
    summary = "\n".join([f"chaos seed={seed} (KILN_CHAOS_SEED={seed} replays it)", *report.lines()])
    sys.stdout.write(summary + "\n")
    assert report.kills >= KILLS and report.sent >= COMMANDS, summary
    assert report.lost == 0 and report.half == 0 and not report.problems, \
        summary + "\n" + "\n".join(report.problems[:30])
    # every kind of command was acknowledged at least once, so none of them went unchecked
    kinds = {"create vhost", "delete vhost", "create app", "delete app", "create profile", "delete profile",
             "start push", "stop push", "start record", "stop record", "create pull", "start dump",
             "create channel", "delete channel", "create mux", "delete mux"}
    assert kinds <= set(report.by_kind), summary
