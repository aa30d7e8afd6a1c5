"""Transcoding by output profiles, as users see it: a 720p RTMP input becomes 360p and 180p H.264 renditions
(+ AAC and Opus) that the API describes, ffprobe reads from the LL-HLS ABR master and hls.js plays; bypassIfMatch
relays an input that matches and encodes one that does not; image encodes are listed as OME lists them."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp
from tests.peers.fixtures import require
from tests.peers.media import media_dir
from tests.peers.process import Peer, run_checked

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"

PROFILES = """
            <OutputProfile>
              <Name>abr</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>v360</Name><Codec>h264</Codec><Width>640</Width><Height>360</Height>
                  <Bitrate>600K</Bitrate><KeyFrameInterval>30</KeyFrameInterval><Preset>faster</Preset></Video>
                <Video><Name>v180</Name><Codec>h264</Codec><Height>180</Height><Bitrate>200K</Bitrate>
                  <KeyFrameInterval>30</KeyFrameInterval></Video>
                <Audio><Name>aac</Name><Codec>aac</Codec><Bitrate>96K</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
                <Audio><Name>opus</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
              <Playlist>
                <Name>abr</Name><FileName>abr</FileName>
                <Rendition><Name>360p</Name><Video>v360</Video><Audio>aac</Audio></Rendition>
                <Rendition><Name>180p</Name><Video>v180</Video><Audio>aac</Audio></Rendition>
              </Playlist>
            </OutputProfile>
            <OutputProfile>
              <Name>small</Name>
              <OutputStreamName>${OriginStreamName}_small</OutputStreamName>
              <Encodes>
                <Video><Name>small</Name><Codec>h264</Codec><Width>320</Width><Height>180</Height><Bitrate>200K</Bitrate>
                  <BypassIfMatch><Codec>eq</Codec><Width>eq</Width><Height>eq</Height></BypassIfMatch></Video>
                <Audio><Name>a</Name><Bypass>true</Bypass></Audio>
                <Image><Name>thumb</Name><Codec>jpeg</Codec><Width>160</Width><Framerate>1</Framerate></Image>
              </Encodes>
            </OutputProfile>"""


def _media_720p(seconds: int = 3) -> Path:
    """A cached 1280x720 30 fps H.264 (1 s GOP, no B-frames) + AAC FLV."""
    directory = media_dir()
    target = directory / f"testsrc2_1280x720_{seconds}s_bf0.flv"
    if target.exists():
        return target
    with open(directory / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = directory / f".{target.name}.{os.getpid()}.partial"
        try:
            run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                         "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
                         "-map", "0:v", "-map", "1:a", "-t", str(seconds),
                         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30",
                         "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0",
                         "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "flv", str(partial)],
                        timeout=120)  # fmt: skip
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
    return target


@pytest.fixture(scope="session")
def flv_720p() -> Path:
    require("ffmpeg")
    return _media_720p()


@pytest.fixture
def transcoding(kiln_factory: Callable[..., KilnProcess], flv_720p: Path, test_flv: Path,
                peer_dir: Path) -> Iterator[tuple[KilnProcess, str]]:
    kiln = kiln_factory(profiles=PROFILES)
    pubs: list[Peer] = [publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/big", flv_720p, loop=True,
                                     log_dir=peer_dir)]
    base = f"http://127.0.0.1:{kiln.ports.llhls}/app/big"
    try:
        with httpx.Client(timeout=15) as http:
            def playable() -> bool:
                r = http.get(f"{base}/abr.m3u8")
                return r.status_code == 200 and r.text.count("#EXT-X-STREAM-INF") == 2
            kiln.wait_for(playable, timeout=40, what="ABR master playlist")
        yield kiln, base
    finally:
        for pub in pubs:
            pub.stop()


def _stream(kiln: KilnProcess, name: str) -> dict[str, Any]:
    r = kiln.api.get(f"{APP}/streams/{name}")
    assert r.status_code == 200, r.text
    return r.json()["response"]


def _output(stream: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in stream["outputs"] if o["name"] == name)


def test_api_describes_the_encoded_renditions(transcoding: tuple[KilnProcess, str]) -> None:
    kiln, _ = transcoding
    tracks = _output(_stream(kiln, "big"), "big")["tracks"]
    videos = {t["name"]: t["video"] for t in tracks if t["type"] == "Video"}
    audios = {t["name"]: t["audio"] for t in tracks if t["type"] == "Audio"}
    assert (videos["v360"]["width"], videos["v360"]["height"], videos["v360"]["bypass"]) == (640, 360, False)
    assert (videos["v180"]["width"], videos["v180"]["height"]) == (320, 180)
    assert videos["v360"]["codec"] == "H264" and videos["v360"]["bitrateConf"] == 600 * 1024
    assert videos["v360"]["keyFrameIntervalConf"] == 30
    assert (audios["aac"]["codec"], audios["aac"]["samplerate"], audios["aac"]["channel"]) == ("AAC", 48000, 2)
    assert audios["opus"]["codec"] == "OPUS" and audios["opus"]["samplerate"] == 48000
    assert not [t for t in tracks if "unavailable" in t], tracks
    # measured values follow: the encoders really produce
    kiln.wait_for(lambda: all(t["video"]["framerateAvg"] > 20 for t in _output(_stream(kiln, "big"), "big")["tracks"]
                              if t["type"] == "Video"), timeout=20, what="measured frame rates")


def _uris(master: str, base: str) -> list[str]:
    lines = [ln for ln in master.splitlines() if ln and not ln.startswith("#")]
    origin = base.split("/app/")[0]
    return [u if u.startswith("http") else f"{origin}{u}" if u.startswith("/") else f"{base}/{u}" for u in lines]


def test_ffprobe_sees_each_rendition_size_in_the_abr_master(transcoding: tuple[KilnProcess, str]) -> None:
    _kiln, base = transcoding
    master = httpx.get(f"{base}/abr.m3u8", timeout=15).text
    assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x360", "320x180"]
    assert master.count('TYPE=AUDIO,GROUP-ID="aac"') == 1 and 'CODECS="avc1.' in master
    probe = ffprobe_json(f"{base}/abr.m3u8", timeout=40)
    sizes = {(s["width"], s["height"]) for s in probe["streams"] if s["codec_type"] == "video"}
    assert sizes == {(640, 360), (320, 180)}
    assert {s["codec_name"] for s in probe["streams"] if s["codec_type"] == "audio"} == {"aac"}
    chunk_sizes = []
    for uri in _uris(master, base):
        streams = ffprobe_json(uri, timeout=40)["streams"]
        chunk_sizes += [(s["codec_name"], s["width"], s["height"]) for s in streams if s["codec_type"] == "video"]
    assert chunk_sizes == [("h264", 640, 360), ("h264", 320, 180)]


def test_hlsjs_plays_the_abr_master(transcoding: tuple[KilnProcess, str], chromium_player: Any) -> None:
    _kiln, base = transcoding
    report = chromium_player(f"{base}/abr.m3u8", timeout=45)
    assert report["played"], report
    assert not [e for e in report["errors"] if str(e).startswith("fatal:")], report["errors"]


def test_bypass_if_match_relays_a_matching_input_and_encodes_the_other(
        transcoding: tuple[KilnProcess, str], test_flv: Path, peer_dir: Path) -> None:
    kiln, _ = transcoding
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/tiny", test_flv, loop=True, log_dir=peer_dir)
    try:
        def started() -> bool:
            r = kiln.api.get(f"{APP}/streams/tiny")
            return r.status_code == 200 and any(o["name"] == "tiny_small" for o in r.json()["response"]["outputs"])
        kiln.wait_for(started, timeout=20, what="tiny started")
        tiny = next(t for t in _output(_stream(kiln, "tiny"), "tiny_small")["tracks"] if t["type"] == "Video")
        big = next(t for t in _output(_stream(kiln, "big"), "big_small")["tracks"] if t["type"] == "Video")
        assert tiny["video"]["bypass"] is True and (tiny["video"]["width"], tiny["video"]["height"]) == (320, 180)
        assert big["video"]["bypass"] is False and (big["video"]["width"], big["video"]["height"]) == (320, 180)
    finally:
        pub.stop()


def test_api_lists_image_encodes_as_video_tracks(transcoding: tuple[KilnProcess, str]) -> None:
    kiln, _ = transcoding
    tracks = _output(_stream(kiln, "big"), "big_small")["tracks"]
    assert [t["type"] for t in tracks] == ["Video", "Audio", "Video", "Data"]
    thumb = tracks[2]
    assert thumb["name"] == "thumb" and "unavailable" not in thumb, thumb
    assert (thumb["video"]["codec"], thumb["video"]["bypass"]) == ("JPEG", False)
    assert (thumb["video"]["width"], thumb["video"]["height"], thumb["video"]["framerateConf"]) == (160, 90, 1.0)
    # measured values follow: stills are really made, about one a second
    kiln.wait_for(lambda: _output(_stream(kiln, "big"), "big_small")["tracks"][2]["video"]["bitrateAvg"] > 0,
                  timeout=20, what="measured thumbnail bitrate")
