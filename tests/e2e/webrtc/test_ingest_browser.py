"""Browsers publish to Kiln with clients no one here wrote: OvenLiveKit over OME's signalling and
Eyevinn's WHIP client, from headless Chromium's fake camera and microphone. Kiln lists the stream
with its tracks, ffprobe reads its LL-HLS (H.264 + AAC made from the Opus input), a recording of it
plays end to end, and the client's DELETE ends it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.ingest_browser import publishers_available, round_trip, start_publisher
from tests.e2e.webrtc.ingest_kiln import INGEST_PROFILE, ingest_server_xml, input_tracks, stream_json
from tests.e2e.webrtc.play_kiln import RtcPorts
from tests.peers.ffmpeg import ffprobe_json

APP = "/v1/vhosts/default/apps/app"
SIM_WIDTH, SIM_HEIGHT = 960, 540  # Chromium sends three simulcast layers from 960x540 up (two at 640x360)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not publishers_available() and not os.environ.get("KILN_REQUIRE_PEERS"),
                                 reason="chromium, node or the npm publishers are not installed")]


@pytest.fixture
def rtc_kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> KilnProcess:
    ports = RtcPorts()
    return kiln_factory(ingest_server_xml(ports, records=str(tmp_path / "records")), ports)


def _probe_av(url: str) -> dict | None:  # type: ignore[type-arg]
    try:
        found = ffprobe_json(url, timeout=20)
    except Exception:
        return None
    types = {s.get("codec_type") for s in found.get("streams", [])}
    return found if {"video", "audio"} <= types else None


def test_ovenlivekit_publishes_and_every_output_reads_it(rtc_kiln: KilnProcess, tmp_path: Path) -> None:
    port = rtc_kiln.ports.llhls
    browser = start_publisher("ovenlivekit", f"ws://127.0.0.1:{port}/app/olk?direction=send", workdir=tmp_path,
                              page_origin=f"http://localhost:{port + 1}", publish_s=11)
    tracks = rtc_kiln.wait_for(input_tracks(rtc_kiln, "olk"), 40, "OvenLiveKit's stream with its tracks")
    video, audio = tracks["Video"]["video"], tracks["Audio"]["audio"]
    assert video["codec"] == "H264" and (video["width"], video["height"]) == (320, 180), video
    assert audio["codec"] == "OPUS" and audio["samplerate"] == 48000, audio
    assert stream_json(rtc_kiln, "olk")["input"]["sourceType"] == "WebRTC"
    rtc_kiln.wait_for(lambda: (input_tracks(rtc_kiln, "olk")() or {}).get("Video", {}).get("video", {})
                      .get("framerate", 0) > 5, 20, "a measured frame rate")
    start = rtc_kiln.api.post(f"{APP}:startRecord", json={"id": "olk", "stream": {"name": "olk"},
                                                          "filePath": "olk/${Id}.mp4"})
    assert start.status_code == 200, start.text
    probe = rtc_kiln.wait_for(lambda: _probe_av(f"http://127.0.0.1:{port}/app/olk/llhls.m3u8"), 40, "LL-HLS")
    codecs = {s["codec_type"]: s["codec_name"] for s in probe["streams"]}
    assert codecs == {"video": "h264", "audio": "aac"}, codecs
    rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "olk") is None, 60, "OvenLiveKit's stopStreaming ends it")
    report = browser.finish(60)
    assert report["connected"] and not report["errors"], report
    assert "H264" in (report["stats"]["codec"] or ""), report["stats"]
    recording = tmp_path / "records" / "olk" / "olk.mp4"
    rtc_kiln.wait_for(recording.exists, 30, "the recording file")
    recorded = rtc_kiln.wait_for(lambda: _probe_av(str(recording)), 30, "a finished recording")
    assert {s["codec_type"]: s["codec_name"] for s in recorded["streams"]} == {"video": "h264", "audio": "aac"}
    assert float(recorded["format"]["duration"]) >= 3.0


def test_eyevinn_whip_client_publishes_and_its_delete_ends_the_stream(rtc_kiln: KilnProcess, tmp_path: Path) -> None:
    port = rtc_kiln.ports.llhls
    browser = start_publisher("whip", f"http://127.0.0.1:{port}/app/whip1?direction=whip", workdir=tmp_path,
                              page_origin=f"http://localhost:{port + 1}", publish_s=4)
    tracks = rtc_kiln.wait_for(input_tracks(rtc_kiln, "whip1"), 40, "the WHIP stream with its tracks")
    assert tracks["Video"]["video"]["codec"] == "H264"
    rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "whip1") is None, 60, "the client's DELETE ends it")
    report = browser.finish(60)
    assert report["connected"] and report["stopped"] and not report["errors"], report
    assert report["stats"]["framesEncoded"] > 30
    rtc_kiln.wait_for_log("reason=deleted by the WHIP client")  # logged as the session ends, after the stream


def _layers(kiln: KilnProcess, name: str, count: int) -> Callable[[], list[tuple[int, int]] | None]:
    """A predicate: the sizes of the stream's input video tracks once ``count`` are described."""
    def check() -> list[tuple[int, int]] | None:
        found = stream_json(kiln, name)
        videos = [t["video"] for t in (found or {}).get("input", {}).get("tracks", []) if t["type"] == "Video"]
        sizes = sorted(((v.get("width") or 0, v.get("height") or 0) for v in videos), reverse=True)
        return sizes if len(sizes) >= count and all(w for w, _ in sizes) else None
    return check


