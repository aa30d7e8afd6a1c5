"""HLS v3 (MPEG-TS) as players see it (issue 19 item 1): ffprobe and hls.js (non-low-latency) play the
``ts:`` URL on the LL-HLS port; segments are TS that start with a keyframe; the media playlist keeps
SegmentCount segments; every master served makes an ``hlsv3`` connection."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.media.publish.push.rtmp_client import RtmpPublisher
from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import FFPROBE, ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.ports import free_tcp_port
from tests.unit.rtmp.media import sorted_tags

pytestmark = pytest.mark.e2e

SEGMENT_COUNT = 3
HLS = (f"<HLS><SegmentDuration>1</SegmentDuration><SegmentCount>{SEGMENT_COUNT}</SegmentCount>"
       "<CrossDomains><Url>*</Url></CrossDomains></HLS><Push/>")


@pytest.fixture
def hls_port() -> int:
    return free_tcp_port()


@pytest.fixture
def live(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path,
         peer_dir: Path, hls_port: int) -> Iterator[tuple[KilnProcess, str]]:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace("<Push/>", HLS, 1)
    # Bind/Publishers/HLS/Port: OME's own port for HLS v3 (Kiln also answers ts: on the LL-HLS port)
    xml = xml.replace(f"<LLHLS><Port>{ports.llhls}</Port></LLHLS>",
                      f"<LLHLS><Port>{ports.llhls}</Port></LLHLS><HLS><Port>{hls_port}</Port></HLS>", 1)
    assert f"<HLS><Port>{hls_port}</Port></HLS>" in xml
    kiln = kiln_factory(xml=xml, ports=ports)
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{kiln.ports.llhls}/app/live"
    with httpx.Client(timeout=15) as http:
        def full_window() -> bool:
            master = http.get(f"{base}/ts:playlist.m3u8")
            if master.status_code != 200:
                return False
            media = http.get(_children(base, master.text)[0])
            return media.status_code == 200 and media.text.count("#EXTINF") == SEGMENT_COUNT
        kiln.wait_for(full_window, timeout=30, what="a full HLS v3 window")
    yield kiln, base
    pub.stop()


def _children(base: str, playlist: str) -> list[str]:
    origin = base.split("/app/")[0]
    uris = [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")]
    return [f"{origin}{u}" if u.startswith("/") else f"{base}/{u}" for u in uris]


def test_ffprobe_reads_h264_and_aac_from_the_ts_url(live: tuple[KilnProcess, str]) -> None:
    _kiln, base = live
    for url in (f"{base}/ts:playlist.m3u8", f"{base}/playlist.m3u8?format=ts"):
        probe = ffprobe_json(url, timeout=40)
        kinds = streams_by_type(probe)
        assert kinds["video"]["codec_name"] == "h264" and (kinds["video"]["width"], kinds["video"]["height"]) == (
            320, 180), url
        assert kinds["audio"]["codec_name"] == "aac", url
        assert probe["format"]["format_name"] == "hls", url


def test_segments_are_ts_starting_with_a_keyframe_and_the_window_follows_segment_count(
        live: tuple[KilnProcess, str], tmp_path: Path) -> None:
    _kiln, base = live
    with httpx.Client(timeout=15) as http:
        master = http.get(f"{base}/ts:playlist.m3u8")
        assert master.headers["cache-control"] == "no-cache, no-store"
        media_url = _children(base, master.text)[0]
        assert re.search(r"/app/live/medialist_\w+_hls\.m3u8\?session=\d+_\w+$", media_url), media_url
        media = http.get(media_url, headers={"origin": "https://player.test"})
        assert media.headers["access-control-allow-origin"] in ("*", "https://player.test")
        text = media.text
        assert "#EXT-X-VERSION:3" in text and text.count("#EXTINF") == SEGMENT_COUNT
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
        assert all(0.9 <= d <= 2.1 for d in durations), durations  # 1 s target, 1 s GOP
        first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
        segments = _children(base, text)
        assert all(re.search(rf"/seg_\w+_{first + i}_hls\.ts\?session=", u) for i, u in enumerate(segments))
        seg = http.get(segments[-1])
        assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp2t"
        assert seg.content[0] == 0x47 and len(seg.content) % 188 == 0
        path = tmp_path / "seg.ts"
        path.write_bytes(seg.content)

        def later_window() -> str | None:
            t = http.get(media_url).text
            n = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", t).group(1))
            return t if n >= first + 2 else None
        later = _kiln.wait_for(later_window, timeout=20, what="the window to slide")
        assert later.count("#EXTINF") == SEGMENT_COUNT
    frames = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
                             "frame=key_frame,pict_type", "-read_intervals", "%+#1", "-of", "csv=p=0", str(path)],
                            capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert frames and frames[0].startswith("1,I"), frames


def test_hlsjs_plays_the_ts_url_in_chromium(live: tuple[KilnProcess, str], chromium_player: Any) -> None:
    _kiln, base = live
    report = chromium_player(f"{base}/ts:playlist.m3u8", timeout=45, low_latency=False)
    assert report["played"], report
    assert report["fragsLoaded"] > 0 and report["partsLoaded"] == 0, report
    assert not [e for e in report["errors"] if str(e).startswith("fatal:")], report["errors"]


def test_each_master_served_is_an_hlsv3_connection(live: tuple[KilnProcess, str]) -> None:
    kiln, base = live
    stats = "/v1/stats/current/vhosts/default/apps/app/streams/live"

    def hlsv3() -> int:
        return int(kiln.api.get(stats).json()["response"]["connections"]["hlsv3"])
    before = hlsv3()
    with httpx.Client(timeout=15) as http:
        for _ in range(2):
            master = http.get(f"{base}/ts:playlist.m3u8")
            http.get(_children(base, master.text)[0])  # children reuse the master's session
    assert kiln.wait_for(lambda: hlsv3() == before + 2, timeout=10, what="two hlsv3 connections")
    assert kiln.api.get(stats).json()["response"]["connections"]["llhls"] == 0


def test_an_app_without_hls_says_so(kiln: KilnProcess) -> None:
    r = httpx.get(f"http://127.0.0.1:{kiln.ports.llhls}/app/live/ts:playlist.m3u8", timeout=10)
    assert r.status_code == 404 and r.text.startswith("HLS v3 (ts:) is not enabled for this application")


def test_hls_v3_plays_on_its_own_bind_port_too(live: tuple[KilnProcess, str], hls_port: int) -> None:
    url = f"http://127.0.0.1:{hls_port}/app/live/ts:playlist.m3u8"
    kinds = streams_by_type(ffprobe_json(url, timeout=40))
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"


def _feed_in_real_time(pub: RtmpPublisher, flv: bytes, stop: threading.Event) -> None:
    """Send the FLV's tags as a live encoder does, paced on their timestamps, looping until ``stop``."""
    tags = sorted_tags(flv)
    length = max(t.timestamp for t in tags) + 40
    start, offset = time.monotonic(), 0
    while not stop.is_set():
        for tag in tags:
            ts = tag.timestamp + offset
            if stop.wait(max(0.0, start + ts / 1000 - time.monotonic())):
                return
            pub.send_tags([(tag.type_id, ts, tag.body)])
        offset += length


