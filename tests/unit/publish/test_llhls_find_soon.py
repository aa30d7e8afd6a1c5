"""``:startHlsDump`` right after a stream appears: the API lists the stream's outputs a moment before its
actor tells the LL-HLS publisher it started, so the publisher's lookup waits for a stream it knows is
coming, and only for one that is (CI once got "Could not find LLHLS stream" in that moment)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from kiln.media.publish.llhls.publisher import LlhlsPublisher
from tests.unit.actors.fakes import Stats
from tests.unit.publish.contract import BYPASS, LiveFeed

LLHLS_APP = {"publishers": {"llhls": {"segmentDuration": 1, "chunkDuration": 0.5}}}
NO_LLHLS_APP: dict[str, Any] = {"publishers": {}}


@pytest.fixture
def feed() -> Iterator[LiveFeed]:
    feed = LiveFeed(BYPASS)
    yield feed
    feed.close()


async def lookup(feed: LiveFeed, app_config: dict[str, Any] | None, after: float,
                 timeout: float = 5.0) -> tuple[bool, float]:
    """find_soon for ``cam`` while the stream supervisor reports the start ``after`` seconds later
    (never when ``app_config`` is None); whether it was found and how long the lookup took."""
    loop = asyncio.get_running_loop()
    publisher = LlhlsPublisher(stats=Stats())
    publisher.attach(loop)
    try:
        publisher.stream_created(feed.live)
        if app_config is not None:
            loop.call_later(after, publisher.stream_started, feed.live, app_config)
        await asyncio.sleep(0)  # the creation hop onto the loop
        begun = loop.time()
        found = await publisher.find_soon("default", "app", "cam", "cam", timeout)
        return found is not None, loop.time() - begun
    finally:
        publisher.stream_ended(feed.live)
        await asyncio.sleep(0)
        publisher.close()


def test_a_stream_about_to_start_is_found_once_it_starts(feed: LiveFeed) -> None:
    found, took = asyncio.run(lookup(feed, LLHLS_APP, after=0.2))
    assert found and 0.15 < took < 2.0


def test_an_app_without_llhls_answers_at_once_not_after_the_wait(feed: LiveFeed) -> None:
    found, took = asyncio.run(lookup(feed, NO_LLHLS_APP, after=0.05))
    assert not found and took < 2.0


def test_a_stream_that_never_starts_is_given_up_after_the_timeout(feed: LiveFeed) -> None:
    found, took = asyncio.run(lookup(feed, None, after=0.0, timeout=0.3))
    assert not found and 0.25 < took < 2.0


def test_an_unknown_input_stream_is_not_waited_for() -> None:
    async def run() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        publisher = LlhlsPublisher(stats=Stats())
        publisher.attach(loop)
        begun = loop.time()
        found = await publisher.find_soon("default", "app", "cam", "cam", 5.0)
        publisher.close()
        return found is not None, loop.time() - begun

    found, took = asyncio.run(run())
    assert not found and took < 0.1


def test_a_stream_started_before_the_publisher_is_attached_is_published_once_it_is(feed: LiveFeed) -> None:
    """At startup the actor tree (resumed pulls, scheduled channels) runs before the service attaches the LL-HLS
    publisher to its loop; what it was told meanwhile was dropped, so such a stream never had LL-HLS (players
    got 404 for its whole life). It is now kept and done, in order, at attach."""
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        publisher = LlhlsPublisher(stats=Stats())
        publisher.stream_created(feed.live)  # before attach: a channel resumed as the actor tree starts
        publisher.stream_started(feed.live, LLHLS_APP)
        publisher.attach(loop)
        try:
            found = await publisher.find_soon("default", "app", "cam", "cam", 1.0)
            return found is not None and ("default", "app", "cam") not in publisher.pending
        finally:
            publisher.stream_ended(feed.live)
            await asyncio.sleep(0)
            publisher.close()

    assert asyncio.run(main())
