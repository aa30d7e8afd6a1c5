"""OriginMapStore on a real redis-server: three Kiln processes (two origins, one edge) on loopback.

Origins register each live stream with a TTL they refresh and remove it when it ends; the first
registration wins; an edge finds the stream in Redis, pulls it over OVT and hls.js plays it; the
stream moves to the second origin when the first one's publisher stops; a Redis restart is
survived (registrations return within one TTL, the edge keeps what it pulls)."""

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
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.redis import RedisServer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def map_store(redis: RedisServer, host_name: str = "") -> str:
    name = f"<OriginHostName>{host_name}</OriginHostName>" if host_name else ""
    return (f"<OriginMapStore><RedisServer><Host>127.0.0.1:{redis.port}</Host></RedisServer>{name}"
            "</OriginMapStore>")


def start(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, name: str, extra: str) -> KilnProcess:
    ports = Ports()
    return kiln_factory(cluster_xml(ports, tmp_path / name / "records", vhost_extra=extra), ports, tmp_path / name)


def ovt_connections(k: KilnProcess, name: str) -> int:
    stats = k.api.get(f"/v1/stats/current{APP[3:]}/streams/{name}").json().get("response") or {}
    return int(stats.get("connections", {}).get("ovt", 0))


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", event_type, "--json"], capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line)["payload"] for line in out.stdout.splitlines()]


def source_url(k: KilnProcess, name: str) -> str | None:
    r = k.api.get(f"{APP}/streams/{name}").json()
    return r["response"]["input"]["sourceUrl"] if r["statusCode"] == 200 else None


def test_edge_finds_the_stream_in_redis_and_follows_it_to_the_second_origin(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path,
        redis_server: RedisServer, chromium_player: Any) -> None:
    origin1 = start(kiln_factory, tmp_path, "origin1", map_store(redis_server, "127.0.0.1"))
    origin2 = start(kiln_factory, tmp_path, "origin2", map_store(redis_server, "127.0.0.1"))
    # an edge reads only; RetryCount leaves room for the stream to move between origins
    edge = start(kiln_factory, tmp_path, "edge", map_store(redis_server) +
                 "<Origins><Properties><RetryCount>4</RetryCount></Properties></Origins>")
    url1 = f"ovt://127.0.0.1:{origin1.ports.ovt}/app/cam"
    url2 = f"ovt://127.0.0.1:{origin2.ports.ovt}/app/cam"
    pub1 = publish_rtmp(f"rtmp://127.0.0.1:{origin1.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    pub2 = None
    try:
        origin1.wait_for(lambda: redis_server.cli("GET", "app/cam") == url1, what="origin 1 registered")
        assert 0 < int(redis_server.cli("TTL", "app/cam")) <= 10
        # a second origin with the same stream: the first registration wins, the second says so
        pub2 = publish_rtmp(f"rtmp://127.0.0.1:{origin2.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
        origin2.wait_for(lambda: "originmapstore key held by another origin key=app/cam" in
                         origin2.log_path.read_text(), timeout=30, what="origin 2 told the key is held")
        assert redis_server.cli("GET", "app/cam") == url1
        # hls.js asks the edge, which finds the stream in Redis and pulls it over OVT
        report = chromium_player(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        assert report["played"], report
        assert source_url(edge, "cam") == url1
        for _ in range(3):  # more viewers on the edge, still one relay from the origin
            assert httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=30).status_code == 200
        assert ovt_connections(origin1, "cam") == 1 and ovt_connections(origin2, "cam") == 0
        [defined] = journal(edge, "PullDefined")
        assert (defined["cause"], defined["source_url"]) == ("OriginMapStore key=app/cam", url1)
        # origin 1's publisher stops: its key goes, origin 2 takes it, the edge re-resolves and follows
        pub1.stop()
        origin2.wait_for(lambda: redis_server.cli("GET", "app/cam") == url2, timeout=30, what="origin 2 registered")
        edge.wait_for(lambda: source_url(edge, "cam") == url2, timeout=60, what="edge pulling from origin 2")
        assert [(c["source_url"], c["cause"]) for c in journal(edge, "PullSourceChanged")] == [
            (url2, "OriginMapStore key=app/cam")]
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=30)
        assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
        assert origin2.wait_for(lambda: ovt_connections(origin2, "cam") == 1, what="relay from origin 2")
        # Redis restarts empty: origin 2 registers again within one TTL; the edge keeps its stream
        redis_server.stop()
        origin2.wait_for(lambda: "originmapstore unreachable" in origin2.log_path.read_text(), timeout=15,
                         what="origin 2 saw Redis go")
        assert source_url(edge, "cam") == url2
        redis_server.start(same_port=True)
        origin2.wait_for(lambda: redis_server.cli("GET", "app/cam") == url2, timeout=10, what="re-registered")
        assert source_url(edge, "cam") == url2
        # the stream ends: its key is removed at once (not left to the TTL)
        pub2.stop()
        origin2.wait_for(lambda: redis_server.cli("EXISTS", "app/cam") == "0", timeout=8, what="key removed")
    finally:
        pub1.stop()
        if pub2 is not None:
            pub2.stop()


def test_bad_values_in_redis_and_redis_down_are_clear_404s(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, redis_server: RedisServer) -> None:
    edge = start(kiln_factory, tmp_path, "edge", map_store(redis_server))
    redis_server.cli("SET", "app/junk", "this is not a url")
    r = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/junk/llhls.m3u8", timeout=30)
    assert r.status_code == 404
    edge.wait_for_log("originmapstore lookup key=app/junk refused")
    redis_server.stop()
    r = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=30)
    assert r.status_code == 404 and r.elapsed.total_seconds() < 10
    log = edge.wait_for_log("originmapstore lookup failed key=app/cam reason=redis unreachable")
    assert "Traceback" not in log
