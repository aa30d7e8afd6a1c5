"""HLS v3 DVR (``HLS/DVR``): the media playlist lists up to MaxDuration; segments older than the live
window keep only their listing facts in memory, their bytes live in the LL-HLS DvrStore's files, are
served from there, deleted when they leave the window and when the stream ends."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from kiln.media.publish.hls.publisher import HlsPublisher, settings_from
from kiln.media.publish.hls.segmenter import SPARE_SEGMENTS, TsSegment, TsSegmenter
from kiln.media.publish.hls.server import HlsServer
from kiln.media.publish.llhls.dvr import DEFAULT_MAX_DURATION, DEFAULT_TEMP_STORAGE
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.server import LlhlsServer
from tests.unit.publish.contract import BYPASS, LiveFeed
from tests.unit.publish.test_hls_segmenter import AUDIO, VIDEO, RecordingMuxer, feed
from tests.unit.publish.test_hls_v3 import NoPendingStreams, Stats


def dvr_segmenter(window: float, spilled: list[TsSegment], dropped: list[TsSegment]) -> TsSegmenter:
    return TsSegmenter(VIDEO.id, frozenset({VIDEO.id, AUDIO.id}), 2.0, 2, RecordingMuxer, dvr_window=window,
                       on_spill=spilled.append, on_drop=dropped.append)


def test_the_playlist_lists_the_dvr_window_and_older_bytes_are_spilled() -> None:
    spilled: list[TsSegment] = []
    dropped: list[TsSegment] = []
    seg = dvr_segmenter(9.0, spilled, dropped)
    feed(seg, 31)  # 15 segments of 2 s are finished
    listed = seg.listed()
    assert [s.number for s in listed] == [11, 12, 13, 14]  # 8 s <= MaxDuration 9 s < 10 s
    live = 2 + SPARE_SEGMENTS
    assert all(s.data and not s.spilled for s in seg.segments[-live:])
    assert all(s.spilled and s.data == b"" for s in seg.segments[:-live])
    # every segment that left the live window was handed over once, with its bytes
    assert [s.number for s in spilled] == list(range(0, 14 - live + 1))
    assert all(s.data.decode().startswith("k0@") for s in spilled)
    # the DVR window plus SPARE_SEGMENTS stay retained; older ones were dropped, each once
    assert [s.number for s in seg.segments] == list(range(11 - SPARE_SEGMENTS, 15))
    assert [s.number for s in dropped] == list(range(0, 11 - SPARE_SEGMENTS))
    assert all(s.spilled for s in dropped)


def test_a_window_shorter_than_segment_count_still_lists_segment_count() -> None:
    spilled: list[TsSegment] = []
    seg = dvr_segmenter(1.0, spilled, [])
    feed(seg, 21)
    assert [s.number for s in seg.listed()] == [8, 9]
    assert spilled == []  # the live window keeps its bytes in memory


def test_without_dvr_nothing_spills_and_segment_count_is_listed() -> None:
    seg = TsSegmenter(VIDEO.id, frozenset({VIDEO.id, AUDIO.id}), 2.0, 2, RecordingMuxer)
    feed(seg, 31)
    assert [s.number for s in seg.listed()] == [13, 14]
    assert len(seg.segments) == 2 + SPARE_SEGMENTS and not any(s.spilled for s in seg.segments)


def test_dvr_settings_come_from_the_hls_section_with_ome_defaults() -> None:
    assert not settings_from({}).dvr.enabled
    on = settings_from({"dvr": {"enable": "true"}}).dvr
    assert on.enabled and on.temp_storage_path == DEFAULT_TEMP_STORAGE and on.max_duration == DEFAULT_MAX_DURATION
    custom = settings_from({"dvr": {"enable": "true", "tempStoragePath": "/x", "maxDuration": "60"}}).dvr
    assert (custom.temp_storage_path, custom.max_duration) == ("/x", 60.0)


@pytest.fixture
def live() -> Iterator[LiveFeed]:
    fed = LiveFeed(BYPASS)
    yield fed
    fed.close()


def dvr_app(root: Path, max_duration: int = 60) -> dict[str, Any]:
    return {"name": "app", "publishers": {"llhls": {}, "hls": {
        "segmentDuration": "1", "segmentCount": "2",
        "dvr": {"enable": "true", "tempStoragePath": str(root), "maxDuration": str(max_duration)}}}}


class Hosts:
    def __init__(self, app: dict[str, Any]) -> None:
        self.app = app

    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        return "default", self.app if app == "app" else None


def test_a_player_reads_spilled_segments_from_disk_and_the_files_go_when_the_stream_ends(
        live: LiveFeed, tmp_path: Path) -> None:
    app = dvr_app(tmp_path)
    stats = Stats()
    hls = HlsPublisher(stats)

    async def run() -> tuple[list[str], bytes, list[Path]]:
        hls.attach(asyncio.get_running_loop())
        hls.stream_started(live.live, app)
        published = hls.find("default", "app", "cam")
        assert published is not None and published.stream.dvr is not None
        deadline = time.monotonic() + 30
        while not any(len([s for s in seg.segments if s.spilled]) >= 2
                      for _, seg in published.stream.segmenters.values()):
            assert time.monotonic() < deadline, "no segment spilled to disk"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the loop hands the spilled bytes to the store, the disk thread writes
        server = LlhlsServer(LlhlsPublisher(stats), Hosts(app), NoPendingStreams(), stats, hls=HlsServer(hls, stats))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.starlette),
                                     base_url="http://kiln.test:3333") as client:
            master = await client.get("/app/cam/ts:playlist.m3u8")
            media = await client.get(master.text.strip().splitlines()[-1])
            entries = [x for x in media.text.splitlines() if x.startswith("seg_")]
            oldest = await client.get(f"/app/cam/{entries[0]}")
        assert oldest.status_code == 200
        files = sorted(p for p in tmp_path.rglob("seg_*") if p.is_file())
        live.live.end("unpublished")  # as in Kiln: the stream ends (its hub ends the worker), then the publisher hears
        await asyncio.to_thread(hls.stream_ended, live.live)
        await asyncio.sleep(0.1)  # the close runs on the loop
        store = published.stream.dvr
        await asyncio.to_thread(store.flush)
        hls.close()
        return entries, oldest.content, files

    entries, oldest, files = asyncio.run(run())
    assert len(entries) > 2  # more than SegmentCount: the DVR window
    assert files and entries[0].split("?")[0] in {p.name for p in files}  # the oldest listed one is on disk
    assert oldest[0] == 0x47 and len(oldest) % 188 == 0
    with av.open(io.BytesIO(oldest), format="mpegts") as ts:
        first_video = next(p for p in ts.demux(video=0) if p.size)
        assert first_video.is_keyframe
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # the stream ended: its files are gone


def test_files_of_segments_that_left_the_dvr_window_are_deleted(live: LiveFeed, tmp_path: Path) -> None:
    hls = HlsPublisher(Stats())

    async def run() -> tuple[set[int], set[int]]:
        hls.attach(asyncio.get_running_loop())
        hls.stream_started(live.live, dvr_app(tmp_path, max_duration=6))
        published = hls.find("default", "app", "cam")
        assert published is not None and published.stream.dvr is not None
        (_, seg), = published.stream.segmenters.values()
        deadline = time.monotonic() + 30
        while not seg.segments or seg.segments[-1].number < 12:
            assert time.monotonic() < deadline, "12 segments not cut"
            await asyncio.sleep(0.05)
        live.live.end("unpublished")  # no more cuts: what is retained and on disk holds still
        await asyncio.sleep(0.5)  # the worker's last cut; the loop hands spills and deletes to the store
        await asyncio.to_thread(published.stream.dvr.flush)
        retained = {s.number for s in seg.segments if s.spilled}
        on_disk = {int(p.name.split("_")[2]) for p in tmp_path.rglob("seg_*_hls.ts")}
        await asyncio.to_thread(hls.stream_ended, live.live)
        hls.close()
        return retained, on_disk

    retained, on_disk = asyncio.run(run())
    assert 0 not in retained and retained  # segment 0 left the 6 s window (plus spares) long ago
    assert on_disk == retained, (sorted(on_disk), sorted(retained))  # its file went with it
