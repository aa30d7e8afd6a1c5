"""``connections`` carries OME 0.20's keys and the older keys of the seeds' Statistics page (issue 19 item 5):
a dashboard written against either finds every key it reads, the older keys mirror the same counts,
and ``totalConnections`` counts each connection once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from freezegun import freeze_time

from kiln.metrics import CONNECTION_TYPES, MetricsTree, push_kind

SEEDS = Path(__file__).resolve().parents[3].parent / "shared" / "seeds"  # shared/ lies beside the repository
# the "Get Statistics of Application" example of the seeds' Statistics page, as printed there
SEED_EXAMPLE = {"dash": 0, "file": 0, "hls": 0, "lldash": 0, "llhls": 0, "mpegtspush": 0, "ovt": 0, "rtmppush": 0,
                "thumbnail": 0, "webrtc": 0}


def seed_connection_keys() -> set[str]:
    """The keys of the first complete ``connections`` object on the seeds' Statistics page."""
    for page in sorted(SEEDS.glob("*.txt")):
        text = page.read_text(errors="replace")
        for m in re.finditer(r'"connections":\s*(\{[^{}]*\})', text):
            try:
                return set(json.loads(m.group(1)))
            except json.JSONDecodeError:
                continue
    return set()


def tree() -> MetricsTree:
    t = MetricsTree()
    t.vhost_created("v")
    t.app_created("v", "a")
    t.stream_created("v", "a", "s")
    return t


def test_the_seed_example_keys_are_the_older_keys_kiln_shows() -> None:
    if not SEEDS.is_dir():
        pytest.skip("the seeds are not on this machine")
    assert seed_connection_keys() == set(SEED_EXAMPLE)


@freeze_time("2030-01-02 03:04:05")
def test_both_key_sets_are_shown_and_mirror_the_same_counts() -> None:
    t = tree()
    t.connection("v", "a", "s", "hlsv3", +1)
    t.connection("v", "a", "s", "hlsv3", +1)
    t.connection("v", "a", "s", push_kind("rtmp"), +1)
    t.connection("v", "a", "s", push_kind("MPEGTS"), +1)
    t.connection("v", "a", "s", push_kind("srt"), +1)
    t.connection("v", "a", "s", "llhls", +1)
    stream = t.stream_json("v", "a", "s")
    assert stream is not None
    connections = stream["connections"]
    assert set(SEED_EXAMPLE) <= set(connections) and set(CONNECTION_TYPES) <= set(connections)
    assert {k: connections[k] for k in SEED_EXAMPLE} == {**SEED_EXAMPLE, "hls": 2, "llhls": 1, "mpegtspush": 1,
                                                         "rtmppush": 1}
    assert {k: connections[k] for k in CONNECTION_TYPES} == {
        "file": 0, "hlsv3": 2, "llhls": 1, "ovt": 0, "push": 3, "srt": 0, "thumbnail": 0, "webrtc": 0}
    assert stream["totalConnections"] == 6 == stream["maxTotalConnections"]  # the older keys add nothing
    t.connection("v", "a", "s", push_kind("rtmp"), -1)
    after = t.app_json("v", "a")
    assert after is not None
    assert (after["connections"]["rtmppush"], after["connections"]["push"], after["totalConnections"]) == (0, 2, 5)


def test_an_unknown_push_protocol_counts_as_push_only() -> None:
    assert push_kind("webrtc") == "push"
    t = tree()
    with pytest.raises(ValueError):
        t.connection("v", "a", "s", "hls", +1)  # an older key is a view, never counted directly
