"""AudioMap as a player sees it: an SRT or MPEG-TS input with two audio tracks (two tones) becomes an LL-HLS
master with one audio rendition per track, labelled by the provider's AudioMap, and each rendition's chunklist
plays its own tone."""

from __future__ import annotations

import io
import re
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.e2e.test_scheduled_channels import TV, TV_APP
from tests.peers.ffmpeg import FFMPEG, publish_mpegts_udp, publish_srt
from tests.peers.process import run_checked

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
TONES = {"English": 440, "Korean": 2000}
AUDIO_MAP = ("<AudioMap><Item><Name>English</Name><Language>en</Language>"
             "<Characteristics>public.accessibility.describes-video</Characteristics></Item>"
             "<Item><Name>Korean</Name><Language>ko</Language></Item></AudioMap>")


def two_tone_ts(path: Path) -> Path:
    """Four seconds of 320x180 video and two AAC tracks: 440 Hz first (ISO 639 "eng"), 2000 Hz second."""
    run_checked([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                 "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
                 *(a for hz in TONES.values() for a in ("-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=48000")),
                 "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", "4", "-c:v", "libx264", "-preset", "veryfast",
                 "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0", "-c:a", "aac", "-b:a", "96k", "-ac", "2",
                 "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=kor", "-f", "mpegts", path],
                timeout=120)  # fmt: skip
    return path


def attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}


