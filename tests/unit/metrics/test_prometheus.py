"""The Prometheus exposition: read from the metrics tree at scrape time, per-stream series only while the
stream lives, the fsync histogram as Prometheus reads it, and ``/metrics`` without the token when
Server.xml says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from kiln.metrics.commands import CommandTimings
from kiln.metrics.journal import JournalCounters
from kiln.metrics.prometheus import RtcIngestFigures, Sources, exposition, registry_for
from kiln.metrics.tree import MetricsTree
from tests.unit.http.conftest import SERVER_XML, start_service


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


def test_stream_series_follow_the_tree_and_vanish_with_the_stream() -> None:
    tree = MetricsTree(created=0.0)
    tree.vhost_created("default")
    tree.app_created("default", "app")
    tree.stream_created("default", "app", "cam")
    tree.ingest_meter("default", "app", "cam").add_in(1500, 1.0)
    tree.bytes_out("default", "app", "cam", 700)
    tree.connection("default", "app", "cam", "llhls", 2)
    registry = registry_for(Sources(tree=tree))
    found = samples(exposition(registry))
    labels = (("app", "app"), ("stream", "cam"), ("vhost", "default"))
    assert found[("kiln_stream_bytes_in_total", labels)] == 1500 == tree.stream_json("default", "app", "cam")[
        "totalBytesIn"]
    assert found[("kiln_stream_bytes_out_total", labels)] == 700
    assert found[("kiln_stream_connections", (*labels[:2], ("type", "llhls"), labels[2]))] == 2
    assert found[("kiln_bytes_in_total", ())] == tree.server_json()["totalBytesIn"] == 1500
    assert found[("kiln_connections", (("type", "llhls"),))] == 2
    tree.connection("default", "app", "cam", "llhls", -2)
    tree.stream_deleted("default", "app", "cam")
    after = samples(exposition(registry))
    assert not [key for key in after if ("stream", "cam") in key[1]]
    assert after[("kiln_bytes_in_total", ())] == 1500  # what the stream counted stays in the totals


def test_webrtc_publishers_repair_counters_are_series_of_their_stream() -> None:
    live = [RtcIngestFigures("default", "app", "cam", packets=900, nacks=12, plis=3, rtx=5)]
    registry = registry_for(Sources(tree=MetricsTree(created=0.0), rtc_ingest=lambda: list(live)))
    found = samples(exposition(registry))
    labels = (("app", "app"), ("stream", "cam"), ("vhost", "default"))
    assert found[("kiln_webrtc_ingest_packets_total", labels)] == 900
    assert found[("kiln_webrtc_ingest_nacks_total", labels)] == 12
    assert found[("kiln_webrtc_ingest_plis_total", labels)] == 3
    assert found[("kiln_webrtc_ingest_layer_retransmissions_total", labels)] == 5
    live.clear()  # the publisher left
    assert not [key for key in samples(exposition(registry)) if key[0].startswith("kiln_webrtc_ingest")]


def test_fsync_histogram_is_cumulative() -> None:
    counters = JournalCounters()
    for seconds in (0.0001, 0.003, 0.003, 0.2, 9.0):
        counters.fsynced(seconds)
    counters.committed(7)
    registry = registry_for(Sources(tree=MetricsTree(created=0.0), journal=counters))
    found = samples(exposition(registry))
    bucket = {dict(labels)["le"]: v for (name, labels), v in found.items()
              if name == "kiln_journal_fsync_seconds_bucket"}
    assert bucket["0.0005"] == 1 and bucket["0.005"] == 3 and bucket["0.25"] == 4 and bucket["2.5"] == 4
    assert bucket["+Inf"] == 5 == found[("kiln_journal_fsync_seconds_count", ())]
    assert abs(found[("kiln_journal_fsync_seconds_sum", ())] - 9.2061) < 1e-9
    assert found[("kiln_journal_records_total", ())] == 7


def test_command_phases_are_counters_by_phase() -> None:
    timings = CommandTimings()
    timings.record(0.001, 0.003, 0.0005)
    timings.record(0.002, 0.001, 0.0005)
    found = samples(exposition(registry_for(Sources(tree=MetricsTree(created=0.0), commands=timings))))
    assert found[("kiln_api_commands_total", ())] == 2
    by_phase = {dict(labels)["phase"]: v for (name, labels), v in found.items()
                if name == "kiln_api_command_seconds_total"}
    assert by_phase == pytest.approx({"actor": 0.003, "journal": 0.004, "loop": 0.001})


def test_metrics_auth_follows_server_xml(tmp_path: Path) -> None:
    open_xml = SERVER_XML.replace("</API>\n  </Managers>",
                                  "</API>\n    <Metrics><Auth>false</Auth></Metrics>\n  </Managers>")
    assert "<Metrics>" in open_xml
    for xml, status in ((SERVER_XML, 401), (open_xml, 200)):
        service = start_service(tmp_path / str(status), xml)
        try:
            with TestClient(service.build_api().starlette) as client:
                assert client.get("/metrics").status_code == status
                assert client.post("/metrics").status_code == 401  # only GET is the exporter
        finally:
            service.close()
