"""``:startRecord`` paths outside the writable roots are refused with OME's 400 envelope; inside, accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kiln.config import write_roots
from tests.unit.http.conftest import SERVER_XML, Api, start_service

BASE = "/v1/vhosts/default/apps/app"


@pytest.fixture
def confined(tmp_path: Path) -> Iterator[Api]:
    media = tmp_path / "media"
    media.mkdir()
    xml = SERVER_XML.replace("<AccessToken>", f"<WritableRoots><Root>{media}</Root></WritableRoots><AccessToken>")
    service = start_service(tmp_path / "data", xml)
    with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
        yield Api(client)
    service.close()


def start(api: Api, **paths: str) -> object:
    return api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}, **paths})


@pytest.mark.parametrize("field,path", [
    ("filePath", "/etc/cron.d/${Id}.mp4"),
    ("filePath", "../../../../../../../../../etc/x.mp4"),
    ("infoPath", "/tmp/not-a-root/${Id}.xml"),
])
def test_outside_the_roots_is_400_in_omes_envelope_and_nothing_is_created(confined: Api, field: str,
                                                                         path: str) -> None:
    r = start(confined, **{field: path})
    assert r.status_code == 400
    assert r.json() == {"statusCode": 400, "message": f"[HTTP] {field} is outside the writable roots "
                                                      f"(Managers/API/WritableRoots): [{path}] (400)"}
    assert confined.get(f"{BASE}:records").json()["response"] == []


def test_a_stream_name_that_climbs_out_through_a_macro_is_refused(confined: Api, tmp_path: Path) -> None:
    r = confined.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "../../../../../etc/x"},
                                              "filePath": f"{tmp_path}/media/${{Stream}}.mp4"})
    assert r.status_code == 400 and "filePath is outside" in r.json()["message"]


def test_inside_the_roots_is_accepted(confined: Api, tmp_path: Path) -> None:
    r = start(confined, filePath=f"{tmp_path}/media/${{Stream}}/${{Sequence}}.mp4",
              infoPath=f"{tmp_path}/media/${{Stream}}.xml")
    assert r.status_code == 200, r.text


def test_the_default_roots_take_the_data_dir_and_tmp(api: Api) -> None:
    assert start(api, filePath="rel/${Id}.mp4").status_code == 200  # data dir/records
    assert api.post(f"{BASE}:startRecord", {"id": "t", "stream": {"name": "s"},
                                            "filePath": "/tmp/rec/${Id}.mp4"}).status_code == 200
    assert api.post(f"{BASE}:startRecord", {"id": "e", "stream": {"name": "s"},
                                            "filePath": "/etc/x.mp4"}).status_code == 400


def test_an_api_app_whose_root_path_is_outside_cannot_record(api: Api) -> None:
    assert api.post("/v1/vhosts", [{"name": "vh"}]).status_code == 200
    r = api.post("/v1/vhosts/vh/apps", [{"name": "evil", "type": "live", "publishers": {"file": {"rootPath": "/etc"}}}])
    assert r.status_code == 200, r.text
    r = api.post("/v1/vhosts/vh/apps/evil:startRecord", {"id": "r", "stream": {"name": "s"}})
    assert r.status_code == 400 and "rootPath is outside" in r.json()["message"]


def test_the_paths_are_resolved_and_checked_off_the_event_loop(confined: Api, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """realpath walks every component (an lstat each) and the targets are stat'ed: on a slow or stuck file
    system (a hung NFS mount) that held every other client while the loop did it."""
    on_loop: list[bool] = []
    real = write_roots._real

    def spy(path: str | Path, names: Mapping[str, str] | None = None) -> str:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(path, names)

    monkeypatch.setattr(write_roots, "_real", spy)
    r = start(confined, filePath=f"{tmp_path}/media/${{Id}}.ts", infoPath=f"{tmp_path}/media/i.xml")
    assert r.status_code == 200, r.text
    assert on_loop and not any(on_loop), on_loop


def channel_app(api: Api, files_dir: Path) -> str:
    assert api.post("/v1/vhosts", [{"name": "sv"}]).status_code == 200
    app = {"name": "tv", "type": "live", "providers": {"schedule": {"mediaRootDir": "/media",
                                                                    "scheduleFilesDir": str(files_dir)}}}
    assert api.post("/v1/vhosts/sv/apps", [app]).status_code == 200
    return "/v1/vhosts/sv/apps/tv/scheduledChannels"


def test_an_api_app_cannot_write_schedule_files_outside_the_roots(confined: Api, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    channels = channel_app(confined, outside)
    r = confined.post(channels, {"stream": {"name": "ch"}})
    assert r.json() == {"statusCode": 400, "message": "[HTTP] scheduleFilesDir is outside the writable roots "
                                                      f"(Managers/API/WritableRoots): [{outside}] (400)"}
    assert not outside.exists()
    assert confined.get(channels).json()["response"] == []


def test_schedule_files_inside_the_roots_are_written_and_deleted(confined: Api, tmp_path: Path) -> None:
    inside = tmp_path / "media" / "schedules"
    channels = channel_app(confined, inside)
    assert confined.post(channels, {"stream": {"name": "ch"}}).status_code == 201
    assert (inside / "ch.sch").read_bytes().startswith(b'<?xml version="1.0"?>\n<Schedule>')
    assert confined.get(channels).json()["response"] == ["ch"]
    assert confined.delete(f"{channels}/ch").status_code == 200
    assert not (inside / "ch.sch").exists()
