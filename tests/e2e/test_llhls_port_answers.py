"""The LL-HLS port answers a user who asks it for the wrong thing (issue 20 item 7): a thumbnail or an HLS v3
playlist of a live stream is a 404 that says where to go, not ``401 session is required``; LL-HLS files
themselves keep OME's session rule."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp

pytestmark = pytest.mark.e2e


def test_thumbnail_and_hls_v3_on_the_llhls_port_say_why(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    port = kiln.ports.llhls
    base = f"http://127.0.0.1:{port}/app/live"
    try:
        with httpx.Client(timeout=15) as http:
            master = kiln.wait_for(lambda: (r := http.get(f"{base}/llhls.m3u8")).status_code == 200
                                   and "#EXT-X-STREAM-INF" in r.text and r.text, timeout=30, what="master playlist")

            thumb = http.get(f"{base}/thumb.jpg")
            assert (thumb.status_code, thumb.text) == (
                404, f"thumbnails are served on port {kiln.ports.thumbnail}, not on the LL-HLS port")
            hls_v3 = ("HLS v3 (ts:) is not enabled for this application [default/app]; "
                      "play LL-HLS instead: /app/live/llhls.m3u8")
            for path in ("ts:playlist.m3u8", "playlist.m3u8?format=ts"):
                r = http.get(f"{base}/{path}")
                assert (r.status_code, r.text) == (404, hls_v3), path
            r = http.get(f"{base}/nothing.m4s")
            assert r.status_code == 404 and r.text.startswith("'nothing.m4s' is not an LL-HLS file")

            chunklist = next(ln for ln in master.splitlines() if ln and not ln.startswith("#"))
            assert "?session=" in chunklist
            bare = http.get(f"http://127.0.0.1:{port}{chunklist.split('?')[0]}")
            assert (bare.status_code, bare.text) == (401, "session is required")
            assert http.get(f"http://127.0.0.1:{port}{chunklist}").status_code == 200
    finally:
        pub.stop()
