"""An output profile change as an operator sees it: the app's live streams are reconnected into the new outputs
(the publisher is dropped and comes back, as with OME; the new profile's outputs, a thumbnail included, appear),
its push and record tasks stay and resume on their own (beyond OME, which drops them), and another app of the
same vhost keeps streaming untouched."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

# Server.xml vhosts are read-only (as in OME), so the apps live in a vhost made through the API; the Server.xml
# vhost is given a name that matches nothing so that RTMP publishes to 127.0.0.1 reach the API vhost
VHOST = "/v1/vhosts/tv"
APP = f"{VHOST}/apps/app"
OTHER = f"{VHOST}/apps/other"
NEW_PROFILE = {"name": "extra", "outputStreamName": "${OriginStreamName}_extra",
               "encodes": {"videos": [{"name": "v", "bypass": True}], "audios": [{"name": "a", "bypass": True}],
                           "images": [{"codec": "jpeg", "width": 160, "height": 90, "framerate": 1}]}}


def _task(kiln: KilnProcess, verb: str, task_id: str) -> dict[str, Any]:
    r = kiln.api.post(f"{APP}:{verb}")
    assert r.status_code == 200, r.text
    found = [t for t in r.json()["response"] if t["id"] == task_id]
    return found[0] if found else {}


def _streams(kiln: KilnProcess, app: str) -> list[str]:
    r = kiln.api.get(f"{app}/streams")
    return r.json()["response"] if r.status_code == 200 else []


def _created(kiln: KilnProcess, app: str, stream: str) -> str | None:
    r = kiln.api.get(f"{app}/streams/{stream}")
    return r.json()["response"]["input"]["createdTime"] if r.status_code == 200 else None


def _outputs(kiln: KilnProcess, stream: str) -> set[str]:
    r = kiln.api.get(f"{APP}/streams/{stream}")
    return {o["name"] for o in r.json()["response"]["outputs"]} if r.status_code == 200 else set()


def _writing(directory: Path) -> bool:
    """A recording file is being written (under its temporary name, renamed when it is finished)."""
    return any(p.stat().st_size > 10_000 for p in directory.glob("tmp_*")) if directory.exists() else False


def test_profile_change_keeps_tasks_and_other_apps(kiln_factory: Callable[..., KilnProcess], test_flv: Path,
                                                   peer_dir: Path, nginx_rtmp: NginxRtmp) -> None:
    ports = Ports()
    xml = server_xml(ports, peer_dir / "unused").replace("<Name>*</Name>", "<Name>xml.invalid</Name>")
    kiln = kiln_factory(xml, ports)
    assert kiln.api.post("/v1/vhosts", json=[{"name": "tv", "host": {"names": ["127.0.0.1"]}}]).status_code == 200
    publishers = {"push": {}, "file": {}, "llhls": {"chunkDuration": 0.5, "segmentDuration": 2},
                  "thumbnail": {"crossDomains": {"urls": ["*"]}}}
    r = kiln.api.post(f"{VHOST}/apps", json=[{"name": name, "type": "live", "providers": {"rtmp": {}},
                                              "publishers": publishers} for name in ("app", "other")])
    assert r.status_code == 200 and [item["statusCode"] for item in r.json()] == [200, 200], r.text
    rtmp = f"rtmp://127.0.0.1:{kiln.ports.rtmp}"
    records = peer_dir / "records"
    peers: list[Peer] = []
    try:
        peers.append(cam := publish_rtmp(f"{rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir))
        peers.append(other := publish_rtmp(f"{rtmp}/other/cam2", test_flv, loop=True, log_dir=peer_dir))
        kiln.wait_for(lambda: "cam" in _streams(kiln, APP) and "cam2" in _streams(kiln, OTHER), what="both streams")
        other_created = _created(kiln, OTHER, "cam2")

        r = kiln.api.post(f"{APP}:startPush", json={"id": "p1", "stream": {"name": "cam"}, "protocol": "rtmp",
                                                    "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live",
                                                    "streamKey": "pc"})
        assert r.status_code == 200, r.text
        r = kiln.api.post(f"{APP}:startRecord", json={"id": "r1", "stream": {"name": "cam"},
                                                      "filePath": f"{records}/${{Sequence}}.ts"})
        assert r.status_code == 200, r.text
        nginx_rtmp.wait_publishing("pc")
        kiln.wait_for(lambda: _task(kiln, "records", "r1").get("state") == "recording", what="recording")
        kiln.wait_for(lambda: _writing(records), what="the first recording")  # a temporary file until it ends

        # the change: the app reconfigures, its publisher is dropped (ffmpeg ends), the tasks stay
        r = kiln.api.post(f"{APP}/outputProfiles", json=[NEW_PROFILE])
        assert r.status_code == 200, r.text
        assert [item["statusCode"] for item in r.json()] == [200]
        kiln.wait_for(lambda: not cam.alive, timeout=20, what="the publisher to be disconnected")
        kiln.wait_for(lambda: "cam" not in _streams(kiln, APP), what="the stream to end")
        kiln.wait_for(lambda: "pc" not in nginx_rtmp.publishing(), what="the push to stop sending")
        kiln.wait_for(lambda: _task(kiln, "records", "r1").get("state") == "ready", what="the record to wait")
        kiln.wait_for(lambda: (records / "0.ts").exists() and not _writing(records), what="the first file closed")
        kiln.wait_for(lambda: _task(kiln, "pushes", "p1").get("state") == "ready", what="the push to wait")
        profiles = kiln.api.get(f"{APP}/outputProfiles").json()["response"]
        assert sorted(profiles) == ["default", "extra"]  # an app made through the API starts with OME's default

        # the other app did not notice
        assert other.alive
        assert _created(kiln, OTHER, "cam2") == other_created

        # the user restarts the publisher: the new outputs exist, the push and the record resume
        peers.append(again := publish_rtmp(f"{rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir))
        kiln.wait_for(lambda: _outputs(kiln, "cam"), what="the stream back")
        assert _outputs(kiln, "cam") == {"cam", "cam_extra"}
        thumbs = f"http://127.0.0.1:{ports.thumbnail}/app"
        thumb = kiln.wait_for(lambda: (t := httpx.get(f"{thumbs}/cam_extra/thumb.jpg")).status_code == 200 and t,
                              what="the new profile's thumbnail")
        with av.open(io.BytesIO(thumb.content)) as image:
            frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (160, 90)
        assert httpx.get(f"{thumbs}/cam/thumb.jpg").status_code == 404  # the default profile has no image encode
        nginx_rtmp.wait_publishing("pc", timeout=30)
        kiln.wait_for(lambda: _task(kiln, "pushes", "p1").get("state") == "pushing", what="pushing again")
        kiln.wait_for(lambda: _task(kiln, "records", "r1").get("state") == "recording", what="recording again")
        kiln.wait_for(lambda: _writing(records), timeout=30, what="a new recording file")
        assert other.alive and _created(kiln, OTHER, "cam2") == other_created
        again.stop()
        kiln.wait_for(lambda: (records / "1.ts").exists(), what="the second file closed")
        assert (records / "1.ts").stat().st_size > 10_000
    finally:
        for peer in peers:
            peer.stop()
