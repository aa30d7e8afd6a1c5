"""An Origin's ``Failback``: a pull that failed over to its second URL goes back to the first once that
origin answers again (OME probes the first URL once per ``StreamFailbackTimeout``); an Origin without
it stays where it failed over to. Origin 1 is a real Kiln stopped and started again on the same ports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def start(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, name: str, ports: Ports,
          vhost_extra: str = "") -> KilnProcess:
    return kiln_factory(cluster_xml(ports, tmp_path / name / "records", vhost_extra=vhost_extra), ports,
                        tmp_path / name)


def source_url(k: KilnProcess, name: str) -> str | None:
    r = k.api.get(f"{APP}/streams/{name}").json()
    return r["response"]["input"]["sourceUrl"] if r["statusCode"] == 200 else None


def changes(k: KilnProcess, name: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", "PullSourceChanged", "--json"], capture_output=True, text=True, timeout=30,
                         check=True)
    return [p["source_url"] for p in (json.loads(line)["payload"] for line in out.stdout.splitlines())
            if p["name"] == name]


def origins_xml(o1: Ports, o2: Ports) -> str:
    """``/app/fb`` fails back (probed every second); every other stream of ``/app/`` does not."""
    def urls(path: str) -> str:
        return f"<Urls><Url>127.0.0.1:{o1.ovt}/{path}</Url><Url>127.0.0.1:{o2.ovt}/{path}</Url></Urls>"
    return ("<Origins><Properties><StreamFailbackTimeout>1000</StreamFailbackTimeout></Properties>"
            f"<Origin><Location>/app/fb</Location><StrictLocation>true</StrictLocation><Failback>true</Failback>"
            f"<Pass><Scheme>ovt</Scheme>{urls('app/fb')}</Pass></Origin>"
            f"<Origin><Location>/app/</Location><Pass><Scheme>ovt</Scheme>{urls('app/')}</Pass></Origin></Origins>")


def test_failback_returns_to_the_first_url_once_it_answers_again(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    p1, p2 = Ports(), Ports()
    with ThreadPoolExecutor(3) as pool:  # three processes start at once: the test stays short
        origin1, origin2, edge = pool.map(lambda args: start(kiln_factory, tmp_path, *args),
                                          [("origin1", p1), ("origin2", p2), ("edge", Ports(), origins_xml(p1, p2))])
    first = {name: f"ovt://127.0.0.1:{origin1.ports.ovt}/app/{name}" for name in ("fb", "cam")}
    second = {name: f"ovt://127.0.0.1:{origin2.ports.ovt}/app/{name}" for name in ("fb", "cam")}
    peers: list[Peer] = []

    def publish(k: KilnProcess) -> None:
        for name in ("fb", "cam"):
            peers.append(publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/{name}", test_flv, loop=True,
                                      log_dir=peer_dir))
        for name in ("fb", "cam"):
            k.wait_for(lambda name=name: source_url(k, name) is not None, what=f"origin stream {name}")

    try:
        publish(origin1)
        publish(origin2)
        for name in ("fb", "cam"):  # a player's first request pulls each from the first origin
            master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/{name}/llhls.m3u8", timeout=30)
            assert master.status_code == 200, name
            assert source_url(edge, name) == first[name]
        origin1.stop()  # the first origin goes away: both pulls fail over to the second
        for name in ("fb", "cam"):
            edge.wait_for(lambda name=name: source_url(edge, name) == second[name], what=f"failover of {name}")
        origin1.start()  # back on the same ports, with its publishers
        publish(origin1)
        edge.wait_for(lambda: source_url(edge, "fb") == first["fb"], what="failback of fb")
        edge.wait_for_log(f"pull failback where=default/app stream=fb url={first['fb']} "
                          "reason=the first url answers again")
        assert changes(edge, "fb") == [second["fb"], first["fb"]]
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/fb/llhls.m3u8", timeout=30)
        assert master.status_code == 200
        # the Origin without Failback stays on the second URL, though the first answers again: its first URL
        # was never probed (fb's was, from the moment it failed over, at the same time as cam)
        assert source_url(edge, "cam") == second["cam"]
        assert changes(edge, "cam") == [second["cam"]]
        log = edge.log_text()
        assert "pull failback probe where=default/app stream=fb " in log
        assert "stream=cam" not in "".join(line for line in log.splitlines() if "pull failback" in line)
    finally:
        for peer in peers:
            peer.stop()
