"""Reports of the ScheduleFilesDir watcher reach the app's actor after the API may have changed the same channel:
a report from a look that began before Kiln's own write or delete of that file is stale and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kiln.actors.base import ask_blocking
from kiln.actors.commands import ScheduleFileChanged, ScheduleFileGone
from kiln.domain.schedule import schedule_from_json
from kiln.service import KilnService
from tests.unit.http.conftest import SERVER_XML, Api, start_service

CHANNELS = "/v1/vhosts/default/apps/app/scheduledChannels"
BODY = {"stream": {"name": "ch"}, "fallbackProgram": {"items": [{"url": "file://a.mp4"}]}}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[KilnService, Api]]:
    provider = (f"<Providers><RTMP/><Schedule><MediaRootDir>{tmp_path}</MediaRootDir>"
                f"<ScheduleFilesDir>{tmp_path / 'sch'}</ScheduleFilesDir></Schedule></Providers>")
    service = start_service(tmp_path / "data", SERVER_XML.replace("<Providers><RTMP/></Providers>", provider))
    try:
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield service, Api(client)
    finally:
        service.close()


def _report(service: KilnService, command_of: Any) -> None:
    ref = service.directory.streams("default", "app")
    assert ref is not None
    watcher = ref.proxy().files_watcher.get()  # the actor listens to its current watcher only
    ask_blocking(ref, command_of(watcher))


def test_a_look_begun_before_the_api_deleted_the_channel_does_not_bring_it_back(
        served: tuple[KilnService, Api]) -> None:
    service, api = served
    assert api.request("POST", CHANNELS, BODY).status_code == 201
    schedule = schedule_from_json(BODY, 0)
    looked = time.monotonic()  # a look reads ch.sch ...
    assert api.request("DELETE", f"{CHANNELS}/ch").status_code == 200  # ... the API deletes ch (and its file) ...
    _report(service, lambda w: ScheduleFileChanged(schedule, w, looked))  # ... then the look's report arrives
    assert api.request("GET", CHANNELS).json()["response"] == []
    _report(service, lambda w: ScheduleFileChanged(schedule, w, time.monotonic()))  # a file written since: news
    assert api.request("GET", CHANNELS).json()["response"] == ["ch"]


def test_a_look_begun_before_the_api_made_the_channel_does_not_delete_it(served: tuple[KilnService, Api]) -> None:
    service, api = served
    looked = time.monotonic()  # three looks without ch.sch, the last begun here ...
    assert api.request("POST", CHANNELS, BODY).status_code == 201  # ... the API makes ch (and its file) ...
    _report(service, lambda w: ScheduleFileGone("ch", w, looked))
    assert api.request("GET", CHANNELS).json()["response"] == ["ch"]
    _report(service, lambda w: ScheduleFileGone("ch", w, time.monotonic()))  # deleted since: the channel goes
    assert api.request("GET", CHANNELS).json()["response"] == []
