"""Dynamic applications through the real actor tree and journal (no sockets): made once however many first
viewers ask at once, shown by the API with ``dynamic: true`` and never the template, kept across a restart (from
the journal and from a snapshot), removed by DynamicAppRemoval; and a journal written before apps could be
dynamic still replays."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kiln.actors.base import ask_blocking
from kiln.actors.commands import CreateDynamicApp, OpenStream
from kiln.actors.dynamic_removal import DynamicAppRemoval
from kiln.actors.origin_gate import OriginGate
from kiln.config import load_server_xml_text
from kiln.events import catalog as ce
from kiln.journal import Journal, NewRecord
from kiln.media.model import MS, Codec, MediaKind, Track
from kiln.media.stream.live import LiveStream
from kiln.service import KilnService
from tests.unit.http.conftest import AUTH

EDGE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>Edge</Name><Type>edge</Type><IP>127.0.0.1</IP>
  <Bind><Managers><API><Port>0</Port></API></Managers></Bind>
  <Managers><API><AccessToken>ome-access-token</AccessToken></API></Managers>
  <VirtualHosts><VirtualHost>
    <Name>default</Name>
    <Host><Names><Name>*</Name></Names></Host>
    <Origins><Origin><Location>/</Location>
      <Pass><Scheme>ovt</Scheme><Urls><Url>127.0.0.1:9</Url></Urls></Pass></Origin></Origins>
    <Applications>
      <Application><Name>*</Name><Type>live</Type>
        <Providers><OVT/></Providers><Publishers><LLHLS/></Publishers></Application>
      <Application><Name>fixed</Name><Type>live</Type><Providers><RTMP/></Providers></Application>
    </Applications>
  </VirtualHost></VirtualHosts>
</Server>
"""


def _open(data_dir: Path, snapshot_every: int = 10_000) -> KilnService:
    service = KilnService(load_server_xml_text(EDGE_XML, data_dir), data_dir, fsync=False,
                          snapshot_every=snapshot_every)
    service.open()
    return service


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[KilnService]:
    service = _open(tmp_path / "data")
    yield service
    service.close()


def _get(service: KilnService, path: str) -> Any:
    with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
        return client.get(path, headers=AUTH)


def _app_records(data_dir: Path) -> list[Any]:
    journal = Journal.open(data_dir, fsync=False)
    try:
        return [r for r in journal.read(1) if r.type in ("AppCreated", "AppDeleted")]
    finally:
        journal.close()


def test_concurrent_first_viewers_of_a_new_app_make_it_once(edge: KilnService) -> None:
    gate = OriginGate(edge.directory)

    async def viewers() -> list[Any]:
        return await asyncio.gather(*(gate._dynamic_app("default", "app", f"s{i % 3}") for i in range(12)))

    found = asyncio.run(viewers())
    assert sum(made for _ref, made in found) == 1  # one made it, the others found it made
    refs = [ref for ref, _made in found]
    assert all(ref is not None for ref in refs) and len({id(ref) for ref in refs}) == 1
    assert refs[0] is edge.directory.streams("default", "app")
    created = [r for r in _app_records(edge.data_dir) if r.type == "AppCreated"]
    assert [(r.version, r.payload["name"], r.payload["dynamic"]) for r in created] == [(2, "app", True)]


def test_the_api_shows_the_app_as_dynamic_and_never_the_template(edge: KilnService) -> None:
    ask_blocking(edge.directory.vhost("default"), CreateDynamicApp("app", "stream"))
    assert sorted(_get(edge, "/v1/vhosts/default/apps").json()["response"]) == ["app", "fixed"]
    app = _get(edge, "/v1/vhosts/default/apps/app").json()["response"]
    assert app["dynamic"] is True and app["name"] == "app" and "llhls" in app["publishers"]
    assert _get(edge, "/v1/vhosts/default/apps/fixed").json()["response"]["dynamic"] is False
    assert _get(edge, "/v1/vhosts/default/apps/*").status_code == 404
    # the vhost is Server.xml's: the app cannot be deleted through the API, only by DynamicAppRemoval
    with TestClient(edge.build_api().starlette, base_url="http://kiln.test") as client:
        assert client.delete("/v1/vhosts/default/apps/app", headers=AUTH).status_code == 403
        assert client.patch("/v1/vhosts/default/apps/app", json={"publishers": {"llhls": {}}},
                            headers=AUTH).status_code == 403


def test_a_vhost_with_no_template_makes_no_app(tmp_path: Path) -> None:
    service = KilnService(load_server_xml_text(EDGE_XML.replace("<Name>*</Name><Type>live</Type>",
                                                                "<Name>other</Name><Type>live</Type>"),
                                               tmp_path), tmp_path, fsync=False)
    service.open()
    try:
        ref, made = asyncio.run(OriginGate(service.directory)._dynamic_app("default", "app", "stream"))
        assert ref is None and not made and service.directory.app("default", "app") is None
        assert _app_records(tmp_path) == []
    finally:
        service.close()


