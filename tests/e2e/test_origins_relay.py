"""An Origin's ``<Relay>false</Relay>`` (OME: the pulled stream is a Source, not a Relay): the edge's own
output profiles transcode what it pulls over OVT, where by default (OVT relays) the edge serves the origin's
outputs untouched. One origin/edge pair; a strict rule with Relay=false and a default rule name the
origin's one stream under two edge names. ``<Relay>true</Relay>`` on an RTSP Origin (OME: the camera's stream is a
Relay, not a Source): the camera's own tracks are served under the pull's name and the app's profiles do not run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_origins import origin, origins_xml, pulls, streams
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.rtsp_server import RtspSource

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


SMALL = """
            <OutputProfile>
              <Name>small</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>small</Name><Codec>h264</Codec><Width>160</Width><Height>90</Height><Bitrate>100K</Bitrate>
                  <Preset>faster</Preset></Video>
                <Audio><Name>small_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
              <Playlist><Name>abr</Name><FileName>abr</FileName>
                <Rendition><Name>small</Name><Video>small</Video><Audio>small_audio</Audio></Rendition>
              </Playlist>
            </OutputProfile>"""


def media_tracks(info: dict[str, Any], output: str) -> dict[str, dict[str, Any]]:
    [found] = [o for o in info["outputs"] if o["name"] == output]
    return {t["type"]: t for t in found["tracks"] if t["type"] in ("Video", "Audio")}


def test_relay_true_on_an_rtsp_origin_serves_the_camera_as_it_comes(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, rtsp_source: RtspSource) -> None:
    """The app's one profile scales to 160x90: a pull through the Relay=true rule (door) keeps the camera's
    320x180 H.264 and AAC, with no encoder opened and no profile playlist; the same camera through a rule
    without Relay (yard) is scaled as the profile says."""
    ports = Ports()
    camera = rtsp_source.url.removeprefix("rtsp://")
    relay = origin("/app/door", "rtsp", camera, strict=True).replace(
        "<StrictLocation>true</StrictLocation>", "<StrictLocation>true</StrictLocation><Relay>true</Relay>")
    xml = cluster_xml(ports, tmp_path / "records",
                      vhost_extra=origins_xml(relay, origin("/app/yard", "rtsp", camera, strict=True)))
    assert xml.count("</OutputProfile>") == 1
    xml = xml[:xml.index("<OutputProfile>")] + SMALL.strip() + xml[xml.index("</OutputProfile>") + 16:]
    edge = kiln_factory(xml, ports, tmp_path)
    base = f"http://127.0.0.1:{ports.llhls}/app"
    master = httpx.get(f"{base}/door/llhls.m3u8", timeout=60)
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
    probe = streams_by_type(ffprobe_json(f"{base}/door/llhls.m3u8", timeout=60))
    assert (probe["video"]["codec_name"], probe["video"]["width"], probe["video"]["height"]) == ("h264", 320, 180)
    assert probe["audio"]["codec_name"] == "aac"
    info = stream_info(edge, "door")
    assert info["input"]["sourceType"] == "RtspPull" and info["input"]["sourceUrl"] == rtsp_source.url
    assert [o["name"] for o in info["outputs"]] == ["door"]
    tracks = media_tracks(info, "door")
    assert tracks["Video"]["video"]["bypass"] is True and tracks["Audio"]["audio"]["bypass"] is True
    assert (tracks["Video"]["video"]["width"], tracks["Video"]["video"]["height"]) == (320, 180)
    assert [o.get("playlists", []) for o in info["outputs"]] == [[]]
    assert httpx.get(f"{base}/door/abr.m3u8", timeout=30).status_code == 404  # the profile's playlist is not made
    [defined] = [p for p in pulls(edge, "PullDefined") if p["name"] == "door"]
    assert defined["properties"]["relay"] is True
    # the same camera without Relay: a source of the app, scaled by its profile, its playlist served
    assert httpx.get(f"{base}/yard/abr.m3u8", timeout=60).status_code == 200
    probe = streams_by_type(ffprobe_json(f"{base}/yard/llhls.m3u8", timeout=60))
    assert (probe["video"]["codec_name"], probe["video"]["width"], probe["video"]["height"]) == ("h264", 160, 90)
    tracks = media_tracks(stream_info(edge, "yard"), "yard")
    assert tracks["Video"]["video"]["bypass"] is False and tracks["Video"]["video"]["width"] == 160
    log = edge.wait_for_log("transcode encoder opened stream=default/app/yard ")
    assert "transcode encoder opened stream=default/app/door " not in log  # door ran no encoder
    # OME's POST …/streams takes no relay property: an API pull asking for one is a source all the same
    r = edge.api.post(f"{APP}/streams", json={"name": "api", "urls": [rtsp_source.url],
                                              "properties": {"relay": True}})
    assert r.status_code == 201
    edge.wait_for_log("transcode encoder opened stream=default/app/api ")
    tracks = edge.wait_for(lambda: (t := media_tracks(stream_info(edge, "api"), "api")) and "Video" in t and t,
                           what="the API pull's output")
    assert tracks["Video"]["video"]["bypass"] is False and tracks["Video"]["video"]["width"] == 160
