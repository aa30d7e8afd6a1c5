"""``GET /metrics`` on a running Kiln with a live RTMP publisher: parsed as Prometheus parses it
(``prometheus_client.parser``), its figures agree with ``/v1/stats``, and a stream's series go when it ends."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
STREAM = {"vhost": "default", "app": "app", "stream": "cam"}


def scrape(k: KilnProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = k.api.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    found = [v for lab, v in samples.get(name, []) if all(lab.get(k) == want for k, want in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def stats(k: KilnProcess, path: str = "") -> dict[str, object]:
    answer = k.api.get(f"/v1/stats/current{path}")
    assert answer.status_code == 200, answer.text
    response: dict[str, object] = answer.json()["response"]
    return response


def test_metrics_agree_with_stats_and_stream_labels_go_with_the_stream(
        kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    anonymous = httpx.get(f"http://127.0.0.1:{kiln.ports.api}/metrics", timeout=10)
    assert anonymous.status_code == 401  # Managers/Metrics/Auth defaults to true
    publisher = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        stream_path = "/vhosts/default/apps/app/streams/cam"
        kiln.wait_for(lambda: kiln.api.get(f"/v1/stats/current{stream_path}").status_code == 200
                      and stats(kiln, stream_path)["totalBytesIn"], 30, "stream counting input")
        r = kiln.api.post(f"{APP}:startPush", json={"id": "p1", "stream": {"name": "cam"}, "protocol": "rtmp",
                                                    "url": "rtmp://127.0.0.1:1/live", "streamKey": "k"})
        assert r.status_code == 200, r.text
        # the push is counted once its session starts (at the stream's hand-over to the publishers, a moment
        # after the API lists it): measured from then, the two views must agree
        kiln.wait_for(lambda: stats(kiln)["connections"]["push"] == 1, 20, "the push counted")  # type: ignore[index]

        before, before_server = stats(kiln, stream_path), stats(kiln)
        metrics = scrape(kiln)
        after, after_server = stats(kiln, stream_path), stats(kiln)
        assert before["totalBytesIn"] <= value(metrics, "kiln_stream_bytes_in_total", **STREAM) \
            <= after["totalBytesIn"]  # type: ignore[operator]
        assert before_server["totalBytesIn"] <= value(metrics, "kiln_bytes_in_total") \
            <= after_server["totalBytesIn"]  # type: ignore[operator]
        assert before_server["totalBytesOut"] <= value(metrics, "kiln_bytes_out_total") \
            <= after_server["totalBytesOut"]  # type: ignore[operator]
        assert value(metrics, "kiln_streams") == 1
        tracks = {lab["kind"]: v for lab, v in metrics["kiln_stream_tracks"] if lab["stream"] == "cam"}
        shown_tracks = kiln.api.get(f"{APP}/streams/cam").json()["response"]["input"]["tracks"]
        by_kind: dict[str, int] = {}
        for track in shown_tracks:
            by_kind[track["type"].lower()] = by_kind.get(track["type"].lower(), 0) + 1
        assert tracks == by_kind and tracks["video"] == 1 and tracks["audio"] == 1
        connections = after_server["connections"]
        assert isinstance(connections, dict)
        for kind in ("llhls", "push", "srt", "file"):
            assert value(metrics, "kiln_connections", type=kind) == connections[kind]
        pushes = kiln.api.get(f"{APP}:pushes").json()["response"]
        states: dict[str, int] = {}
        for push in pushes:
            states[push["state"]] = states.get(push["state"], 0) + 1
        shown = {lab["state"]: v for lab, v in metrics["kiln_tasks"] if lab["kind"] == "push"}
        assert sum(shown.values()) == 1 and sum(states.values()) == 1
        assert value(metrics, "kiln_journal_records_total") >= 1  # type: ignore[operator]
        assert value(metrics, "kiln_journal_fsync_seconds_count") >= 1  # type: ignore[operator]
        assert value(metrics, "kiln_journal_fsync_seconds_bucket", le="+Inf") == \
            value(metrics, "kiln_journal_fsync_seconds_count")
        assert value(metrics, "kiln_event_loop_lag_seconds") is not None
        assert value(metrics, "kiln_queues") is not None
    finally:
        publisher.stop()
    kiln.wait_for(lambda: value(scrape(kiln), "kiln_streams") == 0, 30, "stream gone")
    gone = scrape(kiln)
    for name in ("kiln_stream_bytes_in_total", "kiln_stream_connections", "kiln_stream_tracks"):
        assert not [lab for lab, _ in gone.get(name, []) if lab.get("stream") == "cam"], name
