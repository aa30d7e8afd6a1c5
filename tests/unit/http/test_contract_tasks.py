"""Contract: push and record task endpoints, full objects and check order (rest-spec §9, §10; seeds 000–003).

Complements test_push_record.py. Duplicate ids answer 409 as the seeds say (README: deliberate).
State changes that need a live stream (connecting/pushing/recording, stopRecord counters,
outputFilePath) are e2e matters.
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time

from tests.unit.http.conftest import Api

BASE = "/v1/vhosts/default/apps/app"
EPOCH_KST = "1970-01-01T09:00:00.000+09:00"
OK = {"message": "OK", "statusCode": 200}


@pytest.fixture
def bare_app(api: Api) -> Api:
    """An API-created app with default publishers: no push, no file."""
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    return api


def push_object(**over: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "app": "app", "createdTime": "2023-03-15T23:02:34.371+09:00", "finishTime": EPOCH_KST, "id": "p1",
        "isConfig": False, "protocol": "rtmp", "sentBytes": 0, "sentTime": 0, "sequence": 0, "startTime": EPOCH_KST,
        "state": "ready", "stream": {"name": "stream", "trackIds": [], "variantNames": []},
        "totalsentBytes": 0, "totalsentTime": 0, "url": "rtmp://example.com/live", "vhost": "default"}
    obj.update(over)
    return obj


# -- push --

@pytest.mark.parametrize("action", ["startPush", "stopPush", "pushes"])
def test_push_lookups_come_first(api: Api, action: str) -> None:
    r = api.post(f"/v1/vhosts/nope/apps/app:{action}", {})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = api.post(f"/v1/vhosts/default/apps/nope:{action}", {})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find the application: [default/nope] (404)", "statusCode": 404}


def test_protocol_is_checked_before_the_push_app(bare_app: Api) -> None:
    r = bare_app.post("/v1/vhosts/vh/apps/live:startPush", {"protocol": "webrtc"})
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] Could not find protocol 'webrtc': [vh/live] (400)", "statusCode": 400}
    r = bare_app.post("/v1/vhosts/vh/apps/live:startPush", {"protocol": "srt"})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find application: [vh/live] (404)", "statusCode": 404}


def test_stop_push_without_push_app_reports_an_empty_id(bare_app: Api) -> None:
    r = bare_app.post("/v1/vhosts/vh/apps/live:stopPush", {})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find id '': [vh/live] (404)", "statusCode": 404}
    r = bare_app.get("/v1/vhosts/vh/apps/live:pushes")
    assert r.json() == {"message": "OK", "response": [], "statusCode": 200}


@freeze_time("2023-03-15 14:02:34.371")
def test_push_objects_per_protocol(api: Api, seoul_tz: None) -> None:
    r = api.post(f"{BASE}:startPush", {"id": "p1", "stream": {"name": "stream"}, "protocol": " RTMP ",
                                       "url": "  rtmp://example.com/live///  ", "streamKey": ""})
    assert r.status_code == 200
    assert r.json() == {**OK, "response": push_object()}
    r = api.post(f"{BASE}:startPush", {"id": "p2", "stream": {"name": "stream", "trackIds": [1, 2]},
                                       "protocol": "srt", "url": "srt://example.com:9999?mode=caller&latency=1"})
    assert r.json() == {**OK, "response": push_object(
        id="p2", protocol="srt", url="srt://example.com:9999?mode=caller&latency=1",
        stream={"name": "stream", "trackIds": [1, 2], "variantNames": []})}
    r = api.post(f"{BASE}:startPush", {"id": "p3", "stream": {"name": "stream"}, "protocol": "mpegts",
                                       "url": "tcp://example.com:4000", "streamKey": "k"})
    assert r.json() == {**OK, "response": push_object(id="p3", protocol="mpegts", url="tcp://example.com:4000",
                                                      streamKey="k")}


@freeze_time("2023-03-15 14:02:34.371")
def test_push_list_full_objects_sorted_by_id(api: Api, seoul_tz: None) -> None:
    for task_id in ("b", "a"):
        api.post(f"{BASE}:startPush", {"id": task_id, "stream": {"name": "stream"}, "protocol": "rtmp",
                                       "url": "rtmp://example.com/live", "streamKey": "key"})
    expected = {**OK, "response": [push_object(id="a", streamKey="key"), push_object(id="b", streamKey="key")]}
    assert api.post(f"{BASE}:pushes").json() == expected
    assert api.get(f"{BASE}:pushes").json() == expected
    assert api.post(f"{BASE}:pushes", {"id": "a"}).json() == {**OK, "response": [push_object(id="a", streamKey="key")]}
    assert api.post(f"{BASE}:pushes", {"id": 5}).json() == expected  # a non-string id is no filter


def test_duplicate_push_id_is_409_as_the_seeds_say(api: Api) -> None:
    body = {"id": "p", "stream": {"name": "s"}, "protocol": "rtmp", "url": "rtmp://h/a"}
    api.post(f"{BASE}:startPush", body)
    r = api.post(f"{BASE}:startPush", {**body, "protocol": "srt", "url": "srt://h:1"})
    assert r.status_code == 409
    assert r.json() == {"message": "[HTTP] Duplicate ID (409)", "statusCode": 409}


def test_stop_push_answers_the_envelope_only(api: Api) -> None:
    api.post(f"{BASE}:startPush", {"id": "p", "stream": {"name": "s"}, "protocol": "rtmp", "url": "rtmp://h/a"})
    r = api.post(f"{BASE}:stopPush", {"id": "p"})
    assert r.status_code == 200
    assert r.json() == OK
    assert api.post(f"{BASE}:pushes").json() == {**OK, "response": []}


# -- record --

@pytest.mark.parametrize("action", ["startRecord", "stopRecord", "records"])
def test_record_lookups_come_first(api: Api, action: str) -> None:
    r = api.post(f"/v1/vhosts/nope/apps/app:{action}", {})
    assert r.json() == {"message": "[HTTP] Could not find the virtual host: [nope] (404)", "statusCode": 404}
    r = api.post(f"/v1/vhosts/default/apps/nope:{action}", {})
    assert r.json() == {"message": "[HTTP] Could not find the application: [default/nope] (404)", "statusCode": 404}


@pytest.mark.parametrize("action", ["startRecord", "stopRecord", "records"])
def test_file_app_is_checked_before_the_body(bare_app: Api, action: str) -> None:
    r = bare_app.post(f"/v1/vhosts/vh/apps/live:{action}", {})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] Could not find application: [vh/live] (404)", "statusCode": 404}


@freeze_time("2023-03-15 12:15:20.113")
def test_record_object_with_every_optional_field(api: Api, seoul_tz: None) -> None:
    body = {"id": "r1", "stream": {"name": "stream", "tracks": [101], "variantNames": ["aac", 3]},
            "filePath": "/tmp/rec/${Stream}_${Sequence}.mp4", "infoPath": "/tmp/rec/${Stream}.xml",
            "schedule": "0 */1 *", "segmentationRule": "continuity", "metadata": "free text"}
    r = api.post(f"{BASE}:startRecord", body)
    assert r.status_code == 200
    assert r.json() == {**OK, "response": {
        "app": "app", "createdTime": "2023-03-15T21:15:20.113+09:00", "filePath": "/tmp/rec/${Stream}_${Sequence}.mp4",
        "id": "r1", "infoPath": "/tmp/rec/${Stream}.xml", "isConfig": False, "metadata": "free text",
        "schedule": "0 */1 *", "segmentationRule": "continuity", "state": "ready",
        "stream": {"name": "stream", "trackIds": [101], "variantNames": ["aac"]}, "vhost": "default"}}


@freeze_time("2023-03-15 12:15:20.113")
def test_record_non_integer_interval_counts_as_zero(api: Api, seoul_tz: None) -> None:
    r = api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}, "interval": "60000",
                                         "schedule": "10 */1 *"})
    assert r.json() == {**OK, "response": {
        "app": "app", "createdTime": "2023-03-15T21:15:20.113+09:00", "id": "r", "isConfig": False,
        "schedule": "10 */1 *", "segmentationRule": "discontinuity", "state": "ready",
        "stream": {"name": "s", "trackIds": [], "variantNames": []}, "vhost": "default"}}


@pytest.mark.parametrize("schedule", ["0 0 0", "*/59 59 23", "* * *", "5 */5 */23"])
def test_record_valid_schedules(api: Api, schedule: str) -> None:
    r = api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}, "schedule": schedule})
    assert r.status_code == 200, schedule
    assert r.json()["response"]["schedule"] == schedule


def test_interval_with_schedule_comes_before_the_schedule_syntax(api: Api) -> None:
    r = api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}, "interval": 1, "schedule": "bad"})
    assert r.json() == {"message": "[HTTP] [Interval] and [Schedule] cannot be used at the same time (400)",
                        "statusCode": 400}


def test_required_fields_come_before_a_duplicate_id(api: Api) -> None:
    api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}})
    r = api.post(f"{BASE}:startRecord", {"id": "r"})
    assert r.json() == {"message": "[HTTP] There is no required parameter [ stream.name] (400)", "statusCode": 400}
    r = api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}, "schedule": "99 * *"})
    assert r.json() == {"message": "[HTTP] Invalid [schedule] parameter (400)", "statusCode": 400}
    r = api.post(f"{BASE}:startRecord", {"id": "r", "stream": {"name": "s"}})
    assert r.status_code == 409
    assert r.json() == {"message": "[HTTP] Duplicate ID already exists (409)", "statusCode": 409}


@freeze_time("2023-03-15 12:15:20.113")
def test_records_list_and_stop_full_objects(api: Api, seoul_tz: None) -> None:
    for task_id in ("r2", "r1"):
        api.post(f"{BASE}:startRecord", {"id": task_id, "stream": {"name": "stream"}, "interval": 60000})

    def rec(task_id: str, state: str = "ready") -> dict[str, Any]:
        return {"app": "app", "createdTime": "2023-03-15T21:15:20.113+09:00", "id": task_id, "interval": 60000,
                "isConfig": False, "segmentationRule": "discontinuity", "state": state,
                "stream": {"name": "stream", "trackIds": [], "variantNames": []}, "vhost": "default"}

    expected = {**OK, "response": [rec("r1"), rec("r2")]}
    assert api.post(f"{BASE}:records").json() == expected
    assert api.get(f"{BASE}:records").json() == expected
    assert api.post(f"{BASE}:records", {"id": "r2"}).json() == {**OK, "response": [rec("r2")]}
    assert api.post(f"{BASE}:records", {"id": "zz"}).json() == {**OK, "response": []}
    r = api.post(f"{BASE}:stopRecord", {"id": "r1"})
    assert r.status_code == 200
    assert r.json() == {**OK, "response": rec("r1", "stopping")}
    assert api.post(f"{BASE}:records").json() == {**OK, "response": [rec("r2")]}


def test_stop_record_errors(api: Api) -> None:
    r = api.post(f"{BASE}:stopRecord")
    assert r.status_code == 400
    assert r.json() == {"message": "[HTTP] There is no required parameter [ id] (400)", "statusCode": 400}
    r = api.post(f"{BASE}:stopRecord", {"id": "nope"})
    assert r.status_code == 404
    assert r.json() == {"message": "[HTTP] There is no record information related to the ID [nope] (404)",
                        "statusCode": 404}
