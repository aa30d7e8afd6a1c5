"""HLS v3 through the LL-HLS port's router, fed by a real live output (H.264 + AAC): the master, the
media playlist and TS segments a player reads, CORS from ``HLS/CrossDomains``, Cache-Control like LL-HLS,
``hlsv3`` sessions; and the HLS stream under the publisher contract."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from kiln.media.publish.contract import Publisher
from kiln.media.publish.hls.publisher import SESSION_IDLE_SECONDS, HlsPublisher, Published
from kiln.media.publish.hls.server import HlsServer
from kiln.media.publish.hls.stream import HlsSettings, HlsStream
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.server import LlhlsServer
from kiln.media.stream.live import LiveStream
from tests.unit.publish.contract import BYPASS, LiveFeed, PublisherContract, wait_until

HLS_APP = {"name": "app", "publishers": {"llhls": {}, "hls": {
    "segmentDuration": "1", "segmentCount": "2", "crossDomains": {"urls": ["*"]}}}}


class Hosts:
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        return "default", {"app": HLS_APP, "plain": {"name": "plain", "publishers": {"llhls": {}}}}.get(app)


class NoPendingStreams:
    def in_app(self, vhost: str, app: str) -> Iterable[LiveStream]:
        return ()


class Stats:
    def __init__(self) -> None:
        self.bytes = 0
        self.connections: dict[tuple[str, str], int] = {}

    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None:
        self.bytes += n

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None:
        self.connections[(stream, kind)] = self.connections.get((stream, kind), 0) + delta


@pytest.fixture
def feed() -> Iterator[LiveFeed]:
    feed = LiveFeed(BYPASS)
    yield feed
    feed.close()


def _serve(feed: LiveFeed, stats: Stats, paths: list[str], headers: dict[str, str] | None = None,
           segments_first: int = 0) -> tuple[list[httpx.Response], HlsPublisher]:
    hls = HlsPublisher(stats)
    hls.stream_started(feed.live, HLS_APP)
    published = hls.find("default", "app", "cam")
    assert published is not None
    wait_until(lambda: all(len(s.segments) >= segments_first for _, s in published.stream.segmenters.values()),
               f"{segments_first} segments")

    async def run() -> list[httpx.Response]:
        server = LlhlsServer(LlhlsPublisher(stats), Hosts(), NoPendingStreams(), stats, hls=HlsServer(hls, stats))
        transport = httpx.ASGITransport(app=server.starlette)
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://kiln.test:3333") as client:
            for path in paths:
                if path.startswith("+"):  # a child of the previous answer: its last URI line
                    last = out[-1].text.strip().splitlines()[-1]
                    path = last if last.startswith("/") else f"/app/cam/{last}"
                out.append(await client.get(path, headers=headers or {}))
        return out

    try:
        return asyncio.run(run()), hls
    finally:
        hls.detach_all("test over")


def test_a_player_reads_master_media_playlist_and_a_keyframe_first_ts_segment(feed: LiveFeed) -> None:
    stats = Stats()
    (master, media, segment), hls = _serve(feed, stats, ["/app/cam/ts:playlist.m3u8", "+", "+"],
                                           {"origin": "https://player.test"}, segments_first=3)
    assert master.status_code == 200 and master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["cache-control"] == "no-cache, no-store"
    assert master.headers["access-control-allow-origin"] in ("*", "https://player.test")
    lines = master.text.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    assert lines[2].startswith("#EXT-X-STREAM-INF:") and 'CODECS="avc1.' in lines[2] and "mp4a.40.2" in lines[2]
    assert lines[3].startswith("/app/cam/medialist_v") and "_hls.m3u8?session=" in lines[3]

    assert media.status_code == 200 and media.headers["cache-control"] == "no-cache, no-store"
    entries = [x for x in media.text.splitlines() if x.startswith("seg_")]
    assert len(entries) == 2  # SegmentCount
    assert "#EXT-X-TARGETDURATION:" in media.text and "#EXT-X-ENDLIST" not in media.text

    assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp2t"
    assert "cache-control" not in segment.headers
    data = segment.content
    assert data[0] == 0x47 and len(data) % 188 == 0
    with av.open(io.BytesIO(data), format="mpegts") as ts:
        assert sorted(s.codec_context.name for s in ts.streams) == ["aac", "h264"]
        first_video = next(p for p in ts.demux(video=0) if p.size)
        assert first_video.is_keyframe
    assert stats.connections == {("cam", "hlsv3"): 1}  # one session: the master made it, children reuse it
    assert stats.bytes == len(master.content) + len(media.content) + len(data)


def test_format_ts_query_names_the_same_master(feed: LiveFeed) -> None:
    (master,), _ = _serve(feed, Stats(), ["/app/cam/playlist.m3u8?format=ts"])
    assert master.status_code == 200 and "medialist_v" in master.text


def test_unknown_files_and_streams_are_404(feed: LiveFeed) -> None:
    answers, _ = _serve(feed, Stats(), ["/app/cam/ts:nope.m3u8", "/app/other/ts:playlist.m3u8",
                                        "/app/cam/seg_v0a1_999999_hls.ts", "/app/cam/medialist_v9_hls.m3u8",
                                        "/app/cam/seg_v0a1_" + "9" * 5000 + "_hls.ts"])  # more than int() reads
    assert [r.status_code for r in answers] == [404, 404, 404, 404, 404]


def test_an_app_without_hls_keeps_the_404_with_its_reason(feed: LiveFeed) -> None:
    (r,), _ = _serve(feed, Stats(), ["/plain/cam/ts:playlist.m3u8"])
    assert r.status_code == 404
    assert r.text == ("HLS v3 (ts:) is not enabled for this application [default/plain]; "
                      "play LL-HLS instead: /plain/cam/llhls.m3u8")


def test_idle_sessions_end_and_take_their_count_back(feed: LiveFeed) -> None:
    stats = Stats()
    hls = HlsPublisher(stats)
    published = Published(feed.live, HlsStream(feed.output, HlsSettings()))
    first = hls.new_session(published)
    hls.new_session(published)
    assert stats.connections[("cam", "hlsv3")] == 2
    assert hls.touch(first.query.removeprefix("session="), published) is first
    assert hls.touch("garbage", published) is None
    for not_a_number in ("²_abc", "9" * 5000 + "_abc"):  # isdigit, but int refuses them: malformed, not a 500
        assert hls.touch(not_a_number, published) is None
    hls.reap(time.monotonic() + SESSION_IDLE_SECONDS + 1)
    assert stats.connections[("cam", "hlsv3")] == 0 and hls.sessions == {}


def test_an_id_a_player_brings_is_kept_but_does_not_move_the_counter(feed: LiveFeed) -> None:
    """A session id Kiln forgot (a restart) is adopted; the next new session skips ids in use. The counter used to
    jump past the adopted id: session=999999999999999999_x made every later id 19 digits, a session no request
    could name again (and, with 4,300 digits, every later player's request a 500)."""
    hls = HlsPublisher(Stats())
    published = Published(feed.live, HlsStream(feed.output, HlsSettings()))
    first = hls.new_session(published)
    assert hls.touch("999999999999999999_abcdefgh", published) is not None
    adopted = hls.touch(f"{first.id + 1}_abcdefgh", published)
    assert adopted is not None
    made = hls.new_session(published)
    assert made.id == first.id + 2 and hls.touch(made.query.removeprefix("session="), published) is made
    assert hls.touch(f"{adopted.id}_abcdefgh", published) is adopted


class TestHlsStreamContract(PublisherContract):
    """Bytes out are what players are served; ``use`` reads the newest segment as a player would."""

    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        return HlsStream(feed.output, HlsSettings(segment_duration=1.0, segment_count=3))

    def use(self, publisher: Publisher) -> None:
        assert isinstance(publisher, HlsStream)
        if publisher.attached:
            for _, seg in publisher.segmenters.values():
                listed = seg.listed()
                if listed:
                    publisher.counters.add(len(listed[-1].data))

    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        assert isinstance(publisher, HlsStream)
        settled = [s.segments for _, s in publisher.segmenters.values()]
        time.sleep(0.3)
        assert [s.segments for _, s in publisher.segmenters.values()] == settled, "segments cut after detach"
        assert all(s.finished for _, s in publisher.segmenters.values())


def test_stream_end_detaches_and_lists_endlist(feed: LiveFeed) -> None:
    hls = HlsPublisher(Stats())
    hls.stream_started(feed.live, HLS_APP)
    published = hls.find("default", "app", "cam")
    assert published is not None
    wait_until(lambda: published.stream.ready, "the first segment")
    hls.stream_ended(feed.live)
    assert hls.find("default", "app", "cam") is None and not published.stream.attached


TS_PROFILE = {
    "name": "bypass", "outputStreamName": "${OriginStreamName}",
    "encodes": {"videos": [{"name": "v", "bypass": "true"}], "audios": [{"name": "a", "bypass": "true"}]},
    "playlists": [
        {"name": "tv", "fileName": "tv", "options": {"enableTsPackaging": "true"},
         "renditions": [{"name": "full", "video": "v", "audio": "a"}, {"name": "radio", "audio": "a"},
                        {"name": "gone", "video": "nope", "audio": "a"}]},
        {"name": "ll", "fileName": "llonly", "options": {"enableTsPackaging": "false"},
         "renditions": [{"name": "full", "video": "v", "audio": "a"}]},
    ],
}


def test_output_profile_playlists_with_ts_packaging_are_served_as_hls_v3() -> None:
    feed = LiveFeed(TS_PROFILE)
    try:
        (tv, radio_list, llonly, default), _ = _serve(
            feed, Stats(), ["/app/cam/ts:tv.m3u8", "+", "/app/cam/llonly.m3u8?format=ts", "/app/cam/ts:playlist.m3u8"])
    finally:
        feed.close()
    assert tv.status_code == 200
    children = [ln for ln in tv.text.splitlines() if ln.startswith("/")]
    assert [c.split("?")[0] for c in children] == ["/app/cam/medialist_v0a1_hls.m3u8",
                                                   "/app/cam/medialist_a1_hls.m3u8"]
    assert 'CODECS="mp4a.40.2"' in tv.text.splitlines()[-2]  # the audio-only rendition, no RESOLUTION
    assert radio_list.status_code == 200 and "seg_a1_" in radio_list.text
    assert llonly.status_code == 404  # a playlist without EnableTsPackaging is LL-HLS only
    assert default.status_code == 200 and "medialist_v0a1_hls.m3u8" in default.text
