"""Push and record task endpoints (rest-spec §9, §10; seeds 000–003)."""

from __future__ import annotations

from freezegun import freeze_time

from tests.unit.http.conftest import Api

BASE = "/v1/vhosts/default/apps/app"
RTMP_PUSH = {"id": "p1", "stream": {"name": "stream", "variantNames": ["h264_fhd", "aac"]},
             "protocol": "rtmp", "url": "rtmp://example.com/live/", "streamKey": " key "}


@freeze_time("2023-03-15 14:02:34.371")
def test_start_push_answers_the_seed_object(api: Api, seoul_tz: None) -> None:
    r = api.post(f"{BASE}:startPush", RTMP_PUSH)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "OK", "statusCode": 200, "response": {
        "id": "p1", "state": "ready", "vhost": "default", "app": "app",
        "stream": {"name": "stream", "trackIds": [], "variantNames": ["h264_fhd", "aac"]},
        "protocol": "rtmp", "url": "rtmp://example.com/live", "streamKey": "key",
        "sentBytes": 0, "sentTime": 0, "sequence": 0, "totalsentBytes": 0, "totalsentTime": 0,
        "isConfig": False,
        "createdTime": "2023-03-15T23:02:34.371+09:00",
        "startTime": "1970-01-01T09:00:00.000+09:00",
        "finishTime": "1970-01-01T09:00:00.000+09:00"}}


def test_push_validation_order_and_messages(api: Api) -> None:
    def msg(body: object) -> tuple[int, str]:
        r = api.post(f"{BASE}:startPush", body)
        return r.status_code, r.json()["message"]

    assert msg({}) == (400, "[HTTP] Could not find protocol '': [default/app] (400)")
    assert msg({"protocol": " HLS "}) == (400, "[HTTP] Could not find protocol 'hls': [default/app] (400)")
    assert msg({"protocol": "RTMP"}) == (400, "[HTTP] There is no required parameter [ id stream.name url] (400)")
    assert msg({"protocol": "rtmp", "id": "x", "url": 5, "stream": {"name": "s"}}) == (
        400, "[HTTP] There is no required parameter [ url] (400)")
    base = {"id": "x", "stream": {"name": "s"}}
    assert msg({**base, "protocol": "rtmp", "url": "not a url"}) == (400, "[HTTP] Could not parse url (400)")
    assert msg({**base, "protocol": "rtmp", "url": "srt://h:1"}) == (400, "[HTTP] Unsupported protocol (400)")
    assert msg({**base, "protocol": "srt", "url": "udp://h:1"}) == (400, "[HTTP] Unsupported protocol (400)")
    assert msg({**base, "protocol": "srt", "url": "srt://h:1?mode=listener"}) == (
        400, "[HTTP] Unsupported connection mode (400)")
    assert msg({**base, "protocol": "mpegts", "url": "rtmp://h/a"}) == (400, "[HTTP] Unsupported protocol (400)")
    assert msg({**base, "protocol": "mpegts", "url": "tcp://h:1?listen"}) == (
        400, "[HTTP] Unsupported tcp listen (400)")
    assert api.post(f"{BASE}:startPush", RTMP_PUSH).status_code == 200
    assert msg(RTMP_PUSH) == (409, "[HTTP] Duplicate ID (409)")