def dominant_hz(media: bytes) -> float:
    """The frequency of a pure tone in an fMP4 init+segment, from the zero crossings of its first channel."""
    samples = array("f")
    rate = 0
    with av.open(io.BytesIO(media), "r") as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])  # fltp: plane 0 is the left channel
    body = samples[len(samples) // 4:]  # past the decoder's priming
    crossings = sum(1 for a, b in zip(body, body[1:], strict=False) if (a < 0) != (b < 0))
    return crossings / 2 / (len(body) / rate)


def rendition_tone(http: httpx.Client, uri: str) -> float:
    """The tone of the newest complete segment of one audio rendition (its chunklist at ``uri``)."""
    text = http.get(uri).text
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    segments = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert init is not None and segments, text
    media = http.get(urljoin(uri, init.group(1))).content + http.get(urljoin(uri, segments[-1])).content
    return dominant_hz(media)


def check_renditions(kiln: KilnProcess, base: str) -> None:
    with httpx.Client(timeout=15) as http:
        def master() -> str | None:
            r = http.get(f"{base}/llhls.m3u8")
            return r.text if r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text else None
        text = kiln.wait_for(master, timeout=30, what="master playlist")
        media = [attributes(line) for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
        assert [(m["NAME"], m.get("LANGUAGE"), m.get("CHARACTERISTICS"), m["DEFAULT"]) for m in media] == [
            ("English", "en", "public.accessibility.describes-video", "YES"), ("Korean", "ko", None, "NO")]
        assert len({m["GROUP-ID"] for m in media}) == 1 and len({m["URI"] for m in media}) == 2
        for m in media:
            uri = m["URI"] if m["URI"].startswith("http") else f"http://127.0.0.1:{kiln.ports.llhls}{m['URI']}"
            hz = rendition_tone(http, uri)
            assert abs(hz - TONES[m["NAME"]]) < TONES[m["NAME"]] * 0.05, (m["NAME"], hz)


def output_audio(kiln: KilnProcess, name: str) -> list[dict[str, Any]]:
    info = kiln.api.get(f"{APP}/streams/{name}").json()["response"]
    return [t for t in info["outputs"][0]["tracks"] if t["type"] == "Audio"]


def test_srt_audio_tracks_get_the_maps_labels_and_each_rendition_plays_its_own(
        kiln_factory: Any, tmp_path: Path, peer_dir: Path) -> None:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace("<SRT/>", f"<SRT>{AUDIO_MAP}</SRT>", 1)
    kiln = kiln_factory(xml=xml, ports=ports)
    url = f"srt://127.0.0.1:{ports.srt}?mode=caller&latency=200000&pkt_size=1316&streamid=default/app/multi"
    pub = publish_srt(url, two_tone_ts(tmp_path / "two.ts"), loop=True, log_dir=peer_dir, extra_args=["-map", "0"])
    try:
        check_renditions(kiln, f"http://127.0.0.1:{ports.llhls}/app/multi")
        # OME's track JSON names a track by its variant only (no language field): both are "bypass_audio"
        audios = output_audio(kiln, "multi")
        assert [(t["name"], t["audio"]["codec"]) for t in audios] == [("bypass_audio", "AAC")] * 2
        assert len({t["id"] for t in audios}) == 2
        inputs = kiln.api.get(f"{APP}/streams/multi").json()["response"]["input"]["tracks"]
        assert len({t["id"] for t in inputs}) == len(inputs)  # the data track's id is not an audio track's
    finally:
        pub.stop()


def test_mpegts_audio_tracks_get_the_maps_labels(kiln_factory: Any, tmp_path: Path, peer_dir: Path) -> None:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace("</StreamMap>", f"</StreamMap>{AUDIO_MAP}", 1)
    kiln = kiln_factory(xml=xml, ports=ports)
    pub = publish_mpegts_udp("127.0.0.1", ports.mpegts, two_tone_ts(tmp_path / "two.ts"), loop=True,
                             log_dir=peer_dir, extra_args=["-map", "0"])
    try:
        check_renditions(kiln, f"http://127.0.0.1:{ports.llhls}/app/stream_{ports.mpegts}")
    finally:
        pub.stop()


def test_without_a_map_the_master_keeps_one_unlabelled_audio_rendition(
        kiln: KilnProcess, tmp_path: Path, peer_dir: Path) -> None:
    url = f"srt://127.0.0.1:{kiln.ports.srt}?mode=caller&latency=200000&pkt_size=1316&streamid=default/app/plain"
    pub = publish_srt(url, two_tone_ts(tmp_path / "two.ts"), loop=True, log_dir=peer_dir, extra_args=["-map", "0"])
    try:
        with httpx.Client(timeout=15) as http:
            def master() -> str | None:
                r = http.get(f"http://127.0.0.1:{kiln.ports.llhls}/app/plain/llhls.m3u8")
                return r.text if r.status_code == 200 else None
            text = kiln.wait_for(master, timeout=30, what="master playlist")
        media = [attributes(line) for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
        assert [(m["NAME"], m.get("LANGUAGE")) for m in media] == [("bypass_audio", None)]
        assert len(output_audio(kiln, "plain")) == 1
        # the stream started once both audio tracks were described: its data track took a free id, not the
        # second audio track's (it did when the stream started on the first audio track alone)
        inputs = kiln.api.get(f"{APP}/streams/plain").json()["response"]["input"]["tracks"]
        assert sorted((t["id"], t["type"]) for t in inputs) == [(0, "Video"), (1, "Audio"), (2, "Audio"), (3, "Data")]
    finally:
        pub.stop()


def test_a_scheduled_channel_labels_its_files_audio_tracks_and_writes_the_map_back(
        kiln_factory: Any, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    run_checked([FFMPEG, "-v", "error", "-y", "-i", two_tone_ts(tmp_path / "two.ts"), "-map", "0", "-c", "copy",
                 media / "two.mp4"], timeout=60)
    workdir = tmp_path / "kiln"
    (workdir / "schedules").mkdir(parents=True)
    kiln = kiln_factory(workdir=workdir, extra_apps=TV_APP.format(media=media))
    audio_map = [{"name": "English", "language": "en", "characteristics": "public.accessibility.describes-video"},
                 {"name": "Korean", "language": "ko", "characteristics": ""}]
    body = {"stream": {"name": "ch", "audioMap": audio_map}, "fallbackProgram": {"items": [{"url": "file://two.mp4"}]}}
    assert kiln.api.post(TV, json=body).json() == {"message": "Created", "statusCode": 201}
    assert kiln.api.get(f"{TV}/ch").json()["response"]["stream"]["audioMap"] == audio_map
    sch = (workdir / "schedules" / "ch.sch").read_text()
    assert "<AudioMap>" in sch and "<Name>Korean</Name>" in sch and "<Language>ko</Language>" in sch
    check_renditions(kiln, f"http://127.0.0.1:{kiln.ports.llhls}/tv/ch")
    bad = {"stream": {"name": "x", "audioMap": {"name": "English"}}, "fallbackProgram": body["fallbackProgram"]}
    assert kiln.api.post(TV, json=bad).json() == {"message": "[HTTP] audioMap must be an array (400)",
                                                    "statusCode": 400}
