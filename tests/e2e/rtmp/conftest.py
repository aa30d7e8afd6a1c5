"""Skip (or, with KILN_REQUIRE_PEERS=1, refuse to run) the RTMP e2e tests when ffmpeg is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS = ("ffmpeg", "timeout")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if Path(str(item.fspath)).parent == Path(__file__).parent]
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not ours or not missing:
        return
    if os.environ.get("KILN_REQUIRE_PEERS") == "1":
        raise pytest.UsageError(f"RTMP e2e peers missing: {', '.join(missing)}")
    for item in ours:
        item.add_marker(pytest.mark.skip(reason="RTMP e2e peers missing: " + ", ".join(missing)))