@pytest.mark.parametrize("snapshot_every", [10_000, 1], ids=["journal", "snapshot"])
def test_a_dynamic_app_survives_a_restart(tmp_path: Path, snapshot_every: int) -> None:
    service = _open(tmp_path, snapshot_every)
    try:
        ask_blocking(service.directory.vhost("default"), CreateDynamicApp("app", "stream"))
    finally:
        service.close()
    again = _open(tmp_path, snapshot_every)
    try:
        if snapshot_every == 1:
            assert again.snapshots.load_latest() is not None
        assert again.directory.streams("default", "app") is not None  # its actors run again
        assert _get(again, "/v1/vhosts/default/apps/app").json()["response"]["dynamic"] is True
    finally:
        again.close()


def test_a_template_edited_before_a_restart_configures_the_apps_made_from_it(tmp_path: Path) -> None:
    """Like the vhost's other apps, a dynamic app is configured by Server.xml as it is at each start (OME makes
    dynamic apps again after a restart, from the template it then has)."""
    service = _open(tmp_path)
    try:
        ask_blocking(service.directory.vhost("default"), CreateDynamicApp("app", "stream"))
        assert "thumbnail" not in _get(service, "/v1/vhosts/default/apps/app").json()["response"]["publishers"]
    finally:
        service.close()
    edited = EDGE_XML.replace("<Publishers><LLHLS/></Publishers></Application>",
                              "<Publishers><LLHLS/><Thumbnail/></Publishers></Application>", 1)
    again = KilnService(load_server_xml_text(edited, tmp_path), tmp_path, fsync=False)
    again.open()
    try:
        app = _get(again, "/v1/vhosts/default/apps/app").json()["response"]
        assert app["dynamic"] is True and app["name"] == "app" and "thumbnail" in app["publishers"]
    finally:
        again.close()


def test_dynamic_app_removal_removes_an_unused_app_for_good(tmp_path: Path) -> None:
    service = _open(tmp_path)
    try:
        before = set(threading.enumerate())
        ask_blocking(service.directory.vhost("default"), CreateDynamicApp("app", "stream"))
        made = set(threading.enumerate()) - before
        assert made  # the app's actors
        clock = [time.time() + 1]  # the sweep's own clock, moved by hand (the app was made just before)
        removal = DynamicAppRemoval(service.catalog, service.media.streams, service.directory, idle_s=60, sweep_s=10,
                                    clock=lambda: clock[0])
        assert asyncio.run(removal.sweep()) == []  # counted from when this removal started
        clock[0] += 59
        assert asyncio.run(removal.sweep()) == []
        clock[0] += 1
        assert asyncio.run(removal.sweep()) == [("default", "app")]
        assert service.directory.app("default", "app") is None
        deadline = time.monotonic() + 10  # its supervisors unregister as the app actor stops, on its own thread
        while service.directory.streams("default", "app") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.directory.streams("default", "app") is None
        while any(t.is_alive() for t in made) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [t.name for t in made if t.is_alive()] == []  # nothing of the removed app is left running
        assert _get(service, "/v1/vhosts/default/apps/app").status_code == 404
        assert service.directory.app("default", "fixed") is not None  # configured apps are never removed
    finally:
        service.close()
    again = _open(tmp_path)
    try:
        assert again.directory.app("default", "app") is None
        assert sorted(_get(again, "/v1/vhosts/default/apps").json()["response"]) == ["fixed"]
    finally:
        again.close()


def test_a_journal_from_before_dynamic_apps_replays(tmp_path: Path) -> None:
    """AppCreated v1 records (what every Kiln before this one wrote) replay as API-made, non-dynamic apps."""
    journal = Journal.open(tmp_path, fsync=False)
    try:
        vhost = ce.VhostCreated("api", {"name": "api", "host": {"names": ["api.test"]}}, 1.0)
        config = {"name": "old", "type": "live", "providers": {"rtmp": {}}, "publishers": {"llhls": {}}}
        journal.append([NewRecord(vhost.entity, vhost.TYPE, vhost.VERSION, vhost.payload()),
                        NewRecord("app:api/old", "AppCreated", 1,
                                  {"vhost": "api", "name": "old", "config": config, "created_time": 2.0})]).result(5)
    finally:
        journal.close()
    service = _open(tmp_path)
    try:
        assert service.directory.streams("api", "old") is not None
        app = _get(service, "/v1/vhosts/api/apps/old").json()["response"]
        assert app["dynamic"] is False and app["name"] == "old"
    finally:
        service.close()


