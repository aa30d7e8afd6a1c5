"""HLS dumps on a real Kiln: an outputPath, infoFile or playlist name outside the writable roots is refused
with OME's 400 envelope and nothing is written there; inside, the dump writes as before."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

DUMPS = "/v1/vhosts/default/apps/app/streams/cam"


def test_dump_paths_are_confined_to_the_writable_roots(tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    media, outside = tmp_path / "media", tmp_path / "outside"
    ports = Ports()
    xml = server_xml(ports, media / "records").replace(
        "<AccessToken>", f"<WritableRoots><Root>{media}</Root></WritableRoots><AccessToken>")
    (tmp_path / "kiln").mkdir()
    kiln = KilnProcess(tmp_path / "kiln", xml, ports).start()
    pub = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        base = f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8"
        kiln.wait_for(lambda: httpx.get(base, timeout=10).status_code == 200, timeout=30, what="LL-HLS of cam")
        refused = [
            ("outputPath", str(outside / "d1"), {}),
            ("outputPath", f"{media}/../outside/d2", {}),
            ("infoFile", str(outside / "d3.xml"), {"outputPath": str(media / "d3")}),
            ("playlist", "../../outside/x.m3u8", {"outputPath": str(media / "d4")}),
        ]
        for n, (field, value, extra) in enumerate(refused):
            body = {"id": f"d{n}", "outputStreamName": "cam", "outputPath": value, **extra}
            if field == "infoFile":
                body["infoFile"] = value
            if field == "playlist":
                body["playlist"] = [value]
            r = kiln.api.post(f"{DUMPS}:startHlsDump", json=body)
            assert r.status_code == 400, (field, r.text)
            assert r.json() == {"statusCode": 400, "message": f"[HTTP] {field} is outside the writable roots "
                                                              f"(Managers/API/WritableRoots): [{value}] (400)"}
        r = kiln.api.post(f"{DUMPS}:startHlsDump", json={"id": "ok", "outputStreamName": "cam",
                                                         "outputPath": str(media / "ok"), "playlist": ["llhls.m3u8"]})
        assert r.status_code == 200, r.text
        kiln.wait_for(lambda: list((media / "ok").glob("seg_*")), timeout=30, what="dump segments")
        assert not outside.exists()
        listed = kiln.api.post(f"{DUMPS}:hlsDumps", json={"outputStreamName": "cam"}).json()["response"]
        assert [d["id"] for d in listed] == ["ok"]
    finally:
        pub.stop()
        kiln.close()
