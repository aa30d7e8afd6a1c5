"""SRT ingest as a user sees it: ffmpeg callers create streams, refused callers are told why, LL-HLS plays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import FFMPEG, QUIET, ffprobe_json, publish_srt, streams_by_type
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
PASSPHRASE = "0123456789abc"


def stream_names(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def srt_url(port: int, streamid: str, **params: str) -> str:
    """An ffmpeg caller URL; ffmpeg sends the streamid value as written (no percent-decoding)."""
    query = "&".join(["mode=caller", "latency=200000", "pkt_size=1316", *(f"{k}={v}" for k, v in params.items()),
                      f"streamid={streamid}"])
    return f"srt://127.0.0.1:{port}?{query}"


def publish(k: KilnProcess, streamid: str, media: Path, peer_dir: Path, *, loop: bool = True, **params: str) -> Peer:
    return publish_srt(srt_url(k.ports.srt, streamid, **params), media, loop=loop, log_dir=peer_dir)


def bytes_in(k: KilnProcess, name: str) -> int:
    r = k.api.get(f"/v1/stats/current{APP[3:]}/streams/{name}")
    return r.json()["response"]["totalBytesIn"] if r.status_code == 200 else 0


def described(k: KilnProcess, name: str) -> dict[str, Any] | None:
    r = k.api.get(f"{APP}/streams/{name}")
    if r.status_code != 200:
        return None
    info = r.json()["response"]
    video = next((t["video"] for t in info["input"]["tracks"] if t["type"] == "Video"), None)
    return info if video and video.get("width") else None


def test_two_callers_with_both_streamid_forms(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    port = kiln.ports.srt
    ome_style = quote(f"srt://127.0.0.1:{port}/app/s1", safe="")  # srt%3A%2F%2F127.0.0.1%3AP%2Fapp%2Fs1
    first = publish(kiln, ome_style, test_ts, peer_dir)
    second = publish(kiln, "#!::u=default/app/s2,m=publish", test_ts, peer_dir)
    try:
        kiln.wait_for(lambda: sorted(stream_names(kiln)) == ["s1", "s2"], what="both SRT streams listed")
        info = kiln.wait_for(lambda: described(kiln, "s1"), what="s1 tracks described")
        assert info["input"]["sourceType"] == "SRT"
        tracks = {t["type"]: t for t in info["input"]["tracks"]}
        video, audio = tracks["Video"]["video"], tracks["Audio"]["audio"]
        assert (video["codec"], video["width"], video["height"]) == ("H264", 320, 180)
        assert (audio["codec"], audio["samplerate"], audio["channel"]) == ("AAC", 48000, 2)
        assert [o["name"] for o in info["outputs"]] == ["s1"]
        assert kiln.wait_for(lambda: described(kiln, "s2"), what="s2 described")["input"]["sourceType"] == "SRT"

        first_count = kiln.wait_for(lambda: bytes_in(kiln, "s1"), what="s1 bytes counted")
        kiln.wait_for(lambda: bytes_in(kiln, "s1") > first_count, what="s1 byte counter growing")
        kiln.wait_for(lambda: bytes_in(kiln, "s2") > 0, what="s2 bytes counted")
        first.stop()
        kiln.wait_for(lambda: stream_names(kiln) == ["s2"], what="s1 gone when its caller stops")
        assert second.alive
        assert kiln.api.get(f"{APP}/streams/s1").status_code == 404
    finally:
        first.stop()
        second.stop()
    kiln.wait_for(lambda: stream_names(kiln) == [], what="s2 gone when its caller stops")
    kiln.wait_for_log("srt publish accepted vhost=default app=app stream=s1", "stream=s1 reason=disconnected")


def test_refused_callers_get_a_logged_reason(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    cases = {
        "default/nope/s": "application not found: default/nope",
        "#!::r=app/s3,m=publish": "does not read r=",  # OME takes the path from u= only
        "default/app": "got 2 components",
    }
    refused = {sid: publish(kiln, sid, test_ts, peer_dir, loop=False) for sid in cases}
    for sid, peer in refused.items():
        kiln.wait_for(lambda p=peer: not p.alive, what=f"caller {sid!r} refused")
        assert peer.returncode != 0
    log = kiln.wait_for_log(f"srt caller rejected port={kiln.ports.srt}", *(cases[sid] for sid in refused))
    for sid in refused:
        assert cases[sid] in log, sid
    assert stream_names(kiln) == []


def test_passphrase_protected_listener(kiln_factory: Callable[..., KilnProcess], test_ts: Path,
                                       peer_dir: Path, tmp_path: Path) -> None:
    ports = Ports()
    plain = f"<SRT><Port>{ports.srt}</Port></SRT>"
    xml = server_xml(ports, tmp_path / "records")
    assert plain in xml
    options = (f"<Options><Option><Key>SRTO_PASSPHRASE</Key><Value>{PASSPHRASE}</Value></Option>"
               f"<Option><Key>SRTO_LATENCY</Key><Value>200</Value></Option></Options>")
    kiln = kiln_factory(xml=xml.replace(plain, f"<SRT><Port>{ports.srt}</Port>{options}</SRT>"), ports=ports)

    wrong = publish(kiln, "default/app/locked", test_ts, peer_dir, loop=False, passphrase="wrongphrase99")
    kiln.wait_for(lambda: not wrong.alive, timeout=30, what="wrong passphrase refused")
    assert wrong.returncode != 0
    assert stream_names(kiln) == []
    right = publish(kiln, "default/app/locked", test_ts, peer_dir, passphrase=PASSPHRASE)
    try:
        info = kiln.wait_for(lambda: described(kiln, "locked"), what="stream with the right passphrase")
        assert info["input"]["sourceType"] == "SRT"
    finally:
        right.stop()
    kiln.wait_for(lambda: stream_names(kiln) == [], what="stream gone")


def test_srt_stream_plays_through_llhls(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    pub = publish(kiln, "default/app/hls", test_ts, peer_dir)
    base = f"http://127.0.0.1:{kiln.ports.llhls}/app/hls"
    try:
        with httpx.Client(timeout=15) as http:
            def playable() -> bool:
                r = http.get(f"{base}/llhls.m3u8")
                return r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text

            kiln.wait_for(playable, timeout=30, what="master playlist")
        kinds = streams_by_type(ffprobe_json(f"{base}/llhls.m3u8", timeout=40))
        assert kinds["video"]["codec_name"] == "h264"
        assert (kinds["video"]["width"], kinds["video"]["height"]) == (320, 180)
        assert kinds["audio"]["codec_name"] == "aac" and kinds["audio"]["sample_rate"] == "48000"
    finally:
        pub.stop()


def test_delete_drops_the_srt_caller(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    pub = publish(kiln, "default/app/gone", test_ts, peer_dir)
    try:
        kiln.wait_for(lambda: "gone" in stream_names(kiln), what="stream listed")
        assert kiln.api.delete(f"{APP}/streams/gone").json() == {"message": "OK", "statusCode": 200}
        assert "gone" not in stream_names(kiln)
        kiln.wait_for(lambda: not pub.alive, what="the ffmpeg caller exits")
    finally:
        pub.stop()


def test_duplicate_name_is_refused_in_the_handshake(kiln: KilnProcess, test_ts: Path, peer_dir: Path) -> None:
    first = publish(kiln, "default/app/dup", test_ts, peer_dir)
    try:
        kiln.wait_for(lambda: "dup" in stream_names(kiln), what="first publisher's stream")
        created = kiln.api.get(f"{APP}/streams/dup").json()["response"]["input"]["createdTime"]
        second = publish(kiln, "default/app/dup", test_ts, peer_dir)
        kiln.wait_for(lambda: not second.alive, what="duplicate caller refused")
        kiln.wait_for_log("reason=Stream already exists: [default/app/dup]")
        assert first.alive
        assert kiln.api.get(f"{APP}/streams/dup").json()["response"]["input"]["createdTime"] == created
    finally:
        first.stop()


def test_a_caller_sending_non_ts_bytes_is_dropped_and_others_go_on(kiln: KilnProcess, test_ts: Path,
                                                                   peer_dir: Path) -> None:
    good = publish(kiln, "default/app/good", test_ts, peer_dir)
    noise = [FFMPEG, *QUIET, "-re", "-f", "lavfi", "-i", "anoisesrc=r=48000:a=0.5", "-f", "s16le",
             srt_url(kiln.ports.srt, "default/app/noise")]  # raw PCM over SRT: no 0x47 sync bytes
    bad = Peer.spawn("ffmpeg-srt-noise", noise, peer_dir)
    try:
        kiln.wait_for(lambda: described(kiln, "good"), what="the good caller's stream described")
        kiln.wait_for(lambda: not bad.alive, what="the caller sending noise is disconnected")
        # the listener closes the socket, then logs why: ffmpeg may exit before the line is written
        kiln.wait_for(lambda: any("srt caller disconnected" in x and "default/app/noise" in x
                                  for x in kiln.log_text().splitlines()), what="the noise caller's drop logged")
        log = kiln.log_path.read_text()
        line = next((x for x in log.splitlines() if "srt caller disconnected" in x and "default/app/noise" in x), "")
        assert "reason=input is not MPEG-TS" in line, line
        assert "Traceback" not in log
        assert stream_names(kiln) == ["good"]
        counted = bytes_in(kiln, "good")
        kiln.wait_for(lambda: bytes_in(kiln, "good") > counted, what="the good stream still flowing")
        assert good.alive
    finally:
        bad.stop()
        good.stop()
    kiln.wait_for(lambda: stream_names(kiln) == [], what="good gone when its caller stops")