@pytest.mark.parametrize("snapshot_every", [10_000, 1], ids=["journal", "snapshot"])
def test_a_vhost_made_through_the_api_with_a_template_keeps_it_across_a_restart(tmp_path: Path,
                                                                                 snapshot_every: int) -> None:
    body = [{"name": "api", "host": {"names": ["api.test"]},
             "origins": {"origin": [{"location": "/", "pass": {"scheme": "ovt", "urls": {"url": ["127.0.0.1:9/"]}}}]},
             "applications": {"application": [{"name": "*", "type": "live", "providers": {"ovt": {}}}]}}]
    service = _open(tmp_path, snapshot_every)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            assert client.post("/v1/vhosts", json=body, headers=AUTH).status_code == 200
            assert client.get("/v1/vhosts/api/apps", headers=AUTH).json()["response"] == []
    finally:
        service.close()
    again = _open(tmp_path, snapshot_every)
    try:
        ask_blocking(again.directory.vhost("api"), CreateDynamicApp("cam", "s"))
        with TestClient(again.build_api().starlette, base_url="http://kiln.test") as client:
            app = client.get("/v1/vhosts/api/apps/cam", headers=AUTH).json()["response"]
            assert app["dynamic"] is True and app["providers"] == {"ovt": {}}
            assert client.delete("/v1/vhosts/api/apps/cam", headers=AUTH).status_code == 200  # not read-only
    finally:
        again.close()


def test_patching_a_dynamic_app_answers_what_a_get_then_shows(tmp_path: Path) -> None:
    """A dynamic app of an API-made vhost can be patched; it stays dynamic (its streams bypassed, DynamicAppRemoval
    may remove it), and the PATCH answer says so as GET does (it said false)."""
    body = [{"name": "api", "host": {"names": ["api.test"]},
             "origins": {"origin": [{"location": "/", "pass": {"scheme": "ovt", "urls": {"url": ["127.0.0.1:9/"]}}}]},
             "applications": {"application": [{"name": "*", "type": "live", "providers": {"ovt": {}}}]}}]
    service = _open(tmp_path)
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            assert client.post("/v1/vhosts", json=body, headers=AUTH).status_code == 200
            ask_blocking(service.directory.vhost("api"), CreateDynamicApp("cam", "s"))
            patched = client.patch("/v1/vhosts/api/apps/cam", json={"publishers": {"llhls": {}}}, headers=AUTH)
            assert patched.status_code == 200, patched.text
            shown = client.get("/v1/vhosts/api/apps/cam", headers=AUTH).json()["response"]
            assert patched.json()["response"]["dynamic"] is shown["dynamic"] is True
    finally:
        service.close()


def _opened(service: KilnService, app: str, provider: str) -> LiveStream:
    ref = service.directory.streams("default", app)
    assert ref is not None
    stream: LiveStream = ask_blocking(ref, OpenStream("s", provider, provider.capitalize(), "", lambda _why: None))
    stream.on_track(Track(0, MediaKind.VIDEO, Codec.H264, MS, width=320, height=180))
    stream.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, MS, sample_rate=48000, channels=2))
    return stream


@pytest.mark.parametrize("restart", [False, True])
def test_every_stream_of_a_dynamic_app_is_bypassed_whatever_its_templates_profiles(tmp_path: Path,
                                                                                   restart: bool) -> None:
    """As OME (TranscoderStream::CreateOutputStreamDynamic): a dynamic app's stream has one output of its own name,
    all its tracks bypassed and no encoder, though the template's profile scales; the fixed app's still scales.
    The app is still dynamic after a restart, so are its streams then."""
    profile = ("<OutputProfiles><OutputProfile><Name>small</Name><OutputStreamName>${OriginStreamName}"
               "</OutputStreamName><Encodes><Video><Name>v</Name><Codec>h264</Codec><Width>160</Width>"
               "<Height>90</Height><Bitrate>100000</Bitrate></Video></Encodes></OutputProfile></OutputProfiles>")
    xml = EDGE_XML.replace("<Providers><OVT/></Providers>", f"<Providers><OVT/></Providers>{profile}")
    xml = xml.replace("<Providers><RTMP/></Providers>", f"<Providers><RTMP/></Providers>{profile}")
    data = tmp_path / "data"

    def start() -> KilnService:
        service = KilnService(load_server_xml_text(xml, data), data, fsync=False)
        service.open()
        return service

    service = start()
    try:
        ask_blocking(service.directory.vhost("default"), CreateDynamicApp("app", "s"))
        if restart:
            service.close()
            service = start()
        dynamic, fixed = _opened(service, "app", "ovt"), _opened(service, "fixed", "rtmp")
        assert dynamic.started and fixed.started
        [output] = dynamic.snapshot().outputs
        assert output.name == "s" and output.playlists == ()
        assert [(t.kind, t.bypass, t.width) for t in output.tracks if t.kind != "Data"] == [
            ("Video", True, 320), ("Audio", True, 0)]
        assert dynamic.transcoder.workers == {}
        [scaled] = fixed.snapshot().outputs
        assert [(t.bypass, t.width) for t in scaled.tracks if t.kind == "Video"] == [(False, 160)]
        assert fixed.transcoder.workers
    finally:
        service.close()
