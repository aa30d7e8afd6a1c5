"""WebRTC players (OvenPlayer, Eyevinn's WHEP player) in Chromium on Kiln's channels: a multiplex channel's ABR
playlist whose renditions come from two RTMP sources (OvenPlayer switching renditions), and a scheduled channel
going file -> live stream -> file, and a live item whose camera stops (the fallback plays) and comes back: frames
keep being decoded across every switch."""

from __future__ import annotations

import datetime
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_players_channels import make_red_file
from tests.e2e.test_scheduled_live_items import make_cam
from tests.e2e.webrtc.play_kiln import RtcPorts, rtc_server_xml, wait_rtmp_stream
from tests.e2e.webrtc.rtc_browser import play_rtc, rtc_browser_available, start_rtc
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

CHANNEL_APPS = """
        <Application>
          <Name>ch</Name>
          <Type>live</Type>
          <OutputProfiles>
            <OutputProfile><Name>rtc</Name><OutputStreamName>${{OriginStreamName}}</OutputStreamName><Encodes>
              <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
              <Audio><Name>opus_audio</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                <Channel>2</Channel></Audio>
            </Encodes></OutputProfile></OutputProfiles>
          <Providers>
            <Schedule><MediaRootDir>{media}</MediaRootDir><ScheduleFilesDir>schedules</ScheduleFilesDir></Schedule>
            <Multiplex><MuxFilesDir>mux_files</MuxFilesDir></Multiplex>
          </Providers>
          <Publishers><WebRTC><CrossDomains><Url>*</Url></CrossDomains></WebRTC></Publishers>
        </Application>"""
ABR = {"outputStream": {"name": "abr"}, "sourceStreams": [
    {"name": "small", "url": "stream://default/app/small", "trackMap": [
        {"sourceTrackName": "bypass_video", "newTrackName": "small_video"},
        {"sourceTrackName": "opus_audio", "newTrackName": "small_audio"}]},
    {"name": "big", "url": "stream://default/app/big", "trackMap": [
        {"sourceTrackName": "bypass_video", "newTrackName": "big_video"}]}],
    "playlists": [{"name": "ABR", "fileName": "abr", "renditions": [
        {"name": "360p", "video": "big_video", "audio": "small_audio"},
        {"name": "180p", "video": "small_video", "audio": "small_audio"}]}]}


@pytest.fixture
def kiln(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts, Path]]:
    require("chromium", rtc_browser_available)
    require("ffmpeg")
    media = tmp_path / "media"
    media.mkdir()
    ports = RtcPorts()
    workdir = tmp_path / "kiln"
    (workdir / "schedules").mkdir(parents=True)
    (workdir / "mux_files").mkdir()
    k = KilnProcess(workdir, rtc_server_xml(ports, extra_apps=CHANNEL_APPS.format(media=media)), ports).start()
    try:
        yield k, ports, media
    finally:
        k.close()


def make_source(path: Path, size: str, tone: int, gop: int, seconds: float) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=20",
                    "-f", "lavfi", "-i", f"sine=f={tone}:r=48000", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "veryfast", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", "-f", "flv", str(path)],
                   check=True, timeout=60)


def frames_kept_coming(report: dict[str, Any], window: int = 4) -> None:
    """Every ``window`` samples (1 s at 250 ms) new frames were shown: decoding never stopped at a switch."""
    frames = [s["frames"] for s in report["samples"]]
    assert len(frames) >= 30, report
    stuck = [i for i in range(len(frames) - window) if frames[i + window] == frames[i]]
    assert not stuck, f"no frame shown for 1 s from sample {stuck[0]}: {report['samples']}"
    assert frames[-1] - frames[0] >= 0.6 * 20 * 0.25 * (len(frames) - 1), report  # 20 fps, most of them shown


def runs(report: dict[str, Any]) -> list[tuple[int, str]]:
    """(width, colour) of the picture, a run of equal samples once."""
    seen = [(s["width"], s["colour"]) for s in report["samples"]]
    return [x for i, x in enumerate(seen) if i == 0 or seen[i - 1] != x]


def test_ovenplayer_switches_renditions_of_a_multiplex_channel(
        kiln: tuple[KilnProcess, RtcPorts, Path], tmp_path: Path, peer_dir: Path) -> None:
    k, ports, _ = kiln
    small, big = tmp_path / "small.flv", tmp_path / "big.flv"
    make_source(small, "320x180", 440, 10, 3)  # keyframes every 0.5 s
    make_source(big, "640x360", 880, 13, 3.1)  # every 0.65 s: not lined up with the other's
    assert k.api.post("/v1/vhosts/default/apps/ch/multiplexChannels", json=ABR).json()["statusCode"] == 201
    peers = [publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/{n}", p, loop=True, log_dir=peer_dir)
             for n, p in (("small", small), ("big", big))]
    try:
        wait_rtmp_stream(k, "small")
        wait_rtmp_stream(k, "big")
        k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/ch/streams/abr").json()["statusCode"] == 200,
                   what="the channel's stream")
        report = play_rtc("ovenplayer", f"ws://127.0.0.1:{ports.llhls}/ch/abr/abr",
                          origin=f"http://127.0.0.1:{ports.llhls}", workdir=tmp_path / "browser", watch=9,
                          sample_ms=250, switch_every_ms=2000)
    finally:
        for p in peers:
            p.stop()
    log.info("ovenplayer multiplex ABR: switches=%s runs=%s", report.get("switches"), runs(report))
    assert report["playing"] and not report["errors"], report
    assert [s.get("levels") for s in report["switches"]] == [2] * len(report["switches"]), report
    assert len(report["switches"]) >= 3, report
    frames_kept_coming(report)
    widths = [w for w, _ in runs(report)]
    assert len(widths) >= 3 and set(widths) == {320, 640}, report["samples"]  # each switch shows


