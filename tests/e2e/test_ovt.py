"""OVT origin → edge between two real Kiln processes (ffmpeg publishes RTMP to the origin)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.media.formats import ovt
from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def start(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, name: str, **kw: Any) -> KilnProcess:
    ports = Ports()
    return kiln_factory(cluster_xml(ports, tmp_path / name / "records", **kw), ports, tmp_path / name)


def stream_info(k: KilnProcess, name: str) -> dict[str, Any] | None:
    r = k.api.get(f"{APP}/streams/{name}").json()
    return r.get("response") if r["statusCode"] == 200 else None


def track_view(info: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a user compares between origin and edge: each output track's identity and format."""
    out = []
    for output in info["outputs"]:
        for t in output["tracks"]:
            media = t.get("video") or t.get("audio") or {}
            out.append((output["name"], t["id"], t["type"], t.get("name"), media.get("codec"),
                        media.get("width"), media.get("height"), media.get("samplerate"), media.get("channel")))
    return out


def ovt_connections(k: KilnProcess, name: str) -> int:
    stats = k.api.get(f"/v1/stats/current{APP[3:]}/streams/{name}").json().get("response") or {}
    return int(stats.get("connections", {}).get("ovt", 0))


def test_edge_pulls_over_ovt_with_the_origins_tracks_and_plays_llhls(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    origin = start(kiln_factory, tmp_path, "origin")
    edge = start(kiln_factory, tmp_path, "edge")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_info = origin.wait_for(lambda: (i := stream_info(origin, "cam")) and i["outputs"] and i,
                                      what="origin stream started")
        url = f"ovt://127.0.0.1:{origin.ports.ovt}/app/cam"
        r = edge.api.post(f"{APP}/streams", json={"name": "cam", "urls": [url]})  # the seeds' example
        assert r.json() == {"message": "Created", "statusCode": 201}
        edge_info = edge.wait_for(lambda: (i := stream_info(edge, "cam")) and i["outputs"] and i,
                                  what="edge stream started")
        assert edge_info["input"]["sourceType"] == "Ovt" and edge_info["input"]["sourceUrl"] == url
        assert track_view(edge_info) == track_view(origin_info)
        playlists = [o.get("playlists") for o in origin_info["outputs"]]
        assert playlists[0] and [o.get("playlists") for o in edge_info["outputs"]] == playlists
        assert origin.wait_for(lambda: ovt_connections(origin, "cam") == 1, what="one ovt connection")
        probe = ffprobe_json(f"http://127.0.0.1:{edge.ports.llhls}/app/cam/llhls.m3u8", timeout=60)
        kinds = streams_by_type(probe)
        assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["width"] == 320
        assert kinds["audio"]["codec_name"] == "aac"
        # the edge's viewers never add origin connections: still one relay
        assert ovt_connections(origin, "cam") == 1
        assert edge.api.delete(f"{APP}/streams/cam").json()["statusCode"] == 200
        assert origin.wait_for(lambda: ovt_connections(origin, "cam") == 0, what="relay released")
    finally:
        source.stop()


def test_garbage_on_the_ovt_port_is_a_closed_connection_and_the_origin_keeps_serving(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    origin = start(kiln_factory, tmp_path, "origin")
    with socket.create_connection(("127.0.0.1", origin.ports.ovt), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(64))
        assert s.recv(100) == b""  # closed, nothing answered
    # a well-framed request for a stream that does not exist: OME's 404, the connection stays usable
    with socket.create_connection(("127.0.0.1", origin.ports.ovt), timeout=10) as s:
        for rid in (1, 2):
            wire, _ = ovt.packetize(ovt.TYPE_REQUEST, ovt.encode_request(
                ovt.Request(rid, "describe", f"ovt://127.0.0.1:{origin.ports.ovt}/app/none")))
            s.sendall(wire)
            head = b""
            while len(head) < ovt.HEADER_SIZE:
                head += s.recv(ovt.HEADER_SIZE - len(head))
            header = ovt.parse_header(head)
            body = b""
            while len(body) < header.length:
                body += s.recv(header.length - len(body))
            resp = ovt.parse_response(body)
            assert (resp.id, resp.code) == (rid, 404) and "Could not find the stream" in resp.message
    log = origin.wait_for_log("ovt connection refused")
    assert "Traceback" not in log
    assert origin.api.get("/v1/version").status_code == 200


def pull_failures(k: KilnProcess) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir),
                          "--type", "PullFailed", "--json"], capture_output=True, text=True, timeout=30, check=True)
    return {r["payload"]["name"]: r["payload"]["reason"] for r in map(json.loads, out.stdout.splitlines())}


def test_origins_that_do_not_speak_ovt_are_bounded_502s_that_say_why(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    edge = start(kiln_factory, tmp_path, "edge")
    # a web server where the origin should be: it answers HTTP, not OVT (a protocol error)
    with socket.socket() as web:
        web.bind(("127.0.0.1", 0))
        web.listen(8)

        def answer_http() -> None:
            for _ in range(2):  # the first try and its one retry
                conn, _ = web.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer_http, daemon=True).start()
        url = f"ovt://127.0.0.1:{web.getsockname()[1]}/app/cam"
        r = edge.api.post(f"{APP}/streams", json={"name": "http", "urls": [url]})
        assert r.status_code == 502
    # an origin that accepts and never answers the describe: bounded by noInputFailoverTimeoutMs
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ovt://127.0.0.1:{silent.getsockname()[1]}/app/cam"
        t0 = time.monotonic()
        r = edge.api.post(f"{APP}/streams", json={"name": "silent", "urls": [url],
                                                  "properties": {"noInputFailoverTimeoutMs": 1500}})
        assert r.status_code == 502 and time.monotonic() - t0 < 15
    failures = pull_failures(edge)
    assert failures["http"] == "could not connect to any url (protocol error: OVT payload type 84 is unknown)"
    assert failures["silent"] == "could not connect to any url (no answer from the origin within 1.5s)"
    assert stream_info(edge, "http") is None and stream_info(edge, "silent") is None
    assert "Traceback" not in edge.log_path.read_text()
