"""Fixtures the task actors' tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.publish.contract import BYPASS, LiveFeed


@pytest.fixture
def feed() -> Iterator[LiveFeed]:
    """A live ``default/app/cam`` with its output stream ``cam``, closed after the test."""
    feed = LiveFeed(BYPASS)
    yield feed
    feed.close()
