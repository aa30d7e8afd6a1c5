"""Dynamic applications on an edge (OME's ``*`` template): the edge has no ``app``, only ``*`` and Origins; a
player's LL-HLS request for /app/cam pulls the origin's stream over OVT into an app made from the template
(``dynamic: true``), and DynamicAppRemoval removes it once it has had no stream for its idle time (short here:
``KILN_DYNAMIC_APP_IDLE_S``/``_SWEEP_S``). An edge without a template still answers 404."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_origin_map_store import map_store
from tests.e2e.test_origins import origin, origins_xml, streams
from tests.e2e.test_origins_players import edge_xml, origin_xml, whep_viewer
from tests.e2e.test_origins_relay import SMALL
from tests.e2e.webrtc.play_kiln import RtcPorts, signalling_viewer
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.redis import RedisServer
from tests.peers.rtsp_server import RtspSource

pytestmark = pytest.mark.e2e

REMOVAL = "<Modules><DynamicAppRemoval><Enable>true</Enable></DynamicAppRemoval></Modules>"


def _kiln(started: list[KilnProcess], tmp_path: Path, name: str, *, app: str = "app", origins: str = "",
          removal: bool = False, env: dict[str, str] | None = None, profile: str = "") -> KilnProcess:
    """A Kiln whose one application is ``app`` (``*``: an edge whose only application is the template), with
    ``profile`` as its one output profile when given."""
    ports = Ports()
    xml = cluster_xml(ports, tmp_path / name / "records", vhost_extra=origins)
    xml = xml.replace("<Name>app</Name>", f"<Name>{app}</Name>", 1)
    if profile:
        assert xml.count("</OutputProfile>") == 1
        xml = xml[:xml.index("<OutputProfile>")] + profile.strip() + xml[xml.index("</OutputProfile>") + 16:]
    if removal:
        xml = xml.replace("<Bind>", REMOVAL + "\n  <Bind>", 1)
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    proc = KilnProcess(tmp_path / name, xml, ports)
    proc.env = env or {}
    started.append(proc)  # closed by the fixture even if it never becomes ready
    return proc.start()


@pytest.fixture
def started() -> Iterator[list[KilnProcess]]:
    procs: list[KilnProcess] = []
    yield procs
    for proc in procs:
        proc.close()


def _apps(k: KilnProcess) -> list[str]:
    return sorted(k.api.get("/v1/vhosts/default/apps").json()["response"])


def _journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", event_type, "--json"], capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line)["payload"] for line in out.stdout.splitlines()]


def test_a_player_on_an_edge_with_only_a_template_plays_the_origins_stream(
        started: list[KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin_k = _kiln(started, tmp_path, "origin")
    rule = origins_xml(origin("/", "ovt", f"127.0.0.1:{origin_k.ports.ovt}/"), unused_ms=3000)
    edge = _kiln(started, tmp_path, "edge", app="*", origins=rule, removal=True,
                 env={"KILN_DYNAMIC_APP_IDLE_S": "3", "KILN_DYNAMIC_APP_SWEEP_S": "0.5"})
    bare = _kiln(started, tmp_path, "bare", app="fixed", origins=rule)  # the same Origins, no template
    assert _apps(edge) == []  # the template is not an app
    edge.wait_for_log("dynamic app removal on idle_s=3 sweep_s=0.5")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in origin_k.api.get("/v1/vhosts/default/apps/app/streams").json()["response"],
                          what="origin stream")
        # the edge with no template: no app, so no pull (as before, and as OME: "Could not find application ...")
        missing = httpx.get(f"http://127.0.0.1:{bare.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        assert missing.status_code == 404 and _apps(bare) == ["fixed"]
        # the edge with the template: the player's first request makes the app and pulls the stream
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text
        assert _apps(edge) == ["app"]
        app = edge.api.get("/v1/vhosts/default/apps/app").json()["response"]
        assert app["dynamic"] is True and app["name"] == "app"
        info = edge.api.get("/v1/vhosts/default/apps/app/streams/cam").json()["response"]
        assert info["input"]["sourceUrl"] == f"ovt://127.0.0.1:{origin_k.ports.ovt}/app/cam"
        probe = streams_by_type(ffprobe_json(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60))
        assert probe["video"]["codec_name"] == "h264" and probe["audio"]["codec_name"] == "aac"
        assert (probe["video"]["width"], probe["video"]["height"]) == (320, 180)
        # a name the Origins rule maps but the origin does not have: the app made for its pull is removed at once
        ghost = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/ghost/cam/llhls.m3u8", timeout=60)
        assert ghost.status_code == 404 and _apps(edge) == ["app"]
        assert [(c["name"], c["dynamic"]) for c in _journal(edge, "AppCreated")] == [("app", True), ("ghost", True)]
        assert [d["name"] for d in _journal(edge, "AppDeleted")] == ["ghost"]
        edge.wait_for_log("dynamic app removed vhost=default app=ghost reason=its first pull failed stream=cam")
    finally:
        source.stop()
    # the viewers are gone: the pulled stream is deleted when unused (3 s), then the app after 3 s without one
    edge.wait_for(lambda: _apps(edge) == [], timeout=120, what="the unused dynamic app removed")
    edge.wait_for_log("dynamic app unused for 3s, removed vhost=default app=app")
    assert edge.api.get("/v1/vhosts/default/apps/app").status_code == 404
    assert [d["name"] for d in _journal(edge, "AppDeleted")] == ["ghost", "app"]


def test_every_player_door_makes_its_dynamic_app(kiln_factory: Any, tmp_path: Path, test_flv: Path,
                                                 peer_dir: Path) -> None:
    """The doors other than the LL-HLS master, each the first request for an app the edge does not have: a
    chunklist (LL-HLS OriginMode), a thumbnail, a WebRTC viewer and a WHEP player each make their app from the
    template (its thumbnail encode, its WebRTC publisher) and play what was pulled into it."""
    origin_ports, edge_ports = Ports(), RtcPorts()
    origin_k = kiln_factory(origin_xml(origin_ports, tmp_path / "origin" / "records"), origin_ports,
                            tmp_path / "origin")
    doors = ("hls", "thumb", "rtc", "whep")
    xml = edge_xml(edge_ports, tmp_path / "edge" / "records", origin_ports.ovt)
    rules = origins_xml(*(origin(f"/{door}/cam", "ovt", f"127.0.0.1:{origin_ports.ovt}/app/cam", strict=True)
                          for door in doors))
    xml = re.sub(r"<Origins>.*</Origins>", lambda _m: rules, xml, count=1, flags=re.S)
    edge = kiln_factory(xml.replace("<Name>app</Name>", "<Name>*</Name>", 1), edge_ports, tmp_path / "edge")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        assert _apps(edge) == []
        chunklist = f"chunklist_0_video_{zlib.crc32(b'cam')}_llhls.m3u8"
        r = httpx.get(f"http://127.0.0.1:{edge_ports.llhls}/hls/cam/{chunklist}", timeout=60)
        assert r.status_code == 200 and "#EXT-X-PART:" in r.text, r.text
        r = httpx.get(f"http://127.0.0.1:{edge_ports.thumbnail}/thumb/cam/thumb.jpg", timeout=60)
        assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")
        report = asyncio.run(signalling_viewer(f"ws://127.0.0.1:{edge_ports.llhls}/rtc/cam", seconds=1.0, timeout=45))
        assert report.errors == [] and report.frames["video"] >= 10
        posted, frames = asyncio.run(whep_viewer(f"http://127.0.0.1:{edge_ports.llhls}/whep/cam?direction=whep"))
        assert posted.status_code == 201 and frames >= 10, posted.text
        assert _apps(edge) == sorted(doors)
        assert all(edge.api.get(f"/v1/vhosts/default/apps/{door}").json()["response"]["dynamic"] for door in doors)
        # a door asked for an app no Origins rule maps: no app is made, the door's 404
        assert httpx.get(f"http://127.0.0.1:{edge_ports.thumbnail}/none/cam/thumb.jpg", timeout=60).status_code == 404
        assert _apps(edge) == sorted(doors)
        assert "Traceback" not in edge.log_path.read_text()
    finally:
        source.stop()


def test_an_edge_with_only_a_template_pulls_what_the_origin_map_store_names(
        started: list[KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path, redis_server: RedisServer) -> None:
    """OME's RequestPullStreamWithOriginMap path: the edge finds app/cam in Redis and makes the app for it; a key
    Redis does not hold makes no app (nothing is pulled)."""
    origin_k = _kiln(started, tmp_path, "origin", origins=map_store(redis_server, "127.0.0.1"))
    edge = _kiln(started, tmp_path, "edge", app="*", origins=map_store(redis_server))
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        url = f"ovt://127.0.0.1:{origin_k.ports.ovt}/app/cam"
        origin_k.wait_for(lambda: redis_server.cli("GET", "app/cam") == url, what="origin registered app/cam")
        assert httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/other/cam/llhls.m3u8", timeout=60).status_code == 404
        assert _apps(edge) == []
        master = httpx.get(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text
        app = edge.api.get("/v1/vhosts/default/apps/app").json()["response"]
        assert app["dynamic"] is True and _apps(edge) == ["app"]
        [defined] = [p for p in _journal(edge, "PullDefined") if p["name"] == "cam"]
        assert defined["cause"] == "OriginMapStore key=app/cam" and defined["source_url"] == url
    finally:
        source.stop()


def test_a_chain_of_edges_with_only_templates_makes_the_app_on_each(
        started: list[KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    """An OVT describe of a stream a mid-tier edge does not have runs its Origins (chained relays), which makes
    the app there from its template too, as OME's OvtPublisher pull does."""
    origin_k = _kiln(started, tmp_path, "origin")
    mid = _kiln(started, tmp_path, "mid", app="*",
                origins=origins_xml(origin("/", "ovt", f"127.0.0.1:{origin_k.ports.ovt}/")))
    edge = _kiln(started, tmp_path, "edge", app="*",
                 origins=origins_xml(origin("/", "ovt", f"127.0.0.1:{mid.ports.ovt}/")))
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        probe = streams_by_type(ffprobe_json(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60))
        assert probe["video"]["codec_name"] == "h264" and probe["audio"]["codec_name"] == "aac"
        for k in (mid, edge):
            assert _apps(k) == ["app"]
            assert k.api.get("/v1/vhosts/default/apps/app").json()["response"]["dynamic"] is True
        info = edge.api.get("/v1/vhosts/default/apps/app/streams/cam").json()["response"]
        assert info["input"]["sourceUrl"] == f"ovt://127.0.0.1:{mid.ports.ovt}/app/cam"
    finally:
        source.stop()


