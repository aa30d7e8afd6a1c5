"""Pull on demand through SRT playback (media spec §4.1), as OME's SRT publisher does: an SRT player asking an
edge for a stream the edge does not have makes the edge pull it from its origin over OVT and is then served
MPEG-TS; a player asking for a stream no origin has is closed in bounded time, and the edge keeps no thread or
socket for it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.ovt_cluster import cluster_xml
from tests.e2e.test_admission_srt_playback import KEY, POLICY_XML
from tests.e2e.test_origins import origin, origins_xml, pulls, start, streams
from tests.peers.ffmpeg import FFMPEG, QUIET, ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.ome_signer import ome_sign
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.e2e

CLOSE_BOUND_S = 40.0  # 15 s for the pull, 10 s for its media, and the player's own exit


def edge_xml(ports: Ports, root: Path, playback_port: int, origin_ovt: int) -> str:
    """The edge: Origins send every /app/ stream to the origin's OVT port; SRT playback bound and enabled."""
    xml = cluster_xml(ports, root, vhost_extra=origins_xml(origin("/app/", "ovt", f"127.0.0.1:{origin_ovt}/app/")))
    xml = xml.replace("<OVT><Port>", f"<SRT><Port>{playback_port}</Port></SRT><OVT><Port>", 1)
    assert "<Push/>" in xml
    return xml.replace("<Push/>", "<Push/><SRT/>", 1)


def play_url(port: int, path: str) -> str:
    streamid = quote(f"srt://127.0.0.1:{port}/{path}", safe="")
    return f"srt://127.0.0.1:{port}?mode=caller&latency=200000&streamid={streamid}"


