"""Pull on demand from HLS v3 (TS) requests: on an edge with Origins pulling over OVT from a Kiln origin,
an HLS v3 master and a media playlist (``medialist_*_hls.m3u8``, what a CDN or a player that knows the URL
asks first) that are the first request for their stream each make the edge pull it, as OME's HLS publisher
does, instead of a 404. Two strict rules name the origin's one stream under two edge names, so each
request is the first for its own stream."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_origins import origin, origins_xml, pulls, streams
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

HLS = "<HLS><SegmentDuration>1</SegmentDuration><SegmentCount>3</SegmentCount></HLS><Push/>"


def test_hls_v3_master_and_media_playlist_pull_a_missing_stream(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin_ports, edge_ports = Ports(), Ports()
    url = f"127.0.0.1:{origin_ports.ovt}/app/cam"
    rules = origins_xml(*(origin(f"/app/{name}", "ovt", url, strict=True) for name in ("ts", "media")))
    edge_xml = cluster_xml(edge_ports, tmp_path / "edge" / "records", vhost_extra=rules).replace("<Push/>", HLS, 1)
    with ThreadPoolExecutor(2) as pool:
        origin_k, edge = pool.map(lambda args: kiln_factory(*args), [
            (cluster_xml(origin_ports, tmp_path / "origin" / "records"), origin_ports, tmp_path / "origin"),
            (edge_xml, edge_ports, tmp_path / "edge")])
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{edge_ports.llhls}/app"
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        assert streams(edge) == []
        with httpx.Client(timeout=60) as http:
            # an HLS v3 master is the first request for "ts": the edge pulls it and answers
            master = http.get(f"{base}/ts/ts:playlist.m3u8")
            assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text, master.text
            [child] = [ln for ln in master.text.splitlines() if ln and not ln.startswith("#")]
            found = re.search(r"medialist_(\w+)_hls\.m3u8", child)
            assert found is not None, child
            # a media playlist is the first request for "media" (no session: a CDN's request)
            media = http.get(f"{base}/media/{found.group(0)}")
            assert media.status_code == 200 and "#EXTINF" in media.text, media.text
            segment = [ln for ln in media.text.splitlines() if ln and not ln.startswith("#")][0]
            seg = http.get(f"{base}/media/{segment}" if "/" not in segment else
                           f"http://127.0.0.1:{edge_ports.llhls}{segment}")
            assert seg.status_code == 200 and seg.content[:1] == b"\x47"  # MPEG-TS sync byte
        assert sorted(streams(edge)) == ["media", "ts"]
        assert sorted(p["name"] for p in pulls(edge, "PullDefined")) == ["media", "ts"]
        # a name no Origin has: the media playlist is a 404 after the lookup, not a hang
        assert httpx.get(f"{base}/nothing/{found.group(0)}", timeout=60).status_code == 404
    finally:
        source.stop()