def test_push_needs_push_publisher(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    r = api.post("/v1/vhosts/vh/apps/live:startPush", RTMP_PUSH)
    assert r.status_code == 404
    assert r.json()["message"] == "[HTTP] Could not find application: [vh/live] (404)"
    r = api.post("/v1/vhosts/vh/apps/live:stopPush", {"id": "p1"})
    assert r.json()["message"] == "[HTTP] Could not find id 'p1': [vh/live] (404)"
    assert api.post("/v1/vhosts/vh/apps/live:pushes").json()["response"] == []


def test_push_list_sorted_filtered_and_stop(api: Api) -> None:
    for task_id in ("b", "a", "c"):
        api.post(f"{BASE}:startPush", {**RTMP_PUSH, "id": task_id})
    r = api.post(f"{BASE}:pushes")
    assert [p["id"] for p in r.json()["response"]] == ["a", "b", "c"]
    assert [p["id"] for p in api.get(f"{BASE}:pushes").json()["response"]] == ["a", "b", "c"]
    assert [p["id"] for p in api.post(f"{BASE}:pushes", {"id": "b"}).json()["response"]] == ["b"]
    assert api.post(f"{BASE}:pushes", {"id": "zz"}).json()["response"] == []
    assert api.post(f"{BASE}:stopPush", {"id": "b"}).json() == {"message": "OK", "statusCode": 200}
    assert [p["id"] for p in api.post(f"{BASE}:pushes").json()["response"]] == ["a", "c"]
    r = api.post(f"{BASE}:stopPush", {"id": "b"})
    assert r.status_code == 404
    assert r.json()["message"] == "[HTTP] Could not find id 'b': [default/app] (404)"
    r = api.post(f"{BASE}:stopPush", {})
    assert r.json()["message"] == "[HTTP] There is no required parameter [ id] (400)"
    assert api.post(f"{BASE}:startPush", {**RTMP_PUSH, "id": "b"}).status_code == 200  # id free again


def test_push_lenient_fields_and_legacy_tracks(api: Api) -> None:
    body = {"id": "t", "stream": {"name": "s", "tracks": [101, "x", 102], "variantNames": "nope"},
            "protocol": "mpegts", "url": "udp://127.0.0.1:4000", "streamKey": 7, "unknown": True}
    p = api.post(f"{BASE}:startPush", body).json()["response"]
    assert p["stream"] == {"name": "s", "trackIds": [101, 102], "variantNames": []}
    assert "streamKey" not in p


def test_numbers_beyond_64_bits_are_taken_as_wrong_typed_not_a_500(api: Api) -> None:
    """A JSON body's integer has any size and msgpack stores 64 bits: a trackId or an interval of 2**64 was decided
    and applied, then refused by the journal: a 500, and the id taken ('Duplicate ID') by a task no GET showed
    (before that refusal was the append's alone, it stopped the journal for every later command)."""
    big = 2**64
    push = {**RTMP_PUSH, "stream": {"name": "s", "trackIds": [101, big]}}
    r = api.post(f"{BASE}:startPush", push)
    assert r.status_code == 200 and r.json()["response"]["stream"]["trackIds"] == [101], r.text
    r = api.post(f"{BASE}:startRecord", {"id": "r1", "stream": {"name": "s", "tracks": [big]}, "interval": big})
    assert r.status_code == 200, r.text
    assert r.json()["response"]["stream"]["trackIds"] == [] and "interval" not in r.json()["response"]
    listed = api.post(f"{BASE}:records", {}).json()["response"]
    assert [x["id"] for x in listed] == ["r1"]
    r = api.post("/v1/subscriptions", {"id": "s1", "url": "http://127.0.0.1:9/hook", "from": big})
    assert r.status_code == 400 and "from must be a journal sequence number" in r.json()["message"]
    assert api.get("/v1/subscriptions").json()["response"] == []


@freeze_time("2023-03-15 12:15:20.113")
def test_start_record_answers_seed_object(api: Api, seoul_tz: None) -> None:
    r = api.post(f"{BASE}:startRecord", {"id": "2", "stream": {"name": "stream"}, "interval": 60000,
                                        "segmentationRule": "discontinuity"})
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {
        "id": "2", "state": "ready", "vhost": "default", "app": "app",
        "stream": {"name": "stream", "trackIds": [], "variantNames": []},
        "interval": 60000, "segmentationRule": "discontinuity", "isConfig": False,
        "createdTime": "2023-03-15T21:15:20.113+09:00"}


def test_record_validation(api: Api) -> None:
    def msg(body: object) -> tuple[int, str]:
        r = api.post(f"{BASE}:startRecord", body)
        return r.status_code, r.json()["message"]

    assert msg({}) == (400, "[HTTP] There is no required parameter [ id stream.name] (400)")
    assert msg({"id": "r"}) == (400, "[HTTP] There is no required parameter [ stream.name] (400)")
    s = {"id": "r", "stream": {"name": "s"}}
    assert msg({**s, "interval": 1000, "schedule": "0 */1 *"}) == (
        400, "[HTTP] [Interval] and [Schedule] cannot be used at the same time (400)")
    for bad in ("60 * *", "* * 24", "*/ * *", "0 0", "a b c", "0 0 0 0"):
        assert msg({**s, "schedule": bad}) == (400, "[HTTP] Invalid [schedule] parameter (400)"), bad
    ok = api.post(f"{BASE}:startRecord", {**s, "schedule": "10 */1 *", "interval": 0,
                                         "segmentationRule": "bogus", "metadata": {"obj": 1}})
    rec = ok.json()["response"]
    assert rec["schedule"] == "10 */1 *" and rec["segmentationRule"] == "discontinuity"
    assert "interval" not in rec and "metadata" not in rec
    assert msg(s) == (409, "[HTTP] Duplicate ID already exists (409)")


def test_stop_record_and_list(api: Api) -> None:
    for task_id in ("r2", "r1"):
        api.post(f"{BASE}:startRecord", {"id": task_id, "stream": {"name": "s"}, "metadata": "m",
                                         "filePath": "/tmp/x.mp4"})
    assert [r["id"] for r in api.post(f"{BASE}:records").json()["response"]] == ["r1", "r2"]
    r = api.post(f"{BASE}:stopRecord", {"id": "r1"})
    assert r.status_code == 200
    stopped = r.json()["response"]
    assert stopped["state"] == "stopping" and "finishTime" not in stopped and "outputFilePath" not in stopped
    assert stopped["metadata"] == "m" and stopped["filePath"] == "/tmp/x.mp4"
    assert [r["id"] for r in api.get(f"{BASE}:records").json()["response"]] == ["r2"]
    r = api.post(f"{BASE}:stopRecord", {"id": "r1"})
    assert r.json()["message"] == "[HTTP] There is no record information related to the ID [r1] (404)"
    assert api.post(f"{BASE}:stopRecord", {"id": 5}).json()["message"] == (
        "[HTTP] There is no required parameter [ id] (400)")


def test_record_needs_file_publisher(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live"}])
    for action in ("startRecord", "stopRecord", "records"):
        r = api.post(f"/v1/vhosts/vh/apps/live:{action}", {"id": "r", "stream": {"name": "s"}})
        assert r.status_code == 404
        assert r.json()["message"] == "[HTTP] Could not find application: [vh/live] (404)"


def test_tasks_survive_app_reconfiguration(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live", "publishers": {"push": {}, "file": {}}}])
    api.post("/v1/vhosts/vh/apps/live:startPush", RTMP_PUSH)
    api.patch("/v1/vhosts/vh/apps/live", {"providers": {"rtmp": {}}})
    api.post("/v1/vhosts/vh/apps/live/outputProfiles",
             [{"name": "x", "outputStreamName": "x", "encodes": {"videos": [{"bypass": True}]}}])
    assert [p["id"] for p in api.post("/v1/vhosts/vh/apps/live:pushes").json()["response"]] == ["p1"]


def test_deleting_an_app_removes_its_tasks(api: Api) -> None:
    api.post("/v1/vhosts", [{"name": "vh"}])
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live", "publishers": {"push": {}}}])
    api.post("/v1/vhosts/vh/apps/live:startPush", RTMP_PUSH)
    api.delete("/v1/vhosts/vh/apps/live")
    api.post("/v1/vhosts/vh/apps", [{"name": "live", "type": "live", "publishers": {"push": {}}}])
    assert api.post("/v1/vhosts/vh/apps/live:pushes").json()["response"] == []


def test_empty_strings_count_as_missing(api: Api) -> None:
    def msg(action: str, body: object) -> tuple[int, str]:
        r = api.post(f"{BASE}:{action}", body)
        return r.status_code, r.json()["message"]

    assert msg("startRecord", {"id": "", "stream": {"name": ""}}) == (
        400, "[HTTP] There is no required parameter [ id stream.name] (400)")
    assert msg("stopRecord", {"id": ""}) == (400, "[HTTP] There is no required parameter [ id] (400)")
    push = {"id": "", "stream": {"name": "s"}, "protocol": "rtmp", "url": ""}
    assert msg("startPush", push) == (400, "[HTTP] There is no required parameter [ id url] (400)")
    assert msg("stopPush", {"id": ""}) == (400, "[HTTP] There is no required parameter [ id] (400)")
