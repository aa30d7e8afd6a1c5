"""Replay equals live state: random REST command sequences, then a restart, then every dashboard GET.

Hypothesis drives an in-process Kiln (Starlette's TestClient, fsync off) with random sequences of
valid and invalid commands over a small pool of names, so creates, deletes, re-creates, conflicts
and cascades (deleting an app drops its tasks) all happen. What a dashboard would GET is recorded
byte for byte; then the service is closed and a new one opened on the same data dir must answer the
same bytes. A second property checks that snapshot + journal tail gives the same answers as a full
replay of the journal (the snapshots directory deleted).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from kiln.config import load_server_xml_text
from kiln.journal import SnapshotStore
from kiln.service import KilnService
from tests.unit.http.conftest import AUTH, SERVER_XML

VHOSTS = ["default", "v1", "v2"]
APPS = ["app", "a1", "a2"]
PROFILES = ["default", "p1", "p2"]  # "default" is what an app gets without outputProfiles
TASK_IDS = ["t1", "t2"]
STREAMS = ["s", "cam"]
# Names are drawn with a bias towards one vhost and one app, so commands meet each other often
# (create, then patch, add a profile, start a task on it, delete it, create it again...).
VHOST_DRAW = ["v1", "v1", "v1", "v2", "default"]
APP_DRAW = ["a1", "a1", "a1", "app", "a2"]

Command = tuple[str, str, Any]  # (method, path, JSON body, or bytes for a raw body, or None)

# --- command strategies -------------------------------------------------------------------------

vhost_name = st.sampled_from(VHOST_DRAW)
app_name = st.sampled_from(APP_DRAW)
profile_name = st.sampled_from(PROFILES)
task_id = st.sampled_from(TASK_IDS)
stream_name = st.sampled_from(STREAMS)


def app_path(vhost: str, app: str) -> str:
    return f"/v1/vhosts/{vhost}/apps/{app}"


vhost_item = st.one_of(
    st.builds(lambda n: {"name": n}, vhost_name),
    st.builds(lambda n, h: {"name": n, "host": {"names": [h]}}, vhost_name, st.sampled_from(["*", "a.example"])),
    st.builds(lambda n: {"name": n, "distribution": "ovenServer"}, vhost_name),
    st.builds(lambda n: {"name": n, "foo": 1}, vhost_name),  # unknown key: 400 for this element
    st.just({"host": {"names": ["x"]}}),  # no name: 400
)
create_vhosts = st.one_of(
    st.builds(lambda items: ("POST", "/v1/vhosts", items), st.lists(vhost_item, max_size=3)),
    st.just(("POST", "/v1/vhosts", {"name": "v1"})),  # not an array
    st.just(("POST", "/v1/vhosts", b"[{not json")),
)
delete_vhost = st.builds(lambda v: ("DELETE", f"/v1/vhosts/{v}", None), vhost_name)

app_item = st.one_of(
    st.builds(lambda n: {"name": n, "type": "live"}, app_name),
    st.builds(lambda n: {"name": n, "type": "live", "publishers": {"push": {}, "file": {}}}, app_name),
    st.builds(lambda n: {"name": n, "type": "live", "providers": {"rtmp": {}}, "publishers": {"push": {}}},
              app_name),
    st.builds(lambda n: {"name": n}, app_name),  # no type: 400 aborts the rest
    st.builds(lambda n: {"name": n, "type": "other"}, app_name),
    st.builds(lambda n: {"name": n, "type": "live", "dynamic": False}, app_name),
)
create_apps = st.builds(lambda v, items: ("POST", f"/v1/vhosts/{v}/apps", items), vhost_name,
                        st.lists(app_item, max_size=3))
app_patch = st.one_of(
    st.builds(lambda t: {"providers": {"webrtc": {"timeout": t}}}, st.integers(1000, 60000)),
    st.just({"publishers": {"push": {}, "file": {}}}),
    st.just({"publishers": {"llhls": {}}, "providers": None}),
    st.just({"name": "x"}),  # forbidden key
    st.just({"outputProfiles": {}}),  # forbidden key
    st.just({"bogus": 1}),
    st.just([1]),
)
patch_app = st.builds(lambda v, a, body: ("PATCH", app_path(v, a), body), vhost_name, app_name, app_patch)
delete_app = st.builds(lambda v, a: ("DELETE", app_path(v, a), None), vhost_name, app_name)


def _profile(name: Any, suffix: str) -> dict[str, Any]:
    return {"name": name, "outputStreamName": "${OriginStreamName}_" + suffix,
            "encodes": {"videos": [{"bypass": True}], "audios": [{"bypass": True}]}}


profile_item = st.one_of(
    st.builds(lambda n, s: _profile(n, s), profile_name, st.sampled_from(["a", "b"])),
    st.builds(lambda n: {"name": n}, profile_name),  # missing fields: 400 aborts everything
    st.builds(lambda n: {"name": n, "outputStreamName": "o", "encodes": {}}, profile_name),
    st.just(_profile(1, "x")),  # name is not a string
)
add_profiles = st.builds(lambda v, a, items: ("POST", app_path(v, a) + "/outputProfiles", items),
                         vhost_name, app_name, st.lists(profile_item, max_size=3))
profile_patch = st.one_of(
    st.builds(lambda s: {"outputStreamName": "${OriginStreamName}_" + s, "encodes": {"videos": [{"bypass": True}]}},
              st.sampled_from(["x", "y"])),
    st.just({"NAME": "x"}),
    st.just({"encodes": {"videos": [{"bypass": True}]}}),  # no outputStreamName
)
replace_profile = st.builds(lambda v, a, p, body: ("PATCH", f"{app_path(v, a)}/outputProfiles/{p}", body),
                            vhost_name, app_name, profile_name, profile_patch)
delete_profile = st.builds(lambda v, a, p: ("DELETE", f"{app_path(v, a)}/outputProfiles/{p}", None),
                           vhost_name, app_name, profile_name)

push_body = st.one_of(
    st.builds(lambda i, s: {"id": i, "stream": {"name": s, "variantNames": ["bypass_video"]}, "protocol": "rtmp",
                            "url": "rtmp://example.com/live/", "streamKey": " key "}, task_id, stream_name),
    st.builds(lambda i, s: {"id": i, "stream": {"name": s, "trackIds": [1, 2]}, "protocol": "srt",
                            "url": "srt://127.0.0.1:9000"}, task_id, stream_name),
    st.builds(lambda i, s: {"id": i, "stream": {"name": s}, "protocol": "mpegts", "url": "udp://127.0.0.1:4000"},
              task_id, stream_name),
    st.builds(lambda i: {"id": i, "stream": {"name": "s"}, "protocol": "rtmp", "url": "not a url"}, task_id),
    st.builds(lambda i: {"id": i, "stream": {"name": "s"}, "protocol": "srt", "url": "srt://h:1?mode=listener"},
              task_id),
    st.just({"protocol": "rtmp"}),
    st.just({}),
)
start_push = st.builds(lambda v, a, body: ("POST", app_path(v, a) + ":startPush", body),
                       vhost_name, app_name, push_body)
stop_push = st.builds(lambda v, a, body: ("POST", app_path(v, a) + ":stopPush", body), vhost_name, app_name,
                      st.one_of(st.builds(lambda i: {"id": i}, task_id), st.just({}), st.just({"id": 5})))
record_body = st.one_of(
    st.builds(lambda i, s: {"id": i, "stream": {"name": s}}, task_id, stream_name),
    st.builds(lambda i, s: {"id": i, "stream": {"name": s, "variantNames": ["bypass_video"]}, "interval": 60000,
                            "segmentationRule": "discontinuity", "metadata": "m",
                            "filePath": "/tmp/kiln_${Sequence}.ts"},
              task_id, stream_name),
    st.builds(lambda i: {"id": i, "stream": {"name": "s"}, "schedule": "10 */1 *"}, task_id),
    st.builds(lambda i: {"id": i, "stream": {"name": "s"}, "interval": 1000, "schedule": "0 */1 *"}, task_id),
    st.builds(lambda i: {"id": i, "stream": {"name": "s"}, "schedule": "60 * *"}, task_id),
    st.just({"id": "r"}),
)
start_record = st.builds(lambda v, a, body: ("POST", app_path(v, a) + ":startRecord", body),
                         vhost_name, app_name, record_body)
stop_record = st.builds(lambda v, a, body: ("POST", app_path(v, a) + ":stopRecord", body), vhost_name, app_name,
                        st.one_of(st.builds(lambda i: {"id": i}, task_id), st.just({"id": 5})))

# Kinds are drawn by weight (sampled_from is uniform over the list): building things is drawn more
# often than deleting them, and deleting a vhost, which ends most of what follows, least often.
KINDS = {
    "create_vhosts": (create_vhosts, 2), "delete_vhost": (delete_vhost, 1),
    "create_apps": (create_apps, 3), "patch_app": (patch_app, 3), "delete_app": (delete_app, 1),
    "add_profiles": (add_profiles, 3), "replace_profile": (replace_profile, 2), "delete_profile": (delete_profile, 1),
    "start_push": (start_push, 5), "stop_push": (stop_push, 2),
    "start_record": (start_record, 5), "stop_record": (stop_record, 2),
}
command = st.sampled_from([kind for kind, (_s, weight) in KINDS.items() for _ in range(weight)]).flatmap(
    lambda kind: KINDS[kind][0])

# Every sequence starts from a small world (two vhosts, three apps, two of them with push and file
# publishers, a profile, push and record tasks, one of them on the configuration file's read-only
# default/app), then a few random valid creates, then the random commands: so most commands meet
# something they can act on, and deletes cascade over real tasks.
PUSH_FILE = {"push": {}, "file": {}}
WORLD: list[Command] = [
    ("POST", "/v1/vhosts", [{"name": "v1"}, {"name": "v2", "host": {"names": ["v2.example"]}}]),
    ("POST", "/v1/vhosts/v1/apps", [{"name": "a1", "type": "live", "publishers": PUSH_FILE},
                                    {"name": "a2", "type": "live"}]),
    ("POST", "/v1/vhosts/v2/apps", [{"name": "a1", "type": "live", "publishers": PUSH_FILE}]),
    ("POST", "/v1/vhosts/v1/apps/a1/outputProfiles", [_profile("p1", "a")]),
    ("POST", "/v1/vhosts/v1/apps/a1:startPush", {"id": "t1", "stream": {"name": "s"}, "protocol": "rtmp",
                                                 "url": "rtmp://example.com/live/", "streamKey": "k"}),
    ("POST", "/v1/vhosts/v1/apps/a1:startRecord", {"id": "t2", "stream": {"name": "s"}, "metadata": "m"}),
    ("POST", "/v1/vhosts/v2/apps/a1:startPush", {"id": "t1", "stream": {"name": "cam"}, "protocol": "mpegts",
                                                 "url": "udp://127.0.0.1:4000"}),
    ("POST", "/v1/vhosts/default/apps/app:startRecord", {"id": "t1", "stream": {"name": "s"}, "interval": 60000}),
]
setup = st.one_of(
    st.builds(lambda v: ("POST", "/v1/vhosts", [{"name": v}]), st.sampled_from(["v1", "v2"])),
    st.builds(lambda v, a: ("POST", f"/v1/vhosts/{v}/apps", [{"name": a, "type": "live", "publishers": PUSH_FILE}]),
              st.sampled_from(["v1", "v2"]), st.sampled_from(["a1", "a2"])),
)
commands = st.builds(lambda head, tail: WORLD + head + tail, st.lists(setup, max_size=3),
                     st.lists(command, min_size=5, max_size=40))


# --- driving a service ----------------------------------------------------------------------------


@contextmanager
def running(data_dir: Path, *, snapshot_every: int = 10_000) -> Iterator[TestClient]:
    """An in-process Kiln on ``data_dir``; closed (journal flushed, snapshots written) on exit."""
    service = KilnService(load_server_xml_text(SERVER_XML, data_dir), data_dir, fsync=False,
                          snapshot_every=snapshot_every)
    try:
        service.open()
        with TestClient(service.build_api().starlette, base_url="http://kiln.test") as client:
            yield client
    finally:
        service.close()


def send(client: TestClient, cmd: Command) -> int:
    method, path, body = cmd
    if isinstance(body, bytes):
        r = client.request(method, path, content=body, headers=AUTH)
    elif body is None:
        r = client.request(method, path, headers=AUTH)
    else:
        r = client.request(method, path, json=body, headers=AUTH)
    assert r.status_code < 500, (cmd, r.status_code, r.text)
    return r.status_code


def dashboard(client: TestClient) -> dict[str, tuple[int, bytes]]:
    """Every GET a dashboard makes (walking the lists it is given), plus the pool's names probed blindly."""
    seen: dict[str, tuple[int, bytes]] = {}

    def fetch(method: str, path: str) -> Any:
        r = client.request(method, path, headers=AUTH)
        seen[f"{method} {path}"] = (r.status_code, r.content)
        return r.json() if r.status_code == 200 else None

    def walk_app(vhost: str, app: str) -> None:
        base = app_path(vhost, app)
        fetch("GET", base)
        profiles = fetch("GET", base + "/outputProfiles")
        for p in (profiles or {}).get("response", []):
            fetch("GET", f"{base}/outputProfiles/{p}")
        fetch("POST", base + ":pushes")
        fetch("GET", base + ":pushes")
        fetch("POST", base + ":records")

    listing = fetch("GET", "/v1/vhosts")
    vhosts = listing["response"] if listing else []
    for vhost in vhosts:
        fetch("GET", f"/v1/vhosts/{vhost}")
        apps = fetch("GET", f"/v1/vhosts/{vhost}/apps")
        for app in (apps or {}).get("response", []):
            walk_app(vhost, app)
    for vhost in VHOSTS:  # names that may have been deleted must stay deleted
        if vhost not in vhosts:
            fetch("GET", f"/v1/vhosts/{vhost}")
        for app in APPS:
            if f"GET {app_path(vhost, app)}" not in seen:
                walk_app(vhost, app)
    return seen


