"""Shared pytest setup: the peer fixtures plugin and Kiln-as-a-subprocess fixtures."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import freezegun
import pytest

# pytest times each phase with _pytest.timing's clocks; freezegun would freeze those too and --durations would
# print a frozen test's setup as decades long
freezegun.configure(extend_ignore_list=["_pytest.timing"])

pytest_plugins = ["tests.peers.fixtures"]


@pytest.fixture
def seoul_tz() -> Iterator[None]:
    """Run with a non-UTC local zone so timestamp offsets are visible (+09:00)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Seoul"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
