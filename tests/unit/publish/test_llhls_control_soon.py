""":sendEvent and :concludeHlsLive right after a stream appears: the API lists the stream's outputs a moment
before its actor tells the LL-HLS publisher it started, so the checks wait (bounded) for a stream the publisher
knows is coming instead of answering that it has no LL-HLS output."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kiln.media.publish.llhls.control import LlhlsControl, inject_failed_text
from kiln.media.publish.llhls.events import parse_event
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from tests.unit.actors.fakes import Stats
from tests.unit.publish.contract import BYPASS, LiveFeed

LLHLS_APP = {"publishers": {"llhls": {"segmentDuration": 1, "chunkDuration": 0.5}}}
NO_LLHLS_APP: dict[str, Any] = {"publishers": {}}
ID3 = parse_event({"eventFormat": "id3v2", "events": [{"frameType": "TXXX", "info": "k", "data": "v"}]})


@pytest.fixture
def feed() -> Iterator[LiveFeed]:
    feed = LiveFeed(BYPASS)
    yield feed
    feed.close()


@pytest.fixture
def publisher() -> Iterator[LlhlsPublisher]:
    """An LL-HLS publisher on a loop of its own thread, as the service runs it (the supervisor asks from its)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    publisher = LlhlsPublisher(stats=Stats())

    async def attach() -> None:
        publisher.attach(loop)

    # attached before the test's first call, as the service attaches it before any stream: a publisher not yet
    # attached drops what it is told (stream_created), so a loop slow to run attach failed the tests under load
    asyncio.run_coroutine_threadsafe(attach(), loop).result(5)
    yield publisher

    async def close() -> None:
        publisher.close()
        await asyncio.sleep(0.01)  # the reaper's cancellation runs

    asyncio.run_coroutine_threadsafe(close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def created_then_started(publisher: LlhlsPublisher, feed: LiveFeed, app_config: dict[str, Any] | None,
                         after: float) -> None:
    """The stream exists (its outputs are listed); its start reaches the publisher ``after`` seconds later (never
    when ``app_config`` is None)."""
    publisher.stream_created(feed.live)
    if app_config is not None:
        config = app_config
        threading.Timer(after, lambda: publisher.stream_started(feed.live, config)).start()


def test_an_event_sent_as_the_stream_appears_is_taken(publisher: LlhlsPublisher, feed: LiveFeed) -> None:
    control = LlhlsControl(publisher)
    created_then_started(publisher, feed, LLHLS_APP, after=0.3)
    begun = time.monotonic()
    assert control.event_refusal(feed.live, ID3).result(5) is None
    assert 0.2 < time.monotonic() - begun < 3
    assert control.inject(feed.live, ID3).result(5) > 0
    publisher.stream_ended(feed.live)


def test_a_conclusion_asked_as_the_stream_appears_is_taken(publisher: LlhlsPublisher, feed: LiveFeed) -> None:
    control = LlhlsControl(publisher)
    created_then_started(publisher, feed, LLHLS_APP, after=0.3)
    assert control.can_conclude(feed.live).result(5) is True
    publisher.stream_ended(feed.live)


def test_an_app_without_llhls_is_refused_at_once(publisher: LlhlsPublisher, feed: LiveFeed) -> None:
    control = LlhlsControl(publisher)
    created_then_started(publisher, feed, NO_LLHLS_APP, after=0.05)
    begun = time.monotonic()
    assert control.event_refusal(feed.live, ID3).result(5) == inject_failed_text(feed.live)
    assert control.can_conclude(feed.live).result(5) is False
    assert time.monotonic() - begun < 2
    publisher.stream_ended(feed.live)


def test_a_stream_that_ends_before_it_starts_is_refused_once_it_ends(publisher: LlhlsPublisher,
                                                                    feed: LiveFeed) -> None:
    control = LlhlsControl(publisher)
    created_then_started(publisher, feed, None, after=0.0)
    threading.Timer(0.2, lambda: publisher.stream_ended(feed.live)).start()
    begun = time.monotonic()
    assert control.can_conclude(feed.live).result(5) is False
    assert 0.1 < time.monotonic() - begun < 3
