"""HLS v3 with <DVR>: the media playlist keeps the DVR window beyond SegmentCount, the old TS segments
are files under TempStoragePath, hls.js (non-low-latency) seeks back into them and plays, and the files
go when the stream ends."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require
from tests.peers.hlsjs_seek import seek_back_hls

pytestmark = pytest.mark.e2e

SEGMENT_COUNT = 3
LIVE_KEPT = SEGMENT_COUNT + 2  # SegmentCount plus the spare segments kept in memory


def dvr_xml(ports: Ports, workdir: Path, dvr_dir: Path) -> str:
    hls = (f"<HLS><SegmentDuration>1</SegmentDuration><SegmentCount>{SEGMENT_COUNT}</SegmentCount>"
           f"<DVR><Enable>true</Enable><TempStoragePath>{dvr_dir}</TempStoragePath>"
           "<MaxDuration>120</MaxDuration></DVR><CrossDomains><Url>*</Url></CrossDomains></HLS><Push/>")
    xml = server_xml(ports, workdir / "records").replace("<Push/>", hls, 1)
    assert "<DVR><Enable>true</Enable>" in xml
    return xml


def files(dvr_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in dvr_dir.rglob("seg_*_hls.ts")}


def test_hlsv3_dvr_lists_beyond_segment_count_and_hlsjs_seeks_back_into_the_files(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    require("chromium")
    ports, workdir, dvr_dir = Ports(), tmp_path / "kiln", tmp_path / "dvr"
    workdir.mkdir()
    kiln = kiln_factory(dvr_xml(ports, workdir, dvr_dir), ports=ports, workdir=workdir)
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{kiln.ports.llhls}/app/live"
    try:
        with httpx.Client(timeout=15) as http:
            kiln.wait_for(lambda: http.get(f"{base}/ts:playlist.m3u8").status_code == 200, timeout=30,
                          what="master")
            master = http.get(f"{base}/ts:playlist.m3u8").text
            uri = next(ln for ln in master.splitlines() if ln and not ln.startswith("#"))
            media_url = f"http://127.0.0.1:{kiln.ports.llhls}{uri}"
            numbers: list[int] = []

            def enough() -> bool:
                numbers[:] = [int(n) for n in re.findall(r"^seg_\w+?_(\d+)_hls\.ts", http.get(media_url).text, re.M)]
                return len(numbers) >= 16
            kiln.wait_for(enough, timeout=40, what="16 segments listed")
            # the DVR window, contiguous from the first segment, far beyond SegmentCount
            assert numbers == list(range(0, numbers[-1] + 1)), numbers
            # every segment beyond the live window is a file: the one that just left it is written by Kiln's disk
            # thread as the playlist lists its successor, so wait (bounded) for that write rather than race it
            beyond = set(range(0, numbers[-1] - LIVE_KEPT + 1))
            spilled: set[int] = set()

            def all_spilled() -> bool:
                spilled.clear()
                spilled.update(int(name.split("_")[2]) for name in files(dvr_dir))
                return beyond <= spilled
            kiln.wait_for(all_spilled, timeout=15, what="segments beyond the live window written as files")
            assert beyond <= spilled, (numbers, sorted(spilled))
            oldest = next(ln for ln in http.get(media_url).text.splitlines() if ln.startswith("seg_"))
            first = http.get(f"{base}/{oldest}")
            assert first.status_code == 200 and first.content[0] == 0x47
            assert first.content == next(dvr_dir.rglob(oldest.split("?")[0])).read_bytes()

            report = seek_back_hls(f"{base}/ts:playlist.m3u8", workdir=peer_dir / "chromium", timeout=25)
            assert report["played"] and report["playedAfterSeek"], report
            assert report["liveEdge"] - report["seekedAt"] >= 10, report
            assert not [e for e in report["errors"] if str(e).startswith("fatal:")], report
            fetched = {int(m.group(1)) for name in report["fragsAfterSeek"]
                       if (m := re.search(r"_(\d+)_hls\.ts", str(name)))}
            assert fetched & spilled, (report["fragsAfterSeek"], sorted(spilled))  # served from the files
    finally:
        pub.stop()
    kiln.wait_for(lambda: not files(dvr_dir), timeout=15, what="DVR files removed at stream end")
