"""LL-HLS on Bind/Publishers/LLHLS/TLSPort: TLS with the vhost's Host/TLS certificate, HTTP/2 by ALPN.

A test CA is made here with the openssl CLI; ffprobe verifies the chain against it, curl sees HTTP/2,
and hls.js in Chromium plays with every HLS request on h2 (resource timing ``nextHopProtocol``).
"""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.ports import free_tcp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca_and_server_cert(directory: Path, cn: str = "kiln-test-server") -> Certificates:
    """A CA, and a server certificate it signed for 127.0.0.1 / localhost."""
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Kiln Test CA",
             "-keyout", str(ca_key), "-out", str(ca))
    cert, key = sign_server_cert(directory, ca, ca_key, cn)
    return Certificates(ca, cert, key)


def sign_server_cert(directory: Path, ca: Path, ca_key: Path, cn: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{cn}.key", directory / f"{cn}.csr", directory / f"{cn}.crt"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr))
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


def tls_server_xml(ports: Ports, root: Path, tls_port: int, certs: Certificates) -> str:
    xml = server_xml(ports, root)
    plain = f"<LLHLS><Port>{ports.llhls}</Port></LLHLS>"
    assert plain in xml
    xml = xml.replace(plain, f"<LLHLS><Port>{ports.llhls}</Port><TLSPort>{tls_port}</TLSPort></LLHLS>", 1)
    host = "<Host><Names><Name>*</Name></Names></Host>"
    assert host in xml
    return xml.replace(host, f"<Host><Names><Name>*</Name></Names><TLS><CertPath>{certs.cert}</CertPath>"
                             f"<KeyPath>{certs.key}</KeyPath><ChainCertPath>{certs.ca}</ChainCertPath></TLS></Host>", 1)


@dataclass(frozen=True)
class Live:
    kiln: KilnProcess
    base: str  # https://127.0.0.1:TLSPORT/app/live
    certs: Certificates


@pytest.fixture
def live_tls(kiln_factory: Any, tmp_path: Path, test_flv: Path, peer_dir: Path) -> Iterator[Live]:
    certs = make_ca_and_server_cert(tmp_path)
    ports, tls_port = Ports(), free_tcp_port()
    kiln = kiln_factory(xml=tls_server_xml(ports, tmp_path / "rec", tls_port, certs), ports=ports)
    pub: Peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    base = f"https://127.0.0.1:{tls_port}/app/live"
    with httpx.Client(timeout=15, verify=ssl.create_default_context(cafile=certs.ca)) as http:
        def playable() -> bool:
            r = http.get(f"{base}/llhls.m3u8")
            return r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text
        kiln.wait_for(playable, timeout=30, what="master playlist over TLS")
    yield Live(kiln, base, certs)
    pub.stop()


def test_ffprobe_plays_over_tls_verified_by_the_test_ca(live_tls: Live) -> None:
    probe = ffprobe_json(f"{live_tls.base}/llhls.m3u8", extra_args=("-ca_file", str(live_tls.certs.ca),
                                                                   "-tls_verify", "1"))
    streams = streams_by_type(probe)
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac", probe


def test_curl_negotiates_http2_and_the_plain_port_stays_http1(live_tls: Live) -> None:
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(live_tls.certs.ca), "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code}", f"{live_tls.base}/llhls.m3u8"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "2 200", out
    head = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(live_tls.certs.ca), "-I",
                           f"{live_tls.base}/llhls.m3u8"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert head.startswith("HTTP/2 200") and re.search(r"(?im)^content-length: [1-9]", head), head
    plain = f"http://127.0.0.1:{live_tls.kiln.ports.llhls}/app/live/llhls.m3u8"
    out = subprocess.run(["curl", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", plain],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "1.1 200", out  # the plain port is uvicorn, HTTP/1.1 (no h2c upgrade)
    # a client that offers only http/1.1 in ALPN is still served
    out = subprocess.run(["curl", "-sS", "--http1.1", "--cacert", str(live_tls.certs.ca), "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code}", f"{live_tls.base}/llhls.m3u8"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "1.1 200", out


def test_hlsjs_plays_over_http2_in_chromium(live_tls: Live, chromium_player: Any) -> None:
    report = chromium_player(f"{live_tls.base}/llhls.m3u8", timeout=45, ignore_https_errors=True)
    assert report["played"], report
    assert report["blockingReloadSeen"] and report["partsLoaded"] > 0, report
    # every request on h2 ("http/1.1" would fail); an entry with no protocol ("") says nothing of the wire: Chromium
    # leaves it empty for a request that did not complete, e.g. one hls.js gave up under load (seen once)
    protocols = {name: count for name, count in report["protocols"].items() if name}
    assert list(protocols) == ["h2"] and protocols["h2"] >= report["partsLoaded"], (report["protocols"],
                                                                                    report["noProtocol"])
    assert not [e for e in report["errors"] if str(e).startswith("fatal:")], report["errors"]


def _peer_cn(response: httpx.Response) -> str:
    """The CN of the certificate the server presented on the connection that carried ``response``."""
    peer = response.extensions["network_stream"].get_extra_info("ssl_object").getpeercert()
    return dict(field[0] for field in peer["subject"])["commonName"]


def test_reload_certificate_serves_new_connections_and_keeps_open_ones(live_tls: Live, tmp_path: Path) -> None:
    certs, playlist = live_tls.certs, f"{live_tls.base}/llhls.m3u8"
    trust = ssl.create_default_context(cafile=certs.ca)
    with httpx.Client(http2=True, verify=trust, timeout=15) as viewer:
        first = viewer.get(playlist)
        assert first.http_version == "HTTP/2" and _peer_cn(first) == "kiln-test-server"
        cert, key = sign_server_cert(tmp_path, certs.ca, tmp_path / "ca.key", "renewed")
        certs.cert.write_bytes(cert.read_bytes())
        certs.key.write_bytes(key.read_bytes())
        ok = {"message": "OK", "statusCode": 200}
        assert live_tls.kiln.api.post("/v1/vhosts/default:reloadCertificate").json() == ok
        again = viewer.get(playlist)  # the viewer's connection was open before the reload: it still plays
        assert again.status_code == 200 and _peer_cn(again) == "kiln-test-server"
    with httpx.Client(http2=True, verify=trust, timeout=15) as newcomer:
        r = newcomer.get(playlist)
        assert r.status_code == 200 and r.http_version == "HTTP/2" and _peer_cn(r) == "renewed"
    certs.cert.write_text("not a certificate")
    r = live_tls.kiln.api.post("/v1/vhosts/default:reloadCertificate")
    assert r.json() == {"statusCode": 500,
                        "message": "[HTTP] Failed to reload certificate. Check server log for more information. (500)"}
    with httpx.Client(http2=True, verify=trust, timeout=15) as later:
        assert _peer_cn(later.get(playlist)) == "renewed"  # the old chain keeps serving


def test_modules_http2_disabled_leaves_the_tls_port_on_http1(kiln_factory: Any, tmp_path: Path, test_flv: Path,
                                                            peer_dir: Path) -> None:
    """OME's ``Modules/HTTP2/Enable`` false: the LL-HLS TLS port offers no h2, a client asking for HTTP/2 gets 1.1."""
    certs = make_ca_and_server_cert(tmp_path)
    ports, tls_port = Ports(), free_tcp_port()
    xml = tls_server_xml(ports, tmp_path / "rec", tls_port, certs)
    head = '<Server version="8">'
    assert head in xml
    xml = xml.replace(head, head + "<Modules><HTTP2><Enable>false</Enable></HTTP2></Modules>", 1)
    kiln = kiln_factory(xml=xml, ports=ports)
    pub: Peer = publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    try:
        playlist = f"https://127.0.0.1:{tls_port}/app/live/llhls.m3u8"
        trust = ssl.create_default_context(cafile=certs.ca)
        with httpx.Client(http2=True, verify=trust, timeout=15) as viewer:
            def playable() -> bool:
                r = viewer.get(playlist)
                return r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text
            kiln.wait_for(playable, timeout=30, what="master playlist over TLS")
            assert viewer.get(playlist).http_version == "HTTP/1.1"
        out = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(certs.ca), "-o", "/dev/null",
                              "-w", "%{http_version} %{http_code}", playlist],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert out == "1.1 200", out
    finally:
        pub.stop()
