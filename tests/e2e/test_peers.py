"""Self-test of the peer toolkit (tests/peers): every peer really starts, serves and is stopped by PID."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.peers import media
from tests.peers.ffmpeg import (
    count_frames,
    ffprobe_json,
    publish_mpegts_udp,
    publish_rtmp,
    publish_srt,
    record_from,
    srt_listener_receiver,
    streams_by_type,
    udp_ts_receiver,
)
from tests.peers.fixtures import require
from tests.peers.http_static import StaticHttpServer
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import RESERVATIONS, free_tcp_port, free_udp_port, wait_until
from tests.peers.process import Peer, run_checked
from tests.peers.redis import RedisServer
from tests.peers.rtsp_server import RtspSource
from tests.peers.srt_tools import srt_live_transmit

pytestmark = [pytest.mark.e2e, pytest.mark.peers]

FPS = 30


def assert_test_pattern(probe: dict[str, Any], *, audio: bool = True) -> None:
    streams = streams_by_type(probe)
    video = streams["video"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    if audio:
        assert streams["audio"]["codec_name"] == "aac"
        assert int(streams["audio"]["sample_rate"]) == 48000
        assert streams["audio"]["channels"] == 2


def test_ports_are_unique_and_reserved() -> None:
    ports = [free_tcp_port() for _ in range(20)] + [free_udp_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        assert (RESERVATIONS / str(port)).read_text() == str(os.getpid())


def test_peer_stop_kills_the_whole_process_group(peer_dir: Path) -> None:
    peer = Peer.spawn("sleepers", ["sh", "-c", "sleep 60 & echo $! ; wait"], peer_dir)
    child = int(wait_until(lambda: peer.stdout_text().strip(), 5, "child pid"))
    assert peer.alive
    peer.stop(grace=2)
    assert not peer.alive

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"

    wait_until(gone, 5, "grandchild to die")


@pytest.mark.parametrize("fmt", ["flv", "ts", "mp4"])
@pytest.mark.parametrize("bframes", [False, True])
def test_media_files_probe_as_the_test_pattern(fmt: str, bframes: bool) -> None:
    require("ffmpeg")
    path = media.test_media(fmt, 4, bframes=bframes)
    probe = ffprobe_json(path)
    assert_test_pattern(probe)
    assert (streams_by_type(probe)["video"]["has_b_frames"] > 0) == bframes
    assert count_frames(path) == 4 * FPS
    assert media.test_media(fmt, 4, bframes=bframes) == path  # cached


def test_rtmp_publish_into_nginx_is_recorded(nginx_rtmp: NginxRtmp, test_flv: Path, peer_dir: Path) -> None:
    publisher = publish_rtmp(nginx_rtmp.url(stream="t1"), test_flv, realtime=False, log_dir=peer_dir)
    assert publisher.wait(15) == 0, publisher.stderr_tail()
    recorded = nginx_rtmp.wait_recorded("t1", min_bytes=10_000)
    wait_until(lambda: "t1" not in nginx_rtmp.publishing(), 10, "nginx to see the unpublish")
    assert_test_pattern(ffprobe_json(recorded))
    assert count_frames(recorded) == 4 * FPS


def test_nginx_rtmp_plays_back_a_live_publish(nginx_rtmp: NginxRtmp, test_flv: Path, peer_dir: Path) -> None:
    publisher = publish_rtmp(nginx_rtmp.url(stream="live1"), test_flv, loop=True, log_dir=peer_dir)
    try:
        nginx_rtmp.wait_publishing("live1")
        out = peer_dir / "readback.flv"
        reader = record_from(nginx_rtmp.url(stream="live1"), out, 2)
        assert reader.wait(15) == 0, reader.stderr_tail()
    finally:
        publisher.stop()
    assert_test_pattern(ffprobe_json(out))
    assert count_frames(out) >= FPS  # the reader joins mid-GOP and drops frames up to the first keyframe


def test_rtsp_source_probes_over_tcp(rtsp_source: RtspSource) -> None:
    assert rtsp_source.url.startswith("rtsp://127.0.0.1:")
    assert_test_pattern(ffprobe_json(rtsp_source.url))


def test_redis_answers_ping(redis_server: RedisServer) -> None:
    assert redis_server.cli("PING") == "PONG"
    assert redis_server.cli("SET", "k", "v") == "OK"
    assert redis_server.cli("GET", "k") == "v"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_udp_ts_receiver_gets_an_mpegts_udp_publish(test_ts: Path, peer_dir: Path) -> None:
    port = free_udp_port()
    out = peer_dir / "udp_rx.ts"
    receiver = udp_ts_receiver(port, out, 3)
    publisher = publish_mpegts_udp("127.0.0.1", port, test_ts, loop=True, log_dir=peer_dir)
    try:
        assert receiver.wait(15) == 0, receiver.stderr_tail()
    finally:
        publisher.stop()
    assert_test_pattern(ffprobe_json(out))
    assert count_frames(out) >= 3 * FPS - 10


def test_srt_listener_receiver_gets_an_srt_publish(test_ts: Path, peer_dir: Path) -> None:
    require("ffmpeg")
    port = free_udp_port()
    out = peer_dir / "srt_rx.ts"
    receiver = srt_listener_receiver(port, out, 3, streamid="app/stream")
    publisher = publish_srt(f"srt://127.0.0.1:{port}?mode=caller&latency=200000&streamid=app/stream", test_ts,
                            log_dir=peer_dir)
    try:
        assert receiver.wait(15) == 0, receiver.stderr_tail()
    finally:
        publisher.stop()
    assert_test_pattern(ffprobe_json(out))
    assert count_frames(out) >= 3 * FPS - 10


def test_srt_live_transmit_listener_relays_to_stdout(test_ts: Path, peer_dir: Path) -> None:
    require("srt-live-transmit")
    port = free_udp_port()
    relay = srt_live_transmit(f"srt://127.0.0.1:{port}?mode=listener", "file://con", log_dir=peer_dir)
    # paced (-re): an unpaced live-mode SRT caller overruns the receiver and the relay gets nothing
    publisher = publish_srt(f"srt://127.0.0.1:{port}?mode=caller&latency=200000", test_ts, log_dir=peer_dir)
    try:
        assert publisher.wait(15) == 0, publisher.stderr_tail()
        relay.wait(15)  # -a:no: it exits once the caller has left
    finally:
        relay.stop()
    received = peer_dir / "slt_rx.ts"
    received.write_bytes(relay.stdout_path.read_bytes())
    assert_test_pattern(ffprobe_json(received))
    assert count_frames(received) >= 4 * FPS - 30  # SRT drops the receiver's TSBPD tail on disconnect


@pytest.fixture
def static_hls(peer_dir: Path, test_mp4: Path) -> Path:
    """A 4 s VOD HLS (1 s segments) made by ffmpeg from the cached MP4."""
    hls = peer_dir / "hls"
    hls.mkdir()
    run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", test_mp4, "-c", "copy",
                 "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", hls / "index.m3u8"], timeout=30)
    return hls


def test_chromium_hlsjs_plays_static_hls(static_hls: Path, chromium_player: Callable[..., dict[str, Any]]) -> None:
    with StaticHttpServer(static_hls) as http:
        report = chromium_player(http.url("index.m3u8"), timeout=20)
        assert report["played"] is True, report
        assert report["currentTime"] >= 1.0
        assert report["lowLatencyMode"] is True
        assert report["live"] is False
        assert report["fragsLoaded"] >= 1
        assert "/index.m3u8" in http.requests


def test_chromium_hlsjs_cross_origin_needs_cors(
    static_hls: Path, chromium_player: Callable[..., dict[str, Any]]
) -> None:
    other_origin = f"http://127.0.0.1:{free_tcp_port()}"
    with StaticHttpServer(static_hls, cors=False) as http:
        report = chromium_player(http.url("index.m3u8"), timeout=10, origin=other_origin)
        assert report["played"] is False
        assert any("manifestLoadError" in e for e in report["errors"]), report
    with StaticHttpServer(static_hls, cors=True) as http:
        report = chromium_player(http.url("index.m3u8"), timeout=20, origin=other_origin)
        assert report["played"] is True, report


def test_fixture_teardown_leaves_no_peer(peer_dir: Path) -> None:
    require("nginx-rtmp")
    server = NginxRtmp(peer_dir / "nginx").start()
    pid = server.peer.pid if server.peer else 0
    server.stop()
    assert server.peer is not None and not server.peer.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