def test_whep_and_ovenplayer_play_a_scheduled_channel_across_file_live_file(
        kiln: tuple[KilnProcess, RtcPorts, Path], tmp_path: Path, peer_dir: Path) -> None:
    k, ports, media = kiln
    make_red_file(media / "red.mp4", bframes=False)  # 160x90 red
    cam = tmp_path / "cam.flv"
    make_cam(cam)  # 320x180 blue
    peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam1", cam, loop=True, log_dir=peer_dir)
    try:
        wait_rtmp_stream(k, "cam1")
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        body = {"stream": {"name": "tv"}, "programs": [{"name": "show", "scheduled": now, "repeat": True, "items": [
            {"url": "file://red.mp4"}, {"url": "stream://default/app/cam1", "duration": 2000}]}]}
        assert k.api.post("/v1/vhosts/default/apps/ch/scheduledChannels", json=body).json()["statusCode"] == 201
        k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/ch/streams/tv").json()["statusCode"] == 200,
                   what="the channel's stream")
        for player, url in (("ovenplayer", f"ws://127.0.0.1:{ports.llhls}/ch/tv"),
                            ("whep", f"http://127.0.0.1:{ports.llhls}/ch/tv?direction=whep")):
            report = play_rtc(player, url, origin=f"http://127.0.0.1:{ports.llhls}", workdir=tmp_path / player,
                              watch=8, sample_ms=250)
            log.info("%s scheduled file/live: runs=%s", player, runs(report))
            assert report["playing"] and not report["errors"], report
            frames_kept_coming(report)
            seen = runs(report)
            assert len(seen) >= 3 and set(seen) == {(160, "red"), (320, "blue")}, report["samples"]
    finally:
        peer.stop()
    assert "Traceback" not in k.log_text(), k.log_tail()


def test_ovenplayer_plays_on_when_a_live_items_camera_stops_and_comes_back(
        kiln: tuple[KilnProcess, RtcPorts, Path], tmp_path: Path, peer_dir: Path) -> None:
    k, ports, media = kiln
    make_red_file(media / "red.mp4", bframes=False)  # 160x90 red: the fallback
    cam = tmp_path / "cam.flv"
    make_cam(cam)  # 320x180 blue
    peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam1", cam, loop=True, log_dir=peer_dir)
    viewer = None
    try:
        wait_rtmp_stream(k, "cam1")
        (k.workdir / "schedules" / "origin.sch").write_text("""<?xml version="1.0"?>
<Schedule><Stream><Name>origin</Name></Stream>
<FallbackProgram><Item url="file://red.mp4"/></FallbackProgram>
<Program name="live" scheduled="2000-01-01T00:00:00.000Z" repeat="true">
  <Item url="stream://default/app/cam1" duration="-1"/></Program>
</Schedule>
""")
        k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/ch/streams/origin").json()["statusCode"] == 200,
                   what="the channel's stream")
        viewer = start_rtc("ovenplayer", f"ws://127.0.0.1:{ports.llhls}/ch/origin",
                           origin=f"http://127.0.0.1:{ports.llhls}", workdir=tmp_path / "browser", watch=16,
                           sample_ms=250)
        k.wait_for(lambda: len([s for s in viewer.samples() if s["colour"] == "blue"]) >= 4, timeout=40,
                   what="the viewer seeing the camera for a second")
        peer.stop()  # the camera stops mid-item: the fallback plays, then the camera is back
        k.wait_for(lambda: len([s for s in viewer.samples() if s["colour"] == "red"]) >= 4, timeout=20,
                   what="the viewer seeing the fallback for a second")
        peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam1", cam, loop=True, log_dir=peer_dir)
        report = viewer.report()
    finally:
        if viewer is not None:
            viewer.peer.stop()
        peer.stop()
    log.info("ovenplayer live -> fallback -> live: runs=%s", runs(report))
    assert report["playing"] and not report["errors"], report
    frames_kept_coming(report)
    assert runs(report) == [(320, "blue"), (160, "red"), (320, "blue")], report["samples"]
    assert "Traceback" not in k.log_text(), k.log_tail()
