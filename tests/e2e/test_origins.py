"""Pull on demand through a vhost's Origins: an LL-HLS request for a missing stream pulls it
(OVT from a Kiln origin, RTSP from gst-rtsp-server), waits for it, and the pull idles out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def origins_xml(*origins: str, unused_ms: int = 60000) -> str:
    return (f"<Origins><Properties><UnusedStreamDeletionTimeout>{unused_ms}</UnusedStreamDeletionTimeout>"
            f"</Properties>{''.join(origins)}</Origins>")


def origin(location: str, scheme: str, url: str, strict: bool = False) -> str:
    return (f"<Origin><Location>{location}</Location>{'<StrictLocation>true</StrictLocation>' if strict else ''}"
            f"<Pass><Scheme>{scheme}</Scheme><Urls><Url>{url}</Url></Urls></Pass></Origin>")


def start(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, name: str, **kw: Any) -> KilnProcess:
    ports = Ports()
    return kiln_factory(cluster_xml(ports, tmp_path / name / "records", **kw), ports, tmp_path / name)


def pulls(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    """What `kiln journal show --type ...` tells a user about pulls."""
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", event_type, "--json"], capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line)["payload"] for line in out.stdout.splitlines()]


def streams(k: KilnProcess) -> list[str]:
    return list(k.api.get(f"{APP}/streams").json()["response"])


def test_llhls_request_on_the_edge_pulls_from_the_origin_over_ovt(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin_k = start(kiln_factory, tmp_path, "origin")
    edge = start(kiln_factory, tmp_path, "edge", vhost_extra=origins_xml(
        origin("/app/", "ovt", f"127.0.0.1:{origin_k.ports.ovt}/app/")))
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        assert streams(edge) == []
        # the player's first request waits for the pull instead of failing
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U")
        assert streams(edge) == ["cam"]
        info = edge.api.get(f"{APP}/streams/cam").json()["response"]
        assert info["input"]["sourceType"] == "Ovt"
        assert info["input"]["sourceUrl"] == f"ovt://127.0.0.1:{origin_k.ports.ovt}/app/cam"
        probe = streams_by_type(ffprobe_json(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60))
        assert probe["video"]["codec_name"] == "h264" and probe["audio"]["codec_name"] == "aac"
        # where the edge's stream came from, and why: the journal says it
        [defined] = pulls(edge, "PullDefined")
        assert defined["cause"] == "Origins rule location=/app/ scheme=ovt"
        assert defined["source_url"] == f"ovt://127.0.0.1:{origin_k.ports.ovt}/app/cam"
        # a name no origin has: a bounded wait, then the 404 a player expects
        missing = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/nothing/llhls.m3u8", timeout=60)
        assert missing.status_code == 404
        assert [p["name"] for p in pulls(edge, "PullFailed")] == ["nothing"]
    finally:
        source.stop()


def test_rtsp_origin_is_pulled_on_demand_and_idles_out(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, rtsp_source: RtspSource) -> None:
    location = rtsp_source.url.removeprefix("rtsp://")
    edge = start(kiln_factory, tmp_path, "edge", vhost_extra=origins_xml(
        origin("/app/door", "rtsp", location, strict=True), unused_ms=8000))
    # strict location: another name under /app/ is not this camera
    assert httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/door2/llhls.m3u8", timeout=60).status_code == 404
    master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/door/llhls.m3u8", timeout=60)
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
    info = edge.api.get(f"{APP}/streams/door").json()["response"]
    assert info["input"]["sourceType"] == "RtspPull" and info["input"]["sourceUrl"] == rtsp_source.url
    # the one viewer leaves (its LL-HLS session expires), then UnusedStreamDeletionTimeout removes the stream
    edge.wait_for(lambda: streams(edge) == [], timeout=90, what="the unused pulled stream deleted")
    [removed] = pulls(edge, "PullRemoved")
    assert removed["reason"] == "unused stream"
