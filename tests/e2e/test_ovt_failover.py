"""OVT pulls across origins: failover between a pull's urls, a restart of the edge, and a pull loop."""

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

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def start(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, name: str, ports: Ports | None = None,
          **kw: Any) -> KilnProcess:
    ports = ports or Ports()
    return kiln_factory(cluster_xml(ports, tmp_path / name / "records", **kw), ports, tmp_path / name)


def source_url(k: KilnProcess, name: str) -> str | None:
    r = k.api.get(f"{APP}/streams/{name}").json()
    return r["response"]["input"]["sourceUrl"] if r["statusCode"] == 200 else None


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", event_type, "--json"], capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line)["payload"] for line in out.stdout.splitlines()]


def test_the_pull_fails_over_to_the_next_url_and_survives_an_edge_restart(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin1 = start(kiln_factory, tmp_path, "origin1")
    origin2 = start(kiln_factory, tmp_path, "origin2")
    edge = start(kiln_factory, tmp_path, "edge")
    url1 = f"ovt://127.0.0.1:{origin1.ports.ovt}/app/cam"
    url2 = f"ovt://127.0.0.1:{origin2.ports.ovt}/app/cam"
    pub1 = publish_rtmp(f"rtmp://127.0.0.1:{origin1.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    pub2 = publish_rtmp(f"rtmp://127.0.0.1:{origin2.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        for k in (origin1, origin2):
            k.wait_for(lambda k=k: source_url(k, "cam") is not None, what="origin stream")
        r = edge.api.post(f"{APP}/streams", json={"name": "cam", "urls": [url1, url2],
                                                  "properties": {"persistent": True}})
        assert r.json()["statusCode"] == 201 and source_url(edge, "cam") == url1
        pub1.stop()  # origin 1 loses its publisher: the relay closes, the edge moves to the next url
        edge.wait_for(lambda: source_url(edge, "cam") == url2, timeout=60, what="failover to origin 2")
        assert [c["source_url"] for c in journal(edge, "PullSourceChanged")] == [url2]
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=30)
        assert master.status_code == 200
        # the pull is durable: after a crash of the edge it comes back by itself
        edge.kill9()
        edge.start()
        edge.wait_for(lambda: source_url(edge, "cam") == url2, timeout=60, what="pull resumed after restart")
    finally:
        pub1.stop()
        pub2.stop()


def test_a_pull_loop_between_two_edges_ends_in_a_404_not_a_hang(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    ports_a, ports_b = Ports(), Ports()

    def origins_to(ports: Ports) -> str:
        return (f"<Origins><Origin><Location>/app/</Location><Pass><Scheme>ovt</Scheme><Urls>"
                f"<Url>127.0.0.1:{ports.ovt}/app/</Url></Urls></Pass></Origin></Origins>")

    edge_a = start(kiln_factory, tmp_path, "a", ports_a, vhost_extra=origins_to(ports_b))
    edge_b = start(kiln_factory, tmp_path, "b", ports_b, vhost_extra=origins_to(ports_a))
    r = httpx.get(f"http://127.0.0.1:{ports_a.llhls}/app/ghost/llhls.m3u8", timeout=60)
    assert r.status_code == 404 and r.elapsed.total_seconds() < 30
    edge_a.wait_for_log("pull loop: default/app/ghost is being pulled by this server")
    for k in (edge_a, edge_b):
        k.wait_for(lambda k=k: k.api.get(f"{APP}/streams").json()["response"] == [], what="nothing left")
        assert "Traceback" not in k.log_path.read_text()
    assert [p["name"] for p in journal(edge_a, "PullFailed")] == ["ghost"]
