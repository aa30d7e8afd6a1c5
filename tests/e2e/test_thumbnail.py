"""Thumbnails as a player page sees them: image encodes of an output profile served on the Thumbnail port as
``/app/<output stream>/thumb.jpg|png|webp``, decodable, at the configured size, refreshed while the stream is live,
with CORS; 404 where there is no stream, no image encode or no such file."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e

# the input is 320x180: 160x90 proves a resize, Width alone proves the aspect ratio is kept (128 -> 128x72)
PROFILES = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
                <Image><Codec>jpeg</Codec><Width>160</Width><Height>90</Height><Framerate>2</Framerate></Image>
                <Image><Codec>png</Codec><Width>128</Width><Framerate>1</Framerate></Image>
                <Image><Codec>webp</Codec><Framerate>1</Framerate></Image>
              </Encodes>
            </OutputProfile>
            <OutputProfile>
              <Name>noimage</Name>
              <OutputStreamName>${OriginStreamName}_plain</OutputStreamName>
              <Encodes><Video><Name>v</Name><Bypass>true</Bypass></Video></Encodes>
            </OutputProfile>"""


def _decode(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0))


@pytest.fixture
def thumbs(kiln_factory: Callable[..., KilnProcess], test_flv: Path,
           peer_dir: Path) -> Iterator[tuple[KilnProcess, httpx.Client, str]]:
    kiln = kiln_factory(profiles=PROFILES)
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{kiln.ports.thumbnail}/app"
    try:
        with httpx.Client(timeout=10) as http:
            kiln.wait_for(lambda: http.get(f"{base}/cam/thumb.jpg").status_code == 200, timeout=30,
                          what="the first thumbnail")
            yield kiln, http, base
    finally:
        pub.stop()


def test_jpeg_thumbnail_has_its_size_decodes_and_refreshes(thumbs: tuple[KilnProcess, httpx.Client, str]) -> None:
    kiln, http, base = thumbs
    first = http.get(f"{base}/cam/thumb.jpg", headers={"Origin": "http://player.example"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/jpeg"
    assert first.headers["access-control-allow-origin"] == "*"
    assert first.content[:2] == b"\xff\xd8"
    frame = _decode(first.content)
    assert (frame.width, frame.height) == (160, 90)

    # testsrc2 moves every frame: a later image differs (the encode makes 2 a second; only the latest is kept)
    newer = kiln.wait_for(lambda: (r := http.get(f"{base}/cam/thumb.jpg")).content != first.content and r,
                          timeout=10, what="a newer thumbnail")
    assert newer.status_code == 200
    assert (_decode(newer.content).width, _decode(newer.content).height) == (160, 90)

    head = http.head(f"{base}/cam/thumb.jpg")
    assert head.status_code == 200 and head.headers["content-type"] == "image/jpeg"
    preflight = http.options(f"{base}/cam/thumb.jpg", headers={"Origin": "http://player.example",
                                                               "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"


def test_png_and_webp_thumbnails(thumbs: tuple[KilnProcess, httpx.Client, str]) -> None:
    kiln, http, base = thumbs
    for name, content_type, magic, size in (("thumb.png", "image/png", b"\x89PNG", (128, 72)),
                                            ("thumb.webp", "image/webp", b"RIFF", (320, 180))):
        r = kiln.wait_for(lambda n=name: (resp := http.get(f"{base}/cam/{n}")).status_code == 200 and resp,
                          timeout=10, what=name)
        assert r.headers["content-type"] == content_type
        assert r.content.startswith(magic)
        frame = _decode(r.content)
        assert (frame.width, frame.height) == size, name


def test_unknown_stream_file_or_image_encode_is_404(thumbs: tuple[KilnProcess, httpx.Client, str]) -> None:
    kiln, http, base = thumbs
    missing = http.get(f"{base}/nope/thumb.jpg", headers={"Origin": "http://player.example"})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    assert http.get(f"{base}/cam_plain/thumb.jpg").status_code == 404   # an output without image encodes
    assert http.get(f"{base}/cam/thumb.gif").status_code == 404
    assert http.get(f"{base}/cam/llhls.m3u8").status_code == 404
    assert http.get(f"http://127.0.0.1:{kiln.ports.thumbnail}/other/cam/thumb.jpg").status_code == 404


def test_thumbnail_goes_away_with_the_stream(kiln_factory: Callable[..., KilnProcess], test_flv: Path,
                                             peer_dir: Path) -> None:
    kiln = kiln_factory(profiles=PROFILES)
    url = f"http://127.0.0.1:{kiln.ports.thumbnail}/app/cam/thumb.jpg"
    assert httpx.get(url).status_code == 404  # no stream yet
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: httpx.get(url).status_code == 200, timeout=30, what="the thumbnail")
    finally:
        pub.stop()
    deadline = time.monotonic() + 15
    while httpx.get(url).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(url).status_code == 404
