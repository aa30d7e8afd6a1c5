"""A stream named with non-ASCII and a space, as a user meets it (issue 20 item 1): published over RTMP or SRT,
listed by its name, and reachable through its percent-encoded path for info, stats, sendEvent and LL-HLS."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp, publish_srt
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
NAME = "caméra 1"
ENCODED = quote(NAME, safe="")      # cam%C3%A9ra%201


def _publish(kiln: KilnProcess, protocol: str, test_flv: Path, test_ts: Path, peer_dir: Path) -> Peer:
    if protocol == "rtmp":  # server + stream key, as OBS sends it; ffmpeg's URL parser would stop at the space
        return publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app", test_flv, loop=True, log_dir=peer_dir,
                            extra_args=["-rtmp_playpath", NAME])
    streamid = quote(f"default/app/{NAME}", safe="")   # OME percent-decodes the streamid (media-spec §1.2)
    url = (f"srt://127.0.0.1:{kiln.ports.srt}?mode=caller&latency=200000&pkt_size=1316&streamid={streamid}")
    return publish_srt(url, test_ts, loop=True, log_dir=peer_dir)


def _media_since(http: httpx.Client, chunklist_url: str, seen: set[str]) -> bytes:
    """The parts and segments the chunklist lists that were not fetched before."""
    text = http.get(chunklist_url).text
    data = b""
    for uri in re.findall(r'URI="([^"]+)"', text) + [ln for ln in text.splitlines() if ln and not ln.startswith("#")]:
        if uri in seen or "_llhls.m4s" not in uri or uri.startswith("init_"):
            continue
        seen.add(uri)
        data += http.get(f"{chunklist_url.rsplit('/', 1)[0]}/{uri}").content
    return data


@pytest.mark.parametrize("protocol", ["rtmp", "srt"])
def test_info_stats_send_event_and_llhls_through_the_encoded_path(kiln: KilnProcess, test_flv: Path, test_ts: Path,
                                                                 peer_dir: Path, protocol: str) -> None:
    pub = _publish(kiln, protocol, test_flv, test_ts, peer_dir)
    try:
        kiln.wait_for(lambda: kiln.api.get(f"{APP}/streams").json()["response"] == [NAME], timeout=30,
                      what=f"{NAME!r} listed")

        info = kiln.api.get(f"{APP}/streams/{ENCODED}")
        assert info.status_code == 200, info.text
        assert info.json()["response"]["name"] == NAME
        assert info.json()["response"]["input"]["sourceType"] == {"rtmp": "Rtmp", "srt": "SRT"}[protocol]

        stats_path = f"/v1/stats/current/vhosts/default/apps/app/streams/{ENCODED}"
        first = kiln.wait_for(lambda: (r := kiln.api.get(stats_path)).status_code == 200
                              and r.json()["response"]["totalBytesIn"], what="bytes counted under the encoded path")
        kiln.wait_for(lambda: kiln.api.get(stats_path).json()["response"]["totalBytesIn"] > first,
                      what="the byte counter growing")

        missing = kiln.api.get(f"{APP}/streams/cam%C3%A9ra%202")
        assert missing.status_code == 404
        assert missing.json()["message"] == "[HTTP] Could not find the stream: [default/#default#app/caméra 2] (404)"

        base = f"http://127.0.0.1:{kiln.ports.llhls}/app/{ENCODED}"
        with httpx.Client(timeout=15) as http:
            master = kiln.wait_for(lambda: (r := http.get(f"{base}/llhls.m3u8")).status_code == 200
                                   and "#EXT-X-STREAM-INF" in r.text and r.text, timeout=30, what="master playlist")
            video_uri = next(ln for ln in master.splitlines() if ln and not ln.startswith("#"))
            assert video_uri.startswith(f"/app/{ENCODED}/chunklist_"), video_uri  # names in URIs are encoded
            video = f"http://127.0.0.1:{kiln.ports.llhls}{video_uri}"
            seen: set[str] = set()
            _media_since(http, video, seen)

            r = kiln.api.post(f"{APP}/streams/{ENCODED}:sendEvent", json={
                "eventFormat": "id3v2", "eventType": "video",
                "events": [{"frameType": "TXXX", "info": "scene", "data": "encoded-7"}]})
            assert r.json() == {"message": "OK", "statusCode": 200}
            found = kiln.wait_for(lambda: b"encoded-7" in (blob := _media_since(http, video, seen)) and blob,
                                  timeout=15, what="the event as emsg in a new part")
            assert b"emsg" in found
    finally:
        pub.stop()
    kiln.wait_for(lambda: kiln.api.get(f"{APP}/streams").json()["response"] == [], what="stream gone")