def play(port: int, path: str, out: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    argv = [FFMPEG, *QUIET, "-y", "-i", play_url(port, path), "-t", str(seconds), "-c", "copy", "-f", "mpegts",
            str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def threads_and_fds(k: KilnProcess) -> tuple[int, int]:
    assert k.proc is not None
    return len(os.listdir(f"/proc/{k.proc.pid}/task")), len(os.listdir(f"/proc/{k.proc.pid}/fd"))


def srt_connections(k: KilnProcess, stream: str) -> int:
    r = k.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{stream}")
    return int(r.json()["response"]["connections"]["srt"]) if r.status_code == 200 else -1


@pytest.fixture
def edge_pair(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> tuple[KilnProcess, KilnProcess, int]:
    """An origin, and an edge whose Origins point at it, with its SRT playback port."""
    origin_k = start(kiln_factory, tmp_path, "origin")
    ports, port = Ports(), free_udp_port()
    edge = kiln_factory(edge_xml(ports, tmp_path / "edge" / "records", port, origin_k.ports.ovt), ports,
                        tmp_path / "edge")
    return origin_k, edge, port


def test_an_srt_player_makes_the_edge_pull_the_stream_and_gets_its_media(
        edge_pair: tuple[KilnProcess, KilnProcess, int], test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    origin_k, edge, port = edge_pair
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    out = tmp_path / "pulled.ts"
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        assert streams(edge) == []
        result = play(port, "app/cam", out, 3)
        assert result.returncode == 0, result.stderr[-2000:]
        assert streams(edge) == ["cam"]
        info = edge.api.get("/v1/vhosts/default/apps/app/streams/cam").json()["response"]
        assert info["input"]["sourceType"] == "Ovt"
        edge.wait_for(lambda: srt_connections(edge, "cam") == 0, what="the srt connection released")
    finally:
        source.stop()
    probe = streams_by_type(ffprobe_json(out, timeout=30))
    assert (probe["video"]["codec_name"], probe["audio"]["codec_name"]) == ("h264", "aac")
    assert (probe["video"]["width"], probe["video"]["height"]) == (320, 180)
    assert float(ffprobe_json(out, timeout=30)["format"]["duration"]) >= 2.5
    decoded = subprocess.run([FFMPEG, *QUIET, "-i", str(out), "-map", "0:v", "-f", "null", "-"],
                             capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0 and "error" not in decoded.stderr.lower(), decoded.stderr[-2000:]
    [defined] = pulls(edge, "PullDefined")
    assert defined["cause"] == "Origins rule location=/app/ scheme=ovt"
    edge.wait_for_log("srt playback pulling on demand session=default/app/cam@127.0.0.1:",
                      "srt playback started session=default/app/cam@127.0.0.1:")


def test_a_stream_no_origin_has_closes_the_caller_in_bounded_time_and_leaks_nothing(
        edge_pair: tuple[KilnProcess, KilnProcess, int], tmp_path: Path) -> None:
    _, edge, port = edge_pair
    first = play(port, "app/nothing", tmp_path / "first.ts", 2)  # warms the edge's pools up
    assert first.returncode != 0
    baseline = threads_and_fds(edge)
    began = time.monotonic()
    second = play(port, "app/nothing", tmp_path / "second.ts", 2)
    took = time.monotonic() - began
    assert second.returncode != 0
    assert took < CLOSE_BOUND_S, f"the caller was held {took:.0f}s"
    assert not (tmp_path / "second.ts").exists() or (tmp_path / "second.ts").stat().st_size == 0
    edge.wait_for_log("srt playback pull on demand failed session=default/app/nothing@127.0.0.1:",
                      "reason=could not find stream 'nothing' in application default/app: no origin gave it")

    def back() -> bool:
        threads, fds = threads_and_fds(edge)
        return threads <= baseline[0] and fds <= baseline[1]

    edge.wait_for(back, timeout=20, what=f"threads and fds back to {baseline} (now {threads_and_fds(edge)})")
    assert [p["name"] for p in pulls(edge, "PullFailed")] == ["nothing", "nothing"]
    assert streams(edge) == []


def test_admission_comes_before_the_pull_a_refused_caller_starts_none(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    """SignedPolicy on the edge's SRT playback: an unsigned caller for a stream the edge does not have is
    closed and starts no pull; a signed one makes the edge pull it and plays (as HLS v3 asks admission first)."""
    origin_k = start(kiln_factory, tmp_path, "origin")
    ports, port = Ports(), free_udp_port()
    xml = edge_xml(ports, tmp_path / "edge" / "records", port, origin_k.ports.ovt).replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{POLICY_XML}")
    assert POLICY_XML in xml
    edge = kiln_factory(xml, ports, tmp_path / "edge")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        refused = play(port, "app/cam", tmp_path / "unsigned.ts", 2)
        assert refused.returncode != 0
        edge.wait_for_log("srt playback denied vhost=default app=app stream=cam")
        assert pulls(edge, "PullDefined") == [] and streams(edge) == []
        assert "origin pull vhost=default app=app stream=cam" not in edge.log_text()
        signed = ome_sign(f"srt://127.0.0.1:{port}/app/cam", KEY, {"url_expire": int(time.time() * 1000) + 60_000})
        streamid = quote(signed.removeprefix("srt://"), safe="")
        out = tmp_path / "signed.ts"
        played = subprocess.run([FFMPEG, *QUIET, "-y", "-i", f"srt://127.0.0.1:{port}?mode=caller&latency=200000"
                                 f"&streamid={streamid}", "-t", "2", "-c", "copy", "-f", "mpegts", str(out)],
                                capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        assert played.returncode == 0, played.stderr[-2000:]
        assert streams(edge) == ["cam"]
    finally:
        source.stop()
    assert float(ffprobe_json(out, timeout=30)["format"]["duration"]) >= 1.5


def test_an_srt_viewer_keeps_the_pulled_stream_in_use(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path, peer_dir: Path) -> None:
    """UnusedStreamDeletionTimeout 1.5 s: the SRT caller counts as a viewer of the stream it made the edge pull,
    so it plays 5 s, and the stream is deleted once it left."""
    origin_k = start(kiln_factory, tmp_path, "origin")
    ports, port = Ports(), free_udp_port()
    xml = edge_xml(ports, tmp_path / "edge" / "records", port, origin_k.ports.ovt).replace(
        "<UnusedStreamDeletionTimeout>60000<", "<UnusedStreamDeletionTimeout>1500<", 1)
    assert "<UnusedStreamDeletionTimeout>1500<" in xml
    edge = kiln_factory(xml, ports, tmp_path / "edge")
    source = publish_rtmp(f"rtmp://127.0.0.1:{origin_k.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    out = tmp_path / "long.ts"
    try:
        origin_k.wait_for(lambda: "cam" in streams(origin_k), what="origin stream")
        result = play(port, "app/cam", out, 5)
        assert result.returncode == 0, result.stderr[-2000:]
        edge.wait_for(lambda: streams(edge) == [], what="the pulled stream deleted once unused")
    finally:
        source.stop()
    assert float(ffprobe_json(out, timeout=30)["format"]["duration"]) >= 4.5


def test_an_origin_that_never_answers_holds_the_caller_while_the_pull_tries_then_closes_it(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    """The origin's OVT port accepts and says nothing: the caller is held, connected and sent nothing, while the
    pull tries (two describes of 3 s each), then closed with the reason logged; nothing is left counted."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the connections; nobody reads or answers
    try:
        ports, port = Ports(), free_udp_port()
        edge = kiln_factory(edge_xml(ports, tmp_path / "edge" / "records", port, silent.getsockname()[1]), ports,
                            tmp_path / "edge")
        began = time.monotonic()
        result = play(port, "app/cam", tmp_path / "never.ts", 2)
        took = time.monotonic() - began
    finally:
        silent.close()
    assert result.returncode != 0
    assert 5 <= took < CLOSE_BOUND_S, f"the caller was closed after {took:.1f}s"
    edge.wait_for_log("error=no answer from the origin within 3s",
                      "srt playback pull on demand failed session=default/app/cam@127.0.0.1:")
    edge.wait_for(lambda: srt_connections(edge, "cam") <= 0, what="no srt connection left")