def differences(before: dict[str, tuple[int, bytes]], after: dict[str, tuple[int, bytes]]) -> list[str]:
    out = [f"{key}: {before.get(key)!r} != {after.get(key)!r}"
           for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    return out[:5]


def run_sequence(data_dir: Path, cmds: list[Command], *, snapshot_every: int = 10_000) -> dict[str, tuple[int, bytes]]:
    with running(data_dir, snapshot_every=snapshot_every) as client:
        for cmd in cmds:
            send(client, cmd)
        return dashboard(client)


def reopened(data_dir: Path) -> dict[str, tuple[int, bytes]]:
    with running(data_dir) as client:
        return dashboard(client)


# --- properties -----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cmds=commands)
def test_restart_answers_every_dashboard_get_byte_for_byte(cmds: list[Command]) -> None:
    with tempfile.TemporaryDirectory(prefix="kiln-replay-") as tmp:
        data_dir = Path(tmp) / "data"
        live = run_sequence(data_dir, cmds)
        after = reopened(data_dir)
        assert after == live, differences(live, after)
        assert reopened(data_dir) == live  # a second restart (journal now also holds restarts) is no different


@PROPERTY
@given(cmds=commands)
def test_snapshot_plus_tail_equals_full_replay(cmds: list[Command]) -> None:
    with tempfile.TemporaryDirectory(prefix="kiln-snap-") as tmp:
        data_dir, full_dir = Path(tmp) / "data", Path(tmp) / "full"
        live = run_sequence(data_dir, cmds, snapshot_every=3)
        records = sum(1 for _ in _journal_records(data_dir))
        if records >= 3:  # ServerStarted + commands + ServerStopped; every third one is snapshotted
            assert SnapshotStore(data_dir).latest_seq() > 0
        shutil.copytree(data_dir, full_dir)
        shutil.rmtree(full_dir / "snapshots", ignore_errors=True)
        from_snapshot = reopened(data_dir)
        full_replay = reopened(full_dir)
        assert from_snapshot == full_replay, differences(full_replay, from_snapshot)
        assert from_snapshot == live, differences(live, from_snapshot)


def _journal_records(data_dir: Path) -> Iterator[Any]:
    from kiln.journal.reader import iter_records
    from kiln.journal.segments import journal_dir

    return iter_records(journal_dir(data_dir))


def test_dashboard_sees_what_the_commands_made(tmp_path: Path) -> None:
    """The properties compare like with like; this pins that the walk really reaches tasks and profiles."""
    cmds: list[Command] = [
        ("POST", "/v1/vhosts", [{"name": "v1"}]),
        ("POST", "/v1/vhosts/v1/apps", [{"name": "a1", "type": "live", "publishers": {"push": {}, "file": {}}}]),
        ("POST", "/v1/vhosts/v1/apps/a1/outputProfiles", [_profile("p1", "a")]),
        ("POST", "/v1/vhosts/v1/apps/a1:startPush", {"id": "t1", "stream": {"name": "s"}, "protocol": "rtmp",
                                                     "url": "rtmp://example.com/live/"}),
        ("POST", "/v1/vhosts/v1/apps/a1:startRecord", {"id": "t2", "stream": {"name": "s"}}),
    ]
    live = run_sequence(tmp_path / "data", cmds, snapshot_every=3)
    pushes = json.loads(live["POST /v1/vhosts/v1/apps/a1:pushes"][1])["response"]
    records = json.loads(live["POST /v1/vhosts/v1/apps/a1:records"][1])["response"]
    assert [p["id"] for p in pushes] == ["t1"] and [r["id"] for r in records] == ["t2"]
    assert live["GET /v1/vhosts/v1/apps/a1/outputProfiles/p1"][0] == 200
    assert SnapshotStore(tmp_path / "data").latest_seq() > 0
    assert reopened(tmp_path / "data") == live


def test_deleting_a_vhost_drops_its_tasks_live_and_after_restart(tmp_path: Path) -> None:
    """Regression: the tasks projection read ``VhostDeleted.vhost`` (the field is ``name``), so a deleted
    vhost's tasks came back when it was re-created, and replaying that journal failed at startup."""
    base = "/v1/vhosts/v1/apps/a1"
    cmds: list[Command] = [*WORLD, ("DELETE", "/v1/vhosts/v1", None), *WORLD[:2]]
    live = run_sequence(tmp_path / "data", cmds)
    assert json.loads(live[f"POST {base}:pushes"][1])["response"] == []
    assert json.loads(live[f"POST {base}:records"][1])["response"] == []
    assert [p["id"] for p in json.loads(live["POST /v1/vhosts/v2/apps/a1:pushes"][1])["response"]] == ["t1"]
    assert reopened(tmp_path / "data") == live