def test_a_stream_that_exists_but_has_not_started_is_201_at_once_then_plays(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path) -> None:
    """OME's HLS publisher answers any request of a stream created but not started 201 (no body) at once; Kiln
    answered 404, so a player (or OvenPlayer's retry on 201) took the stream for missing."""
    ports = Ports()
    kiln = kiln_factory(xml=server_xml(ports, tmp_path / "records").replace("<Push/>", HLS, 1), ports=ports)
    pub = RtmpPublisher.connect(f"rtmp://127.0.0.1:{ports.rtmp}/app/live", 5000, 5000)  # publishing, no media yet
    stop = threading.Event()
    flv = test_flv.read_bytes()
    feeder = threading.Thread(target=_feed_in_real_time, args=(pub, flv, stop), daemon=True)
    base = f"http://127.0.0.1:{ports.llhls}/app/live"

    def all_201_at_once(names: tuple[str, ...]) -> None:
        for name in names:
            answer = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                     f"{base}/{name}"], capture_output=True, text=True, timeout=40, check=True)
            code, seconds = answer.stdout.split()
            assert (code, float(seconds) < 2.0) == ("201", True), (name, answer.stdout)
    try:
        assert kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"] == ["live"]
        all_201_at_once(("ts:playlist.m3u8", "playlist.m3u8?format=ts", "medialist_v0a1_hls.m3u8",
                         "seg_v0a1_0_hls.ts", "llhls.m3u8", "chunklist_0_video_llhls.m3u8"))
        # its tracks described (metadata, sequence headers) and no frame yet: Kiln lists its outputs and publishes it,
        # a master waited 30 s for segments that would not come, then said 404; OME has not started such a stream
        pub.send_tags([(t.type_id, 0, t.body) for t in sorted_tags(flv) if t.type_id == 18 or t.body[1] == 0])
        kiln.wait_for_log("hls stream published stream=live")
        kiln.wait_for_log("llhls stream published vhost=default app=app stream=live")
        all_201_at_once(("ts:playlist.m3u8", "medialist_v0a1_hls.m3u8", "llhls.m3u8"))
        feeder.start()
        kinds = streams_by_type(ffprobe_json(f"{base}/ts:playlist.m3u8", timeout=60))
        assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(5)
        pub.close()
