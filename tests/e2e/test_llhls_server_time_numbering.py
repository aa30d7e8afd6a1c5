"""``Publishers/LLHLS/ServerTimeBasedSegmentNumbering`` (OME): segment numbers start at the server's clock in
segment durations (epoch_ms / segment_ms), not at 0, in every rendition's chunklist."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import Ports, server_xml
from tests.e2e.test_llhls import chunklists
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

SEGMENT_S = 2  # kiln_process.server_xml's LLHLS SegmentDuration


def test_segment_numbers_follow_the_server_clock(kiln_factory: Any, tmp_path: Path, test_flv: Path,
                                                 peer_dir: Path) -> None:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "rec")
    llhls = f"<SegmentDuration>{SEGMENT_S}</SegmentDuration>"
    assert llhls in xml
    xml = xml.replace(llhls, llhls + "<ServerTimeBasedSegmentNumbering>true</ServerTimeBasedSegmentNumbering>", 1)
    kiln = kiln_factory(xml=xml, ports=ports)
    before = int(time.time() * 1000) // (SEGMENT_S * 1000)
    pub: Peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{ports.llhls}/app/live"
    try:
        with httpx.Client(timeout=15) as http:
            def playable() -> bool:
                r = http.get(f"{base}/llhls.m3u8")
                return r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text
            kiln.wait_for(playable, timeout=30, what="master playlist")
            kiln.wait_for(lambda: all("#EXTINF" in http.get(u).text for u in chunklists(http, base)), timeout=30,
                          what="a whole segment listed in every chunklist")
            after = int(time.time() * 1000) // (SEGMENT_S * 1000)
            firsts = []
            for url in chunklists(http, base):
                text = http.get(url).text
                found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)
                assert found is not None, text
                firsts.append(int(found.group(1)))
                uri = re.findall(r"#EXTINF:[^\n]*\n(?:#[^\n]*\n)*([^#\s][^\n]*)", text)[0]
                assert str(firsts[-1]) in uri, (uri, firsts[-1])  # the segment is named by its number
                got = http.get(uri if uri.startswith("http") else f"{url.rsplit('/', 1)[0]}/{uri}")
                assert got.status_code == 200 and got.content, uri
            assert firsts and all(before <= n <= after + 1 for n in firsts), (before, firsts, after)
    finally:
        pub.stop()
