"""WebRTC playback over TLS on the LL-HLS TLS port (OME shares it: Signalling/TLSPort = LLHLS/TLSPort):
``wss://`` OME signalling and WHEP over ``https://``, both verified against the test's own CA (the
certificate is the vhost's Host/TLS, as in tests/e2e/test_media_tls.py), with aiortc playing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_media_tls import make_ca, sign
from tests.e2e.webrtc.play_kiln import (
    RtcPorts,
    count_frames,
    keep_ice_on_loopback,
    rtc_server_xml,
    signalling_viewer,
    wait_rtmp_stream,
)
from tests.e2e.webrtc.rtc_browser import play_rtc, rtc_browser_available
from tests.peers import media
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.fixtures import require
from tests.peers.ports import free_tcp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e


@dataclass
class TlsSite:
    kiln: KilnProcess
    ports: RtcPorts
    tls_port: int
    ca: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)


def tls_xml(ports: RtcPorts, tls_port: int) -> str:
    xml = rtc_server_xml(ports)
    replaced = xml.replace(f"<LLHLS><Port>{ports.llhls}</Port></LLHLS>",
                           f"<LLHLS><Port>{ports.llhls}</Port><TLSPort>{tls_port}</TLSPort></LLHLS>", 1)
    replaced = replaced.replace(f"<Signalling><Port>{ports.llhls}</Port></Signalling>",
                                f"<Signalling><Port>{ports.llhls}</Port><TLSPort>{tls_port}</TLSPort></Signalling>", 1)
    replaced = replaced.replace("<Host><Names><Name>*</Name></Names></Host>",
                                "<Host><Names><Name>*</Name></Names><TLS><CertPath>tls/kiln.crt</CertPath>"
                                "<KeyPath>tls/kiln.key</KeyPath></TLS></Host>", 1)
    assert replaced.count(str(tls_port)) == 2 and "tls/kiln.crt" in replaced
    return replaced


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TlsSite]:
    require("ffmpeg")
    workdir = tmp_path / "kiln"
    tls_dir = workdir / "tls"
    tls_dir.mkdir(parents=True)
    ca, ca_key = make_ca(tls_dir)
    cert, key = sign(tmp_path, ca, ca_key, "kiln-rtc", "kiln.test")
    (tls_dir / "kiln.crt").write_bytes(cert.read_bytes())
    (tls_dir / "kiln.key").write_bytes(key.read_bytes())
    ports, tls_port = RtcPorts(), free_tcp_port()
    kiln = KilnProcess(workdir, tls_xml(ports, tls_port), ports).start()
    publisher: Peer | None = None
    try:
        publisher = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", media.test_flv(4), loop=True,
                                 log_dir=tmp_path)
        wait_rtmp_stream(kiln, "cam")
        yield TlsSite(kiln, ports, tls_port, ca)
    finally:
        if publisher is not None:
            publisher.stop()
        kiln.close()


def _connections(kiln: KilnProcess) -> int:
    stats = kiln.api.get("/v1/stats/current/vhosts/default/apps/app/streams/cam").json()["response"]
    return int(stats["connections"]["webrtc"])


def test_wss_signalling_plays_verified_by_the_test_ca(site: TlsSite) -> None:
    url = f"wss://127.0.0.1:{site.tls_port}/app/cam"
    report = asyncio.run(signalling_viewer(url, seconds=1.0, min_video_frames=15, tls=site.context()))
    assert not report.errors and report.offer.get("command") == "offer", report.offer
    assert report.frames["video"] >= 15 and report.frames["audio"] > 0, report.frames
    with pytest.raises(ssl.SSLCertVerificationError):  # it is TLS for real: an unknown CA is refused
        asyncio.run(signalling_viewer(url, timeout=10, tls=ssl.create_default_context()))
    site.kiln.wait_for(lambda: _connections(site.kiln) == 0, 30, "the wss session closed")


def _spki_sha256(cert: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64 SHA-256 of the key's SubjectPublicKeyInfo."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    return base64.b64encode(hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()
                            ).decode()


def test_ovenplayer_plays_over_wss_in_chromium(site: TlsSite, tmp_path: Path) -> None:
    """OvenPlayer's WebRTC source with a ``wss://`` URL, in Chromium, which trusts only the key of Kiln's
    certificate (the test CA is not installed in the browser)."""
    require("chromium", rtc_browser_available)
    spki = _spki_sha256(site.kiln.workdir / "tls" / "kiln.crt")
    report = play_rtc("ovenplayer", f"wss://127.0.0.1:{site.tls_port}/app/cam",
                      origin=f"https://127.0.0.1:{site.tls_port}", workdir=tmp_path / "browser", watch=3,
                      chromium_args=(f"--ignore-certificate-errors-spki-list={spki}",))
    assert report["playing"], report
    assert report["framesEnd"] - report["framesStart"] >= 30, report
    assert report["audioPackets"] > 50 and report["videoCodec"] == "video/H264", report
    assert not report["errors"], report
    site.kiln.wait_for(lambda: _connections(site.kiln) == 0, 30, "the wss session closed with the browser")


async def _whep(url: str, tls: ssl.SSLContext, frames_wanted: int) -> dict[str, Any]:
    keep_ice_on_loopback()
    pc = RTCPeerConnection()
    frames = {"video": 0, "audio": 0}
    enough = asyncio.get_running_loop().create_future()

    def check() -> None:
        if frames["video"] >= frames_wanted and frames["audio"] > 0 and not enough.done():
            enough.set_result(None)

    count_frames(pc, frames, check)

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(verify=tls, timeout=20) as http:
        posted = await http.post(url, content=pc.localDescription.sdp.encode(),
                                 headers={"content-type": "application/sdp"})
        assert posted.status_code == 201, posted.text
        assert posted.headers["content-type"].startswith("application/sdp")
        await pc.setRemoteDescription(RTCSessionDescription(posted.text, "answer"))
        try:
            await asyncio.wait_for(enough, 30)
        finally:
            location = httpx.URL(url).join(posted.headers["location"])
            deleted = await http.delete(location)
            await pc.close()
    return {"frames": frames, "deleted": deleted.status_code, "http": posted.http_version}


def test_whep_over_https_plays_and_delete_frees_the_session(site: TlsSite) -> None:
    result = asyncio.run(_whep(f"https://127.0.0.1:{site.tls_port}/app/cam?direction=whep", site.context(), 15))
    assert result["frames"]["video"] >= 15 and result["frames"]["audio"] > 0, result
    assert result["deleted"] in (200, 204), result
    site.kiln.wait_for(lambda: _connections(site.kiln) == 0, 20, "the WHEP session freed by DELETE")
    assert "Traceback" not in site.kiln.log_path.read_text()
