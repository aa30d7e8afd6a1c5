"""`kiln serve` runs on uvloop unless KILN_EVENT_LOOP=asyncio says otherwise."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

from kiln.cli import event_loop_choice


def test_uvloop_is_the_default() -> None:
    name, factory = event_loop_choice({})
    assert name.startswith("uvloop")
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_the_escape_hatch_gives_the_standard_loop() -> None:
    name, factory = event_loop_choice({"KILN_EVENT_LOOP": " AsyncIO "})
    assert name == "asyncio"
    loop = factory()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()


def test_an_unknown_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KILN_EVENT_LOOP='tokio'"):
        event_loop_choice({"KILN_EVENT_LOOP": "tokio"})
    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "kiln.cli", "serve", "-d", str(data)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "KILN_EVENT_LOOP": "tokio"})
    assert done.returncode == 2
    assert "ERROR kiln KILN_EVENT_LOOP='tokio': expected one of uvloop, asyncio" in done.stderr
    assert not data.exists()  # refused before the journal was opened
