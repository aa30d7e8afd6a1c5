"""An Origin's ``<Relay>false</Relay>`` (OME: the pulled stream is a Source, not a Relay): the edge's own
output profiles transcode what it pulls over OVT, where by default (OVT relays) the edge serves the origin's
outputs untouched. One origin/edge pair; a strict rule with Relay=false and a default rule name the
origin's one stream under two edge names."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_origins import origins_xml, pulls, streams
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
LOW = """
            <OutputProfile>
              <Name>low</Name>
              <OutputStreamName>${OriginStreamName}_low</OutputStreamName>
              <Encodes>
                <Video><Name>low</Name><Codec>h264</Codec><Width>160</Width><Height>90</Height><Bitrate>100K</Bitrate>
                  <Preset>faster</Preset></Video>
                <Audio><Name>low_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
            </OutputProfile>"""


def stream_info(k: KilnProcess, name: str) -> dict[str, Any]:
    response: dict[str, Any] = k.api.get(f"{APP}/streams/{name}").json()["response"]
    return response


def test_relay_false_makes_the_pulled_stream_a_source_of_the_edges_profiles(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin_ports, edge_ports = Ports(), Ports()
    url = f"127.0.0.1:{origin_ports.ovt}/app/cam"
    rules = origins_xml(
        f"<Origin><Location>/app/src</Location><StrictLocation>true</StrictLocation><Relay>false</Relay>"
        f"<Pass><Scheme>ovt</Scheme><Urls><Url>{url}</Url></Urls></Pass></Origin>",
        f"<Origin><Location>/app/</Location><Pass><Scheme>ovt</Scheme><Urls><Url>127.0.0.1:{origin_ports.ovt}/app/"
        f"</Url></Urls></Pass></Origin>")
    edge_xml = cluster_xml(edge_ports, tmp_path / "edge" / "records", vhost_extra=rules)
    edge_xml = edge_xml.replace("</OutputProfile>", "</OutputProfile>" + LOW, 1)
    with ThreadPoolExecutor(2) as pool:
        origin_k, edge = pool.map(lambda args: kiln_factory(*args), [
            (cluster_xml(origin_ports, tmp_path / "origin" / "records"), origin_ports, tmp_path / "origin"),
            (edge_xml, edge_ports, tmp_path / "edge")])
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{edge_ports.llhls}/app"
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        # Relay=false: the pulled stream is an input of the edge app, its profiles make two outputs
        assert httpx.get(f"{base}/src/llhls.m3u8", timeout=60).status_code == 200
        info = stream_info(edge, "src")
        assert info["input"]["sourceType"] == "Ovt"
        assert info["input"]["sourceUrl"] == f"ovt://{url}"
        assert sorted(o["name"] for o in info["outputs"]) == ["src", "src_low"]
        probe = streams_by_type(ffprobe_json(f"{base}/src_low/llhls.m3u8", timeout=60))
        assert (probe["video"]["codec_name"], probe["video"]["width"], probe["video"]["height"]) == ("h264", 160, 90)
        assert probe["audio"]["codec_name"] == "aac"
        # the default for OVT is a relay: the origin's one output, the edge's profiles not run
        assert httpx.get(f"{base}/cam/llhls.m3u8", timeout=60).status_code == 200
        assert [o["name"] for o in stream_info(edge, "cam")["outputs"]] == ["cam"]
        assert sorted(p["name"] for p in pulls(edge, "PullDefined")) == ["cam", "src"]
    finally:
        source.stop()
