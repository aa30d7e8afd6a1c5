"""Admission for HLS v3 players (issue 14): the ``ts:`` master on the LL-HLS port is asked as OME's
``HLSv3`` publisher. A vhost whose SignedPolicy enables ``hlsv3`` answers 401 to an unsigned master and
200 to a signed one, whose session then plays; an invented session is 401. A webhook enabled for
``hlsv3`` hears the master as protocol ``HLSv3``, outgoing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.ome_signer import flip_signature_byte, ome_sign
from tests.peers.webhook_server import WebhookServer

pytestmark = pytest.mark.e2e

KEY = "hls#v3-key"
HLS = "<HLS><SegmentDuration>1</SegmentDuration><SegmentCount>3</SegmentCount></HLS><Push/>"
POLICY_XML = f"""<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName><SecretKey>{KEY}</SecretKey>
        <Enables><Publishers>hlsv3</Publishers></Enables></SignedPolicy>"""


def now_ms() -> int:
    return int(time.time() * 1000)


def live_kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, vhost_xml: str) -> KilnProcess:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace("<Push/>", HLS, 1).replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{vhost_xml}")
    return kiln_factory(xml=xml, ports=ports)


@pytest.fixture
def signed(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, test_flv: Path,
           peer_dir: Path) -> Iterator[tuple[KilnProcess, str]]:
    kiln = live_kiln(kiln_factory, tmp_path, POLICY_XML)
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    master = f"http://127.0.0.1:{kiln.ports.llhls}/app/live/ts:playlist.m3u8"
    with httpx.Client(timeout=15) as http:
        kiln.wait_for(lambda: http.get(ome_sign(master, KEY, {"url_expire": now_ms() + 60_000})).status_code == 200,
                      timeout=30, what="signed HLS v3 master")
    yield kiln, master
    pub.stop()


def test_unsigned_master_is_401_and_signed_plays(signed: tuple[KilnProcess, str]) -> None:
    _kiln, master = signed
    origin = master.split("/app/")[0]
    with httpx.Client(timeout=15) as http:
        assert http.get(master).status_code == 401
        assert http.get(flip_signature_byte(ome_sign(master, KEY, {"url_expire": now_ms() + 60_000}))).status_code \
            == 401
        assert http.get(ome_sign(master, KEY, {"url_expire": now_ms() - 1})).status_code == 401
        ok = http.get(ome_sign(master, KEY, {"url_expire": now_ms() + 60_000}))
        assert ok.status_code == 200 and "#EXT-X-STREAM-INF" in ok.text
        [media_uri] = [ln for ln in ok.text.splitlines() if ln and not ln.startswith("#")]
        media = http.get(f"{origin}{media_uri}")
        assert media.status_code == 200 and "#EXTINF" in media.text
        segment = next(ln for ln in media.text.splitlines() if ln and not ln.startswith("#"))
        seg = http.get(f"{master.rsplit('/', 1)[0]}/{segment}")
        assert seg.status_code == 200 and seg.content[:1] == b"\x47"
        invented = re.sub(r"session=\d+_[A-Za-z0-9]+", "session=987654_abcdefgh", f"{origin}{media_uri}")
        assert invented != f"{origin}{media_uri}"
        assert http.get(invented).status_code == 401
        assert http.get(f"{origin}{media_uri.split('?')[0]}").status_code == 401   # no session: asked, unsigned


def test_webhook_hears_the_master_as_hlsv3(kiln_factory: Callable[..., KilnProcess], tmp_path: Path,
                                           test_flv: Path, peer_dir: Path) -> None:
    control = WebhookServer(tmp_path / "control").start()
    try:
        hooks = f"""<AdmissionWebhooks><ControlServerUrl>{control.url}</ControlServerUrl><SecretKey>k</SecretKey>
            <Enables><Publishers>hlsv3</Publishers></Enables></AdmissionWebhooks>"""
        kiln = live_kiln(kiln_factory, tmp_path, hooks)
        pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
        base = f"http://127.0.0.1:{kiln.ports.llhls}/app"
        try:
            with httpx.Client(timeout=15) as http:
                kiln.wait_for(lambda: http.get(f"{base}/live/ts:playlist.m3u8").status_code == 200, timeout=30,
                              what="HLS v3 master allowed by the webhook")
                assert http.get(f"{base}/denyme/ts:playlist.m3u8").status_code == 401
        finally:
            pub.stop()
        bodies = [json.loads(r["body"])["request"] for r in control.requests()]
        masters = [b for b in bodies if b["status"] == "opening"]
        assert masters and all((b["protocol"], b["direction"]) == ("HLSv3", "outgoing") for b in masters)
        assert {b["url"].split("/")[-2] for b in masters} == {"live", "denyme"}
    finally:
        control.stop()
