"""The metrics tree shows OME's figures (rest-spec §13): composition, windows, restarts, connections."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.live import LiveStream
from kiln.metrics import MetricsTree
from kiln.metrics.tree import RETIRE_GRACE_S
from kiln.timefmt import format_time, now

START = "2030-01-02 03:04:05"


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START) as frozen:
        yield frozen


def tree_with_app() -> MetricsTree:
    tree = MetricsTree()
    tree.vhost_created("v")
    tree.app_created("v", "a")
    return tree


def ingest(tree: MetricsTree, stream: str, n: int, app: str = "a") -> None:
    tree.ingest_meter("v", app, stream).add_in(n, now())


def figures(tree: MetricsTree) -> dict[str, dict[str, Any] | None]:
    return {"server": tree.server_json(), "vhost": tree.vhost_json("v"), "app": tree.app_json("v", "a"),
            "s": tree.stream_json("v", "a", "s"), "t": tree.stream_json("v", "a", "t")}


def test_a_stream_counts_in_its_app_vhost_and_server_and_siblings_add_up(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    tree.stream_created("v", "a", "t")
    tree.app_created("v", "other")
    tree.stream_created("v", "other", "u")
    ingest(tree, "s", 1000)
    ingest(tree, "t", 300)
    ingest(tree, "u", 7, app="other")
    tree.bytes_out("v", "a", "s", 50)
    tree.bytes_out("v", "a", "t", 5)
    tree.bytes_out("v", "a", None, 2)  # a publisher without a stream counts at the app
    got = figures(tree)
    assert got["s"] is not None and got["t"] is not None and got["app"] is not None
    assert (got["s"]["totalBytesIn"], got["s"]["totalBytesOut"]) == (1000, 50)
    assert (got["t"]["totalBytesIn"], got["t"]["totalBytesOut"]) == (300, 5)
    assert (got["app"]["totalBytesIn"], got["app"]["totalBytesOut"]) == (1300, 57)
    assert tree.app_json("v", "other")["totalBytesIn"] == 7  # type: ignore[index]
    for level in ("vhost", "server"):
        assert (got[level]["totalBytesIn"], got[level]["totalBytesOut"]) == (1307, 57)  # type: ignore[index]


def test_a_deleted_stream_leaves_its_bytes_with_its_parents(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    ingest(tree, "s", 1000)
    tree.bytes_out("v", "a", "s", 40)
    tree.stream_deleted("v", "a", "s")
    assert tree.stream_json("v", "a", "s") is None
    assert tree.app_json("v", "a")["totalBytesIn"] == 1000  # type: ignore[index]
    clock.tick(RETIRE_GRACE_S + 1)
    tree.stream_created("v", "a", "t")  # a structural change folds departed nodes past their grace
    app = tree.app_json("v", "a")
    assert app is not None and (app["totalBytesIn"], app["totalBytesOut"]) == (1000, 40)
    tree.vhost_deleted("v")
    clock.tick(RETIRE_GRACE_S + 1)
    tree.vhost_created("w")
    assert tree.vhost_json("v") is None and tree.app_json("v", "a") is None
    assert (tree.server_json()["totalBytesIn"], tree.server_json()["totalBytesOut"]) == (1000, 40)


def test_windows_close_only_on_input_and_outbound_throughput_freezes_when_ingest_stops(
        clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    clock.tick(0.5)
    ingest(tree, "s", 100)
    assert tree.stream_json("v", "a", "s")["lastThroughputIn"] == 0  # type: ignore[index]
    clock.tick(0.7)  # 1.2 s after the windows opened: this input closes them
    ingest(tree, "s", 200)
    for level, body in figures(tree).items():
        if body is not None:
            assert (body["lastThroughputIn"], body["avgThroughputIn"], body["maxThroughputIn"]) == (
                300, 2400, 2400), level
    clock.tick(0.3)
    tree.bytes_out("v", "a", "s", 50)
    clock.tick(0.5)
    ingest(tree, "s", 10)  # 0.8 s after the close: the window stays open
    assert tree.stream_json("v", "a", "s")["lastThroughputOut"] == 0  # type: ignore[index]
    clock.tick(0.3)
    ingest(tree, "s", 10)  # 1.1 s: closes with 20 bytes in, 50 out; max keeps the earlier peak
    body = tree.stream_json("v", "a", "s")
    assert body is not None
    assert (body["lastThroughputIn"], body["avgThroughputIn"], body["maxThroughputIn"]) == (20, 160, 2400)
    assert (body["lastThroughputOut"], body["avgThroughputOut"], body["maxThroughputOut"]) == (50, 400, 400)
    clock.tick(5)
    tree.bytes_out("v", "a", "s", 5000)  # no input: the window never closes, outbound figures freeze
    body = tree.stream_json("v", "a", "s")
    assert body is not None
    assert (body["totalBytesOut"], body["lastThroughputOut"], body["avgThroughputOut"]) == (5050, 50, 400)
    assert body["lastSentTime"] == format_time(now()) and body["lastRecvTime"] != body["lastSentTime"]


def test_each_node_keeps_its_own_window_closed_by_whichever_stream_sends_first(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    clock.tick(0.6)
    tree.stream_created("v", "a", "t")
    clock.tick(0.6)  # app window 1.2 s old, t's window 0.6 s old
    ingest(tree, "t", 100)
    assert tree.app_json("v", "a")["lastThroughputIn"] == 100  # type: ignore[index]
    assert tree.stream_json("v", "a", "t")["lastThroughputIn"] == 0  # type: ignore[index]
    clock.tick(0.2)
    ingest(tree, "s", 40)  # s's own window (1.4 s) closes; the app's closed 0.2 s ago and stays open
    assert tree.stream_json("v", "a", "s")["lastThroughputIn"] == 40  # type: ignore[index]
    assert tree.app_json("v", "a")["lastThroughputIn"] == 100  # type: ignore[index]
    clock.tick(0.9)
    ingest(tree, "s", 1)  # 1.1 s after the app's last close: it closes with both streams' bytes
    assert tree.app_json("v", "a")["lastThroughputIn"] == 41  # type: ignore[index]


def test_a_reconfigured_app_restarts_its_counters_and_its_live_streams_keep_theirs(
        clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    tree.connection("v", "a", "s", "llhls", +1)
    ingest(tree, "s", 1000)
    tree.bytes_out("v", "a", "s", 100)
    clock.tick(3)
    tree.app_created("v", "a")  # AppReconfigured: OME restarts the app's metrics
    app = tree.app_json("v", "a")
    assert app is not None
    assert app["createdTime"] == format_time(now())
    assert (app["totalBytesIn"], app["totalBytesOut"], app["totalConnections"], app["maxTotalConnections"]) == (
        0, 0, 0, 0)
    assert app["lastRecvTime"] == app["createdTime"]
    clock.tick(1.5)
    ingest(tree, "s", 30)
    tree.bytes_out("v", "a", "s", 3)
    app = tree.app_json("v", "a")
    assert app is not None and (app["totalBytesIn"], app["totalBytesOut"], app["lastThroughputIn"]) == (30, 3, 30)
    stream = tree.stream_json("v", "a", "s")
    assert stream is not None and (stream["totalBytesIn"], stream["totalConnections"]) == (1030, 1)
    for level in (tree.vhost_json("v"), tree.server_json()):
        assert level is not None and (level["totalBytesIn"], level["totalBytesOut"]) == (1030, 103)
    clock.tick(RETIRE_GRACE_S + 1)
    tree.stream_created("v", "a", "t")  # folds the replaced app node into the vhost: nothing counted twice
    assert tree.vhost_json("v")["totalBytesIn"] == 1030  # type: ignore[index]
    assert tree.server_json()["totalBytesOut"] == 103


def test_an_app_created_after_its_streams_counts_only_what_arrives_later(clock: FrozenDateTimeFactory) -> None:
    tree = MetricsTree()
    tree.vhost_created("v")
    tree.stream_created("v", "a", "s")  # no app node yet: the stream counts in the vhost and the server
    ingest(tree, "s", 500)
    tree.app_created("v", "a")
    ingest(tree, "s", 20)
    assert tree.app_json("v", "a")["totalBytesIn"] == 20  # type: ignore[index]
    assert tree.stream_json("v", "a", "s")["totalBytesIn"] == 520  # type: ignore[index]
    assert tree.vhost_json("v")["totalBytesIn"] == 520  # type: ignore[index]


def test_connections_count_per_type_with_their_peak_along_the_chain(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    created = format_time(now())
    assert tree.app_json("v", "a")["maxTotalConnectionTime"] == created  # type: ignore[index]
    clock.tick(1)
    tree.connection("v", "a", "s", "llhls", +1)
    tree.connection("v", "a", "s", "rtmppush", +1)
    clock.tick(1)
    tree.connection("v", "a", None, "file", +1)  # an app-level session is not the stream's
    peak = format_time(now())
    clock.tick(1)
    tree.connection("v", "a", "s", "llhls", -1)
    tree.connection("v", "a", "s", "llhls", -1)  # one leave too many never goes below zero
    app, stream = tree.app_json("v", "a"), tree.stream_json("v", "a", "s")
    assert app is not None and stream is not None
    assert app["connections"] == {"dash": 0, "file": 1, "hls": 0, "hlsv3": 0, "lldash": 0, "llhls": 0,
                                  "mpegtspush": 0, "ovt": 0, "push": 1, "rtmppush": 1, "srt": 0,
                                  "thumbnail": 0, "webrtc": 0}
    assert (app["totalConnections"], app["maxTotalConnections"], app["maxTotalConnectionTime"]) == (2, 3, peak)
    assert (stream["totalConnections"], stream["maxTotalConnections"]) == (1, 2)
    assert stream["lastUpdatedTime"] == format_time(now())
    assert tree.server_json()["maxTotalConnections"] == 3
    with pytest.raises(ValueError):
        tree.connection("v", "a", "s", "rtmp", +1)


def test_walk_yields_every_node_with_its_labels(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    ingest(tree, "s", 9)
    walked = {tuple(sorted(labels.items())): snap.total_bytes_in for labels, snap in tree.walk()}
    assert walked == {(): 9, (("vhost", "v"),): 9, (("app", "a"), ("vhost", "v")): 9,
                      (("app", "a"), ("stream", "s"), ("vhost", "v")): 9}


def test_a_live_stream_counts_its_input_in_its_own_node(clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    live = LiveStream("v", "a", "cam", source_type="Rtmp", source_url="", profiles=[], stats=tree)
    tree.stream_created("v", "a", "cam", live.created_time)
    tb = Fraction(1, 1000)
    live.on_track(Track(0, MediaKind.VIDEO, Codec.H264, tb))
    sizes = [1000 + n for n in range(40)]
    for n, size in enumerate(sizes):
        clock.tick(0.04)
        live.ingest(Packet(0, n * 40, n * 40, tb, bytes(size), keyframe=n % 20 == 0))
    body = tree.stream_json("v", "a", "cam")
    assert body is not None and body["totalBytesIn"] == sum(sizes) == live.bytes_in
    assert body["lastRecvTime"] == format_time(now())
    assert tree.ingest_meter("v", "a", "cam") is tree.ingest_meter("v", "a", "cam")


def test_a_packet_in_flight_while_its_stream_is_deleted_still_counts_in_the_parents(
        clock: FrozenDateTimeFactory) -> None:
    tree = tree_with_app()
    tree.stream_created("v", "a", "s")
    meter = tree.ingest_meter("v", "a", "s")
    meter.add_in(100, now())
    tree.stream_deleted("v", "a", "s")
    meter.add_in(5, now())  # the ingest thread had its node in hand when the actor deleted the stream
    assert tree.app_json("v", "a")["totalBytesIn"] == 105  # type: ignore[index]
    clock.tick(RETIRE_GRACE_S + 1)
    tree.stream_created("v", "a", "s")  # the same name again: a new node, the old one folded
    assert tree.stream_json("v", "a", "s")["totalBytesIn"] == 0  # type: ignore[index]
    assert tree.app_json("v", "a")["totalBytesIn"] == 105  # type: ignore[index]
    assert tree.server_json()["totalBytesIn"] == 105
