"""The media TLS ports as TLS clients see them: the certificate chosen by SNI among the vhosts (also
vhosts created through the API), reloads that change what a new connection gets while a running
ffmpeg reader keeps reading, a broken file answered 500 with the old chain kept, and thumb.jpg on
Bind/Publishers/Thumbnail/TLSPort. The certificates are signed by the test's own CA; Host/TLS paths
are relative to Server.xml's directory (Kiln runs in another working directory)."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, record_from
from tests.peers.ports import free_tcp_port

pytestmark = pytest.mark.e2e

PROFILES = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
                <Image><Codec>jpeg</Codec><Width>160</Width><Height>90</Height><Framerate>1</Framerate></Image>
              </Encodes>
            </OutputProfile>"""


def _openssl(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, text=True, timeout=60,
                          cwd=cwd).stdout


def make_ca(directory: Path) -> tuple[Path, Path]:
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Kiln SNI Test CA",
             "-keyout", str(ca_key), "-out", str(ca))
    return ca, ca_key


def sign(directory: Path, ca: Path, ca_key: Path, cn: str, dns: str) -> tuple[Path, Path]:
    """A server certificate for ``dns`` (and 127.0.0.1) signed by the CA, with a fresh serial."""
    key, csr, cert, ext = (directory / f"{cn}.{s}" for s in ("key", "csr", "crt", "ext"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=DNS:{dns},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


def serial_of(cert: Path) -> int:
    return int(_openssl("x509", "-noout", "-serial", "-in", str(cert)).strip().split("=", 1)[1], 16)


@dataclass(frozen=True)
class Presented:
    cn: str
    serial: int


def presented(port: int, server_name: str | None, ca: Path) -> Presented:
    """Handshake with SNI ``server_name`` (none when None), the chain verified against the test CA (the
    name is not: a name no vhost owns gets another vhost's certificate, which is what is checked)."""
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        peer = tls.getpeercert()
    subject = dict(field[0] for field in peer["subject"])
    return Presented(str(subject["commonName"]), int(str(peer["serialNumber"]), 16))


@dataclass
class Site:
    kiln: KilnProcess
    tls_dir: Path
    ca: Path
    ca_key: Path
    llhls_tls: int
    thumbnail_tls: int


def two_vhost_xml(ports: Ports, root: Path, llhls_tls: int, thumbnail_tls: int) -> str:
    xml = server_xml(ports, root, profiles=PROFILES)
    xml = xml.replace(f"<LLHLS><Port>{ports.llhls}</Port></LLHLS>",
                      f"<LLHLS><Port>{ports.llhls}</Port><TLSPort>{llhls_tls}</TLSPort></LLHLS>", 1)
    xml = xml.replace(f"<Thumbnail><Port>{ports.thumbnail}</Port></Thumbnail>",
                      f"<Thumbnail><Port>{ports.thumbnail}</Port><TLSPort>{thumbnail_tls}</TLSPort></Thumbnail>", 1)
    default = "<VirtualHost>\n      <Name>default</Name>\n      <Host><Names><Name>*</Name></Names></Host>"
    assert default in xml and str(llhls_tls) in xml and str(thumbnail_tls) in xml
    # default keeps its apps and is named by a.test and 127.0.0.1 (no "*", which would take every other name:
    # the first vhost whose names match wins, for routing and certificates alike)
    return xml.replace(default, (
        "<VirtualHost><Name>b</Name><Host><Names><Name>b.test</Name></Names>"
        "<TLS><CertPath>tls/b.crt</CertPath><KeyPath>tls/b.key</KeyPath></TLS></Host></VirtualHost>\n"
        "    <VirtualHost>\n      <Name>default</Name>\n"
        "      <Host><Names><Name>a.test</Name><Name>127.0.0.1</Name></Names>"
        "<TLS><CertPath>tls/a.crt</CertPath><KeyPath>tls/a.key</KeyPath>"
        "<ChainCertPath>tls/ca.crt</ChainCertPath></TLS></Host>"), 1)


@pytest.fixture
def site(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> Site:
    workdir = tmp_path / "kiln"
    tls_dir = workdir / "tls"
    tls_dir.mkdir(parents=True)
    ca, ca_key = make_ca(tls_dir)
    for name in ("a", "b"):
        cert, key = sign(tmp_path, ca, ca_key, f"vhost-{name}", f"{name}.test")
        (tls_dir / f"{name}.crt").write_bytes(cert.read_bytes())
        (tls_dir / f"{name}.key").write_bytes(key.read_bytes())
    ports, llhls_tls, thumbnail_tls = Ports(), free_tcp_port(), free_tcp_port()
    assert Path.cwd() != workdir  # relative Host/TLS paths must be read against Server.xml's directory
    kiln = kiln_factory(xml=two_vhost_xml(ports, workdir / "records", llhls_tls, thumbnail_tls), ports=ports,
                        workdir=workdir)
    return Site(kiln, tls_dir, ca, ca_key, llhls_tls, thumbnail_tls)


@pytest.fixture
def publishing(site: Site, test_flv: Path, peer_dir: Path) -> Iterator[str]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{site.kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    playlist = f"https://127.0.0.1:{site.llhls_tls}/app/live/llhls.m3u8"
    try:
        with httpx.Client(timeout=15, verify=ssl.create_default_context(cafile=site.ca)) as http:
            site.kiln.wait_for(lambda: http.get(playlist).status_code == 200, timeout=30, what="playlist over TLS")
        yield playlist
    finally:
        pub.stop()


def test_each_server_name_gets_its_vhost_certificate_on_both_tls_ports(site: Site) -> None:
    a, b = serial_of(site.tls_dir / "a.crt"), serial_of(site.tls_dir / "b.crt")
    for port in (site.llhls_tls, site.thumbnail_tls):
        assert presented(port, "a.test", site.ca) == Presented("vhost-a", a)
        assert presented(port, "b.test", site.ca) == Presented("vhost-b", b)
        assert presented(port, "A.TEST", site.ca).cn == "vhost-a"  # names match case-insensitively
        # a name no vhost owns, or no SNI at all: the first vhost with TLS
        assert presented(port, "anything.example", site.ca).cn == "vhost-b"
        assert presented(port, None, site.ca).cn == "vhost-b"


def test_a_vhost_created_through_the_api_is_served_to_the_next_connection(site: Site, tmp_path: Path) -> None:
    cert, key = sign(tmp_path, site.ca, site.ca_key, "vhost-c", "c.test")
    created = site.kiln.api.post("/v1/vhosts", json=[{"name": "c", "host": {
        "names": ["c.test"], "tls": {"certPath": str(cert), "keyPath": str(key)}}}])
    assert created.status_code == 200, created.text
    assert presented(site.llhls_tls, "c.test", site.ca) == Presented("vhost-c", serial_of(cert))
    assert site.kiln.api.delete("/v1/vhosts/c").status_code == 200
    assert presented(site.llhls_tls, "c.test", site.ca).cn == "vhost-b"  # c is gone: the first TLS vhost's


def test_curl_with_sni_plays_the_playlist_verified_by_the_test_ca(site: Site, publishing: str) -> None:
    url = f"https://a.test:{site.llhls_tls}/app/live/llhls.m3u8"
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(site.ca), "--resolve",
                          f"a.test:{site.llhls_tls}:127.0.0.1", "-w", "\n%{http_version} %{http_code}", url],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert "#EXT-X-STREAM-INF" in out and out.endswith("\n2 200"), out


def test_reload_changes_what_new_connections_get_while_ffmpeg_keeps_reading(site: Site, publishing: str,
                                                                             tmp_path: Path, peer_dir: Path) -> None:
    old_a, b = serial_of(site.tls_dir / "a.crt"), serial_of(site.tls_dir / "b.crt")
    recording = tmp_path / "reader.ts"
    reader = record_from(publishing, recording, 14, log_dir=peer_dir,
                         input_args=("-ca_file", str(site.ca), "-tls_verify", "1"))
    # reading over the old chain before anything is reloaded: its first bytes are on disk (not a fixed sleep)
    site.kiln.wait_for(lambda: recording.exists() and recording.stat().st_size > 0, timeout=30,
                       what="the TLS reader's first bytes")
    assert reader.popen is not None and reader.popen.poll() is None, reader.stderr_path.read_text()
    cert, key = sign(tmp_path, site.ca, site.ca_key, "vhost-a", "a.test")
    (site.tls_dir / "a.crt").write_bytes(cert.read_bytes())
    (site.tls_dir / "a.key").write_bytes(key.read_bytes())
    new_a = serial_of(cert)
    assert new_a != old_a
    assert presented(site.llhls_tls, "a.test", site.ca).serial == old_a  # files changed, nothing reloaded yet
    ok = {"message": "OK", "statusCode": 200}
    assert site.kiln.api.post("/v1/vhosts/default:reloadCertificate").json() == ok
    for port in (site.llhls_tls, site.thumbnail_tls):
        assert presented(port, "a.test", site.ca) == Presented("vhost-a", new_a)
        assert presented(port, "b.test", site.ca).serial == b
    # a broken file: 500 with OME's text, and the chain that was serving keeps serving
    (site.tls_dir / "b.crt").write_text("not a certificate")
    failed = site.kiln.api.post("/v1/vhosts:reloadAllCertificates")
    assert failed.json() == {"statusCode": 500, "message":
                             "[HTTP] Failed to reload certificate. Check server log for more information. (500)"}
    assert presented(site.llhls_tls, "b.test", site.ca).serial == b
    assert presented(site.llhls_tls, "a.test", site.ca).serial == new_a
    assert reader.popen.wait(timeout=40) == 0, reader.stderr_path.read_text()
    duration = float(ffprobe_json(recording)["format"]["duration"])
    assert duration >= 12, duration  # the reader read on through the reloads


def test_the_thumbnail_tls_port_serves_thumb_jpg(site: Site, publishing: str) -> None:
    url = f"https://127.0.0.1:{site.thumbnail_tls}/app/live/thumb.jpg"
    with httpx.Client(timeout=10, verify=ssl.create_default_context(cafile=site.ca)) as http:
        site.kiln.wait_for(lambda: http.get(url).status_code == 200, timeout=30, what="thumbnail over TLS")
        r = http.get(url)
    assert r.http_version == "HTTP/1.1"
    assert r.headers["content-type"] == "image/jpeg" and r.content.startswith(b"\xff\xd8"), r.headers