def test_a_dynamic_apps_pulled_stream_is_served_as_it_comes_whatever_the_templates_profiles(
        started: list[KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path, rtsp_source: RtspSource) -> None:
    """OME's transcoder bypasses every track of a dynamic app's stream (CreateOutputStreamDynamic): the template's
    one profile would scale to 160x90 with a playlist of its own, but an OVT pull with ``<Relay>false</Relay>`` and
    an RTSP pull without Relay, each into a dynamic app, are served at the source's 320x180 under the stream's name
    (the default playlist; the profile's ``abr`` is not made), and the API shows one output of bypassed tracks."""
    origin_k = _kiln(started, tmp_path, "origin")
    rules = origins_xml(
        f"<Origin><Location>/app/</Location><Relay>false</Relay><Pass><Scheme>ovt</Scheme><Urls>"
        f"<Url>127.0.0.1:{origin_k.ports.ovt}/app/</Url></Urls></Pass></Origin>",
        origin("/cams/door", "rtsp", rtsp_source.url.removeprefix("rtsp://"), strict=True))
    edge = _kiln(started, tmp_path, "edge", app="*", origins=rules, profile=SMALL)
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        for app, name in (("app", "cam"), ("cams", "door")):
            base = f"http://127.0.0.1:{edge.ports.llhls}/{app}/{name}"
            master = httpx.get(f"{base}/llhls.m3u8", timeout=60)
            assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text
            assert edge.api.get(f"/v1/vhosts/default/apps/{app}").json()["response"]["dynamic"] is True
            probe = streams_by_type(ffprobe_json(f"{base}/llhls.m3u8", timeout=60))
            assert (probe["video"]["codec_name"], probe["video"]["width"], probe["video"]["height"]) == (
                "h264", 320, 180), (app, probe)
            assert probe["audio"]["codec_name"] == "aac"
            info = edge.api.get(f"/v1/vhosts/default/apps/{app}/streams/{name}").json()["response"]
            [output] = info["outputs"]
            assert output["name"] == name
            media = [t for t in output["tracks"] if t["type"] in ("Video", "Audio")]
            assert sorted(t["type"] for t in media) == ["Audio", "Video"]
            tracks = {t["type"]: t for t in media}
            assert tracks["Video"]["video"]["bypass"] is True and tracks["Audio"]["audio"]["bypass"] is True
            assert (tracks["Video"]["video"]["width"], tracks["Video"]["video"]["height"]) == (320, 180)
            assert httpx.get(f"{base}/abr.m3u8", timeout=30).status_code == 404  # no profile playlist
        assert "Traceback" not in edge.log_path.read_text()
    finally:
        source.stop()
