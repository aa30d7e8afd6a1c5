"""MPEG-TS over UDP ingest as a user sees it: a sender to a mapped port creates stream_<port>, silence ends it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import FFMPEG, QUIET, publish_mpegts_udp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def stream_names(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def test_udp_sender_creates_the_mapped_stream_and_silence_ends_it(kiln: KilnProcess, test_ts: Path,
                                                                    peer_dir: Path) -> None:
    name = f"stream_{kiln.ports.mpegts}"
    pub = publish_mpegts_udp("127.0.0.1", kiln.ports.mpegts, test_ts, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: name in stream_names(kiln), what="mapped stream listed")

        def described() -> dict | None:
            info = kiln.api.get(f"{APP}/streams/{name}").json()["response"]
            video = next((t["video"] for t in info["input"]["tracks"] if t["type"] == "Video"), None)
            return info if video and video.get("width") else None

        info = kiln.wait_for(described, what="tracks described")
        assert info["input"]["sourceType"] == "MPEGTS"
        tracks = {t["type"]: t for t in info["input"]["tracks"]}
        assert (tracks["Video"]["video"]["codec"], tracks["Video"]["video"]["width"]) == ("H264", 320)
        assert (tracks["Audio"]["audio"]["codec"], tracks["Audio"]["audio"]["samplerate"]) == ("AAC", 48000)
        kiln.wait_for(lambda: kiln.api.get(f"/v1/stats/current{APP[3:]}/streams/{name}")
                      .json()["response"]["totalBytesIn"] > 0, what="bytes counted")
        created = info["input"]["createdTime"]
        assert pub.wait(30) == 0  # 4 s of media, paced
    finally:
        pub.stop()
    kiln.wait_for(lambda: name not in stream_names(kiln), timeout=10, what="stream ended after silence")
    kiln.wait_for_log("reason=no data for 1500 ms")

    again = publish_mpegts_udp("127.0.0.1", kiln.ports.mpegts, test_ts, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: name in stream_names(kiln), what="a new instance when data comes back")
        r = kiln.api.get(f"{APP}/streams/{name}")
        assert r.json()["response"]["input"]["createdTime"] != created
    finally:
        again.stop()


def test_bytes_that_are_not_ts_create_no_stream(kiln: KilnProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(20):
            sock.sendto(bytes([i]) * 1316, ("127.0.0.1", kiln.ports.mpegts))
    kiln.wait_for(lambda: "reason=input is not MPEG-TS" in kiln.log_path.read_text(), what="garbage refused")
    assert stream_names(kiln) == []


def test_the_app_shows_its_reserved_mpegts_streams(kiln: KilnProcess) -> None:
    app = kiln.api.get("/v1/vhosts/default/apps/app").json()["response"]
    port = kiln.ports.mpegts
    assert app["providers"]["mpegts"] == {"streams": [{"name": f"stream_{port}", "port": f"{port}/udp"}]}


def test_several_audio_tracks_are_all_listed(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    """One video and two audio tracks (AAC as sent, a second one re-encoded to MP3) in one UDP TS."""
    name = f"stream_{kiln.ports.mpegts}"
    inputs = [arg for _ in range(3) for arg in ("-re", "-stream_loop", "-1", "-i", str(test_ts))]
    argv = [FFMPEG, *QUIET, *inputs, "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy", "-c:a:0", "copy",
            "-c:a:1", "libmp3lame", "-b:a:1", "96k", "-f", "mpegts",
            f"udp://127.0.0.1:{kiln.ports.mpegts}?pkt_size=1316"]
    pub = Peer.spawn("ffmpeg-udp-3-tracks", argv, peer_dir)
    try:
        def audio_tracks() -> list[dict] | None:
            r = kiln.api.get(f"{APP}/streams/{name}")
            if r.status_code != 200:
                return None
            tracks = [t["audio"] for t in r.json()["response"]["input"]["tracks"] if t["type"] == "Audio"]
            return tracks if len(tracks) == 2 else None

        audios = kiln.wait_for(audio_tracks, what="two audio tracks listed")
        assert sorted((a["codec"], a["samplerate"], a["channel"]) for a in audios) == [("AAC", 48000, 2),
                                                                                       ("MP3", 48000, 2)]
        info = kiln.api.get(f"{APP}/streams/{name}").json()["response"]
        assert [t["type"] for t in info["input"]["tracks"]].count("Video") == 1
        assert pub.alive
    finally:
        pub.stop()
