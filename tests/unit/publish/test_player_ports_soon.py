"""A player that asks for a stream's master playlist as soon as the API lists the stream's outputs: the stream
actor tells the LL-HLS and HLS v3 publishers a moment later (two actor hops), and in that moment the player got a
404 for a stream the API had just shown it. The player ports now wait (bounded) for a started stream on its way."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from kiln.media.publish.hls.publisher import HlsPublisher
from kiln.media.publish.hls.server import HlsServer
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.server import LlhlsServer
from kiln.media.stream.live import LiveStream
from tests.unit.actors.fakes import Stats
from tests.unit.publish.contract import BYPASS, LiveFeed
from tests.unit.transcode.clip import make_clip

APP = {"name": "app", "publishers": {"llhls": {"segmentDuration": 1, "chunkDuration": 0.5},
                                     "hls": {"segmentDuration": "1", "segmentCount": "2"}}}
HANDOVER_S = 0.3  # how late the stream's start reaches the publishers in these tests


class Hosts:
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        return "default", APP if app == "app" else None


class Registry:
    def __init__(self, streams: list[LiveStream]) -> None:
        self.streams = streams

    def in_app(self, vhost: str, app: str) -> Iterable[LiveStream]:
        return [s for s in self.streams if (s.vhost, s.app) == (vhost, app)]


@pytest.fixture
def feed() -> Iterator[LiveFeed]:
    feed = LiveFeed(BYPASS)
    yield feed
    feed.close()


def ask_as_it_appears(feed: LiveFeed, path: str, handed_over: bool = True) -> tuple[httpx.Response, float]:
    """GET ``path`` of the player port while the started stream ``cam`` is created in both publishers and handed
    to them HANDOVER_S later (never without ``handed_over``); the answer and how long it took."""

    async def run() -> tuple[httpx.Response, float]:
        loop = asyncio.get_running_loop()
        llhls, hls = LlhlsPublisher(stats=Stats()), HlsPublisher(Stats())
        llhls.attach(loop)
        hls.attach(loop)
        for publisher in (llhls, hls):
            publisher.stream_created(feed.live)
        await asyncio.sleep(0)  # the creation's hop onto the loop (it comes long before the start in Kiln)
        if handed_over:
            loop.call_later(HANDOVER_S, llhls.stream_started, feed.live, APP)
            loop.call_later(HANDOVER_S, hls.stream_started, feed.live, APP)
        server = LlhlsServer(llhls, Hosts(), Registry([feed.live]), Stats(), hls=HlsServer(hls, Stats()))
        transport = httpx.ASGITransport(app=server.starlette)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test:3333", timeout=30) as client:
                begun = time.monotonic()
                answer = await client.get(path)
                return answer, time.monotonic() - begun
        finally:
            for publisher in (llhls, hls):
                publisher.stream_ended(feed.live)
            await asyncio.sleep(0.01)
            llhls.close()
            hls.close()
            await asyncio.sleep(0.01)

    return asyncio.run(run())


def test_the_llhls_master_of_a_stream_on_its_way_is_served(feed: LiveFeed) -> None:
    answer, took = ask_as_it_appears(feed, "/app/cam/llhls.m3u8")
    assert answer.status_code == 200 and "#EXT-X-STREAM-INF" in answer.text, (answer.status_code, answer.text)
    assert took >= HANDOVER_S * 0.8


def test_the_hls_v3_master_of_a_stream_on_its_way_is_served(feed: LiveFeed) -> None:
    answer, took = ask_as_it_appears(feed, "/app/cam/ts:playlist.m3u8")
    assert answer.status_code == 200 and "#EXT-X-STREAM-INF" in answer.text, (answer.status_code, answer.text)
    assert took >= HANDOVER_S * 0.8


@pytest.mark.parametrize("path", ["/app/nope/llhls.m3u8", "/app/nope/ts:playlist.m3u8"])
def test_a_stream_nobody_publishes_is_404_at_once(feed: LiveFeed, path: str) -> None:
    answer, took = ask_as_it_appears(feed, path)
    assert answer.status_code == 404 and took < HANDOVER_S


def test_a_hls_v3_stream_that_never_reaches_the_publisher_is_given_up_after_the_timeout(feed: LiveFeed) -> None:
    async def run() -> tuple[bool, float]:
        hls = HlsPublisher(Stats())
        hls.attach(asyncio.get_running_loop())
        hls.stream_created(feed.live)
        begun = time.monotonic()
        found = await hls.find_soon("default", "app", "cam", timeout=0.3)
        hls.stream_ended(feed.live)
        hls.close()
        await asyncio.sleep(0.01)
        return found is not None, time.monotonic() - begun

    found, took = asyncio.run(run())
    assert not found and 0.25 < took < 2


def test_an_llhls_master_that_pulled_its_stream_waits_for_its_first_frames_not_201() -> None:
    """The request that pulls a stream on demand waits (bounded) until it plays, as before and as the HLS v3 door:
    a pulled stream is published as soon as its tracks are described, before its first frame, and the 201 a
    player gets for such a stream published here (OME's "not started") made ffprobe on an edge fail at once."""
    clip = make_clip(320, 180, seconds=2.0, fps=15, gop=15)
    live = LiveStream("default", "app", "cam", source_type="Ovt", source_url="", profiles=[BYPASS])
    for track in (clip.video, clip.audio):
        live.on_track(track)
    stop = threading.Event()

    def feed() -> None:
        if stop.wait(0.3):  # frames come a moment after the pull answered
            return
        for p in clip.packets:
            if stop.wait(p.duration / 1000 / 4 if p.duration else 0.01):
                return
            live.ingest(replace(p, arrival=time.monotonic()))

    feeder = threading.Thread(target=feed, daemon=True)

    class Origin:
        def __init__(self, llhls: LlhlsPublisher) -> None:
            self.llhls = llhls

        async def pull(self, vhost: str, app: str, stream: str, query: str = "") -> bool:
            self.llhls.stream_created(live)
            self.llhls.stream_started(live, APP)
            feeder.start()
            return True

    async def run() -> httpx.Response:
        llhls = LlhlsPublisher(stats=Stats())
        llhls.attach(asyncio.get_running_loop())
        server = LlhlsServer(llhls, Hosts(), Registry([]), Stats(), origins=Origin(llhls))
        transport = httpx.ASGITransport(app=server.starlette)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test:3333", timeout=30) as client:
                return await client.get("/app/cam/llhls.m3u8")
        finally:
            stop.set()
            llhls.stream_ended(live)
            await asyncio.sleep(0.01)
            llhls.close()

    try:
        answer = asyncio.run(run())
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(5)
        live.end("test over")
        live.transcoder.join(10)
    assert answer.status_code == 200 and "#EXT-X-STREAM-INF" in answer.text, (answer.status_code, answer.text)
