"""RTMP ingest as a user sees it: the stream appears with its real tracks, counts bytes, can be dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def stream_names(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def test_published_stream_shows_real_tracks_and_stats(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam1", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "cam1" in stream_names(kiln), what="stream listed")

        def described() -> dict | None:
            info = kiln.api.get(f"{APP}/streams/cam1").json()["response"]
            video = next((t["video"] for t in info["input"]["tracks"] if t["type"] == "Video"), None)
            return info if video and video["framerateAvg"] > 0 and video["keyFrameIntervalAvg"] > 0 else None

        info = kiln.wait_for(described, what="measured video track")
        assert info["name"] == "cam1" and info["input"]["sourceType"] == "Rtmp"
        tracks = {t["type"]: t for t in info["input"]["tracks"]}
        assert set(tracks) == {"Video", "Audio", "Data"}
        video, audio = tracks["Video"]["video"], tracks["Audio"]["audio"]
        assert (video["codec"], video["width"], video["height"]) == ("H264", 320, 180)
        assert 25 <= video["framerateAvg"] <= 35 and video["keyFrameIntervalAvg"] == pytest.approx(30, abs=2)
        assert video["hasBframes"] is False
        assert (audio["codec"], audio["samplerate"], audio["channel"]) == ("AAC", 48000, 2)
        assert [o["name"] for o in info["outputs"]] == ["cam1"]
        assert all(t.get("video", t.get("audio", {})).get("bypass", True) for t in info["outputs"][0]["tracks"])

        def bytes_in() -> int:
            r = kiln.api.get(f"/v1/stats/current{APP[3:]}/streams/cam1")
            return r.json()["response"]["totalBytesIn"] if r.status_code == 200 else 0

        first = kiln.wait_for(bytes_in, what="bytes counted")
        kiln.wait_for(lambda: bytes_in() > first, what="byte counter growing")
        app_stats = kiln.api.get(f"/v1/stats/current{APP[3:]}").json()["response"]
        assert app_stats["totalBytesIn"] >= first
    finally:
        pub.stop()
    kiln.wait_for(lambda: "cam1" not in stream_names(kiln), what="stream gone after unpublish")
    assert kiln.api.get(f"{APP}/streams/cam1").status_code == 404


def test_b_frames_are_detected(kiln: KilnProcess, test_flv_bframes: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/bf", test_flv_bframes, loop=True, log_dir=peer_dir)
    try:
        def has_bframes() -> bool:
            r = kiln.api.get(f"{APP}/streams/bf")
            if r.status_code != 200:
                return False
            video = next((t["video"] for t in r.json()["response"]["input"]["tracks"] if t["type"] == "Video"), {})
            return bool(video.get("hasBframes"))

        kiln.wait_for(has_bframes, what="hasBframes true")
    finally:
        pub.stop()


def test_delete_drops_the_publisher(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/gone", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "gone" in stream_names(kiln), what="stream listed")
        r = kiln.api.delete(f"{APP}/streams/gone")
        assert r.json() == {"message": "OK", "statusCode": 200}
        assert "gone" not in stream_names(kiln)
        kiln.wait_for(lambda: not pub.alive, what="the ffmpeg publisher exits")
        r = kiln.api.delete(f"{APP}/streams/never")
        assert r.status_code == 404
    finally:
        pub.stop()


def test_unknown_app_is_refused_and_logged(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/nope/s", test_flv, log_dir=peer_dir)
    kiln.wait_for(lambda: not pub.alive, what="publisher refused")
    kiln.wait_for_log("application not found")
    assert kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"] == []


def test_journal_records_the_stream_lifecycle(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/audit", test_flv, log_dir=peer_dir)
    kiln.wait_for(lambda: "audit" in stream_names(kiln), what="stream listed")
    pub.stop()
    kiln.wait_for(lambda: "audit" not in stream_names(kiln), what="stream ended")
    import io

    from kiln.journal.cli import run

    def types() -> list[str]:
        out = io.StringIO()
        run(["show", "-d", str(kiln.data_dir), "--entity", "stream:default/app/audit", "--json"], out)
        import json

        return [json.loads(line)["type"] for line in out.getvalue().splitlines()]

    kiln.wait_for(lambda: types() == ["StreamStarted", "StreamTracksDescribed", "StreamEnded"], what="lifecycle")


def test_two_publishers_and_a_duplicate_that_is_refused(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    url = f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app"
    first = publish_rtmp(f"{url}/one", test_flv, loop=True, log_dir=peer_dir)
    second = publish_rtmp(f"{url}/two", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: sorted(stream_names(kiln)) == ["one", "two"], what="both streams")
        created = kiln.api.get(f"{APP}/streams/one").json()["response"]["input"]["createdTime"]
        dup = publish_rtmp(f"{url}/one", test_flv, loop=True, log_dir=peer_dir)
        kiln.wait_for(lambda: not dup.alive, what="duplicate publisher refused")
        kiln.wait_for_log("Stream already exists")
        assert first.alive and second.alive
        assert kiln.api.get(f"{APP}/streams/one").json()["response"]["input"]["createdTime"] == created
    finally:
        first.stop()
        second.stop()


def test_bytes_in_match_what_ffmpeg_sent(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/count", test_flv, realtime=False,
                       log_dir=peer_dir)
    pub.wait(30)
    kiln.wait_for(lambda: "count" not in stream_names(kiln), what="stream ended")
    total = kiln.api.get(f"/v1/stats/current{APP[3:]}").json()["response"]["totalBytesIn"]
    size = test_flv.stat().st_size  # FLV tags carry the same payload bytes RTMP messages do
    assert abs(total - size) / size < 0.05, (total, size)
