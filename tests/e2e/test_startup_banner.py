"""What `kiln serve` tells a new user when it starts: the token (generated, then reused), every
listener, URL forms that really publish and play, the data dir; no misleading uvicorn warning."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import TOKEN, KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp, publish_srt

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
WEBSOCKET_WARNING = "No supported WebSocket library detected"


def messages(log: str) -> list[str]:
    """The message part of each line Kiln logged (``<date> <time> <LEVEL> <logger> <message>``)."""
    return [m.group(1) for line in log.splitlines() if (m := re.match(r"\S+ \S+ (?:INFO|WARNING) \S+ (.*)$", line))]


def ask_for_a_websocket(port: int) -> int:
    """What a player probing for WebSocket signalling sends; the answer's status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /app/s/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        return int(s.recv(4096).split(b" ")[1])


def test_the_banner_says_where_to_publish_and_play_and_whether_the_token_is_new(
        kiln_factory: Callable[..., KilnProcess], test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace(f"<Managers><API><AccessToken>{TOKEN}</AccessToken>"
                                                          "</API></Managers>", "")
    k = kiln_factory(xml=xml, ports=ports)
    token_file = (k.data_dir / "access_token").resolve()
    first = messages(k.log_path.read_text())
    h = "127.0.0.1"
    banner = [
        f"api access token generated file={token_file} (use: curl -u \"$(cat {token_file})\" ...)",
        f"listening api={h}:{ports.api} rtmp={h}:{ports.rtmp} srt={h}:{ports.srt}/udp mpegts={h}:{ports.mpegts}/udp "
        f"llhls={h}:{ports.llhls} thumbnail={h}:{ports.thumbnail} ovt={h}:{ports.ovt}",
        "applications default/app",
        f"publish rtmp=rtmp://{h}:{ports.rtmp}/APP/STREAM",
        f"publish srt=srt://{h}:{ports.srt}?streamid=srt%3A%2F%2F{h}%3A{ports.srt}%2FAPP%2FSTREAM",
        f"publish mpegts=udp://{h}:{ports.mpegts} (stream named by the app's MPEGTS StreamMap)",
        f"play llhls=http://{h}:{ports.llhls}/APP/STREAM/llhls.m3u8 (or FILENAME.m3u8 of an OutputProfile Playlist)",
        f"play thumbnail=http://{h}:{ports.thumbnail}/APP/STREAM/thumb.jpg (needs an Image encode)",
        f"play ovt=ovt://{h}:{ports.ovt}/APP/STREAM (edges pull it; apps with <OVT/>)",
        f"console http://{h}:{ports.api}/console/ (log in with the access token)",
        f"data dir={k.data_dir.resolve()}",
        f"kiln ready api={h}:{ports.api} version={k.api.get('/v1/version').json()['response']['version']}",
    ]
    start = first.index(banner[0])
    assert first[start:start + len(banner)] == banner
    assert first.count(banner[0]) == 1

    # the URL forms work as printed, with APP and STREAM filled in
    urls = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in banner if line.startswith(("publish", "play"))}
    fill = {"APP": "app", "STREAM": "viartmp"}
    rtmp = publish_rtmp(re.sub("APP|STREAM", lambda m: fill[m.group(0)], urls["publish rtmp"]), test_flv,
                        loop=True, log_dir=peer_dir)
    srt_url = re.sub("APP|STREAM", lambda m: {"APP": "app", "STREAM": "viasrt"}[m.group(0)], urls["publish srt"])
    srt = publish_srt(srt_url.replace("?", "?mode=caller&latency=200000&pkt_size=1316&"), test_flv, loop=True,
                      log_dir=peer_dir)
    try:
        k.wait_for(lambda: {"viartmp", "viasrt"} <= set(k.api.get(f"{APP}/streams").json()["response"]),
                   timeout=30, what="both published streams")
        master = urls["play llhls"].split(" ")[0].replace("APP", "app").replace("STREAM", "viartmp")
        k.wait_for(lambda: (r := httpx.get(master, timeout=5)).status_code == 200 and "#EXTM3U" in r.text,
                   timeout=30, what="the LL-HLS master at the printed URL")
    finally:
        rtmp.stop()
        srt.stop()

    # a WebSocket request is answered as plain HTTP, and the log does not send the user to pip
    assert ask_for_a_websocket(ports.llhls) in (400, 401, 404)
    assert ask_for_a_websocket(ports.api) in (401, 404)
    plain = "http upgrade request answered as plain HTTP (this port serves no WebSocket)"

    def both_logged() -> str | None:  # written by Kiln's log thread, after the answers
        text = k.log_text()
        return text if messages(text).count(plain) >= 2 else None

    log = k.wait_for(both_logged, what="both upgrade requests logged")
    assert WEBSOCKET_WARNING not in log and "Unsupported upgrade request" not in log
    assert messages(log).count(plain) == 2

    # the second start reuses the file, and says so
    before = len(k.log_path.read_text())
    k.stop()
    k.start()
    second = messages(k.log_path.read_text()[before:])
    assert f"api access token reused file={token_file} (use: curl -u \"$(cat {token_file})\" ...)" in second
    assert not any("api access token generated" in m for m in second)
    assert k.api.get("/v1/vhosts").status_code == 200  # the same token still works