SIM_PROFILE = INGEST_PROFILE.replace("</Encodes>", """</Encodes>
              <Playlist><Name>layers</Name><FileName>sim</FileName>
                <Rendition><Name>full</Name><Video>bypass_video</Video><Audio>aac_audio</Audio></Rendition>
                <Rendition><Name>half</Name><Video>bypass_video</Video><VideoIndexHint>1</VideoIndexHint>
                  <Audio>aac_audio</Audio></Rendition>
                <Rendition><Name>quarter</Name><Video>bypass_video</Video><VideoIndexHint>2</VideoIndexHint>
                  <Audio>aac_audio</Audio></Rendition>
              </Playlist>""")


def test_simulcast_through_whip_gives_a_rendition_per_layer(kiln_factory: Callable[..., KilnProcess],
                                                            tmp_path: Path) -> None:
    """Kiln's answer accepts the offer's ``a=simulcast`` layers: Chromium sends each on its own SSRC, Kiln
    lists each as a video track of the input (full, half and quarter size), the bypass encode keeps them
    as one group (largest first), and a playlist's renditions pick each by VideoIndexHint: ffprobe reads
    every LL-HLS variant at its layer's size. The default playlist plays the full-size layer."""
    ports = RtcPorts()
    kiln = kiln_factory(ingest_server_xml(ports, profiles=SIM_PROFILE), ports)
    port = ports.llhls
    # publish_s is a budget, not a duration: finish(now=True) ends it once the test has seen all it needs, so a
    # loaded machine gets time enough without the quiet case paying for it
    browser = start_publisher("whip", f"http://127.0.0.1:{port}/app/sim?direction=whip", workdir=tmp_path,
                              page_origin=f"http://localhost:{port + 1}", publish_s=90, simulcast=True,
                              width=SIM_WIDTH, height=SIM_HEIGHT)
    try:
        sizes = kiln.wait_for(_layers(kiln, "sim", 3), 40, "three simulcast layers as input tracks")
        expected = [(SIM_WIDTH // n, SIM_HEIGHT // n) for n in (1, 2, 4)]  # the encoder rounds 135 to 134

        def near(got: list[tuple[int, int]]) -> bool:
            return len(got) == 3 and all(w == ew and abs(h - eh) <= 2 for (w, h), (ew, eh) in zip(got, expected,
                                                                                                  strict=True))
        assert near(sizes), sizes
        base = f"http://127.0.0.1:{port}/app/sim"
        master = kiln.wait_for(lambda: _get_text(f"{base}/sim.m3u8"), 40, "the layers playlist")
        variants = [line for line in master.splitlines() if line and not line.startswith("#")]
        resolutions = [tuple(int(x) for x in line.split("RESOLUTION=")[1].split(",")[0].split("x"))
                       for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
        assert len(variants) == 3 and near(resolutions), master  # type: ignore[arg-type]
        probed = []
        for uri in variants:
            found = kiln.wait_for(lambda uri=uri: _probe_video(urljoin(f"{base}/sim.m3u8", uri)), 40, f"variant {uri}")
            probed.append((found["width"], found["height"]))
        assert near(probed), probed
        default = kiln.wait_for(lambda: _probe_av(f"{base}/llhls.m3u8"), 40, "the default LL-HLS playlist")
        video = next(s for s in default["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (SIM_WIDTH, SIM_HEIGHT), video
    finally:
        report = browser.finish(60, now=True)
    assert report["connected"] and not report["errors"], report
    assert report["simulcastOffered"], report
    log = kiln.wait_for_log("webrtc publish simulcast")
    assert "beyond the simulcast layers" not in log


def _probe_video(url: str) -> dict | None:  # type: ignore[type-arg]
    """A chunklist's video stream (its audio is in the master's audio group)."""
    try:
        found = ffprobe_json(url, timeout=20)
    except Exception:
        return None
    return next((s for s in found.get("streams", []) if s.get("codec_type") == "video" and s.get("width")), None)


def _get_text(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def test_round_trip_whip_in_ovenplayer_out_prints_glass_to_glass(rtc_kiln: KilnProcess, tmp_path: Path) -> None:
    port = rtc_kiln.ports.llhls
    report = round_trip(f"http://127.0.0.1:{port}/app/rt?direction=whip", f"ws://127.0.0.1:{port}/app/rt",
                        f"http://127.0.0.1:{port}/app/rt/llhls.m3u8", workdir=tmp_path,
                        page_origin=f"http://localhost:{port + 1}", watch_s=3)
    latencies = sorted(report["latencies"])
    assert report["connected"] and report["playing"] and not report["errors"], {**report, "latencies": len(latencies)}
    assert len(latencies) > 10, len(latencies)
    median = latencies[len(latencies) // 2]
    p90 = latencies[int(len(latencies) * 0.9)]
    sys.stdout.write(f"\nglass-to-glass WHIP -> Kiln -> OvenPlayer (WebRTC): median={median} ms p90={p90} ms "
                     f"frames={len(latencies)} (target <= 500 ms)\n")
    assert median < 2000  # a sanity bound for a loaded CI machine; the figure above is what counts
