"""Nothing a client or an API call points at may stop Kiln's event loop: a FIFO (``mkfifo``) where a file is
expected makes ``open()`` wait for a writer forever, so a loop that opens it stops answering everything.
Each test makes Kiln meet such a path, then checks that another API call is still answered within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.admission.contract import AdmissionRequest, Direction
from kiln.admission.webhooks import WebhookCheck
from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.e2e.test_api_tls import make_cert, served_cn
from tests.e2e.test_media_tls import Presented, Site, make_ca, presented, serial_of, sign, two_vhost_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.ports import free_tcp_port

pytestmark = pytest.mark.e2e

ANSWER_WITHIN = 5.0  # seconds: an idle Kiln answers GET /v1/vhosts in milliseconds


@pytest.fixture
def fifos() -> Iterator[Callable[[Path], Path]]:
    """FIFOs made for a test (in place of whatever file was there); each is opened for writing and closed at
    the end, so a reader stuck in ``open()`` (the bug) is let go and the Kiln under test can stop."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    for path in made:
        with contextlib.suppress(FileNotFoundError):  # replaced by a file Kiln wrote, then moved: nothing waits
            os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))  # O_RDWR never waits, and lets a blocked reader go


def still_answers(kiln: KilnProcess) -> None:
    """The API answers a plain read within ``ANSWER_WITHIN`` s (a blocked loop answers nothing)."""
    r = kiln.api.get("/v1/vhosts", timeout=ANSWER_WITHIN)
    assert r.status_code == 200, r.text


@pytest.fixture
def site(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> Site:
    """test_media_tls's two TLS vhosts (a.test with a chain, b.test first), both TLS ports."""
    workdir = tmp_path / "kiln"
    tls_dir = workdir / "tls"
    tls_dir.mkdir(parents=True)
    ca, ca_key = make_ca(tls_dir)
    for name in ("a", "b"):
        cert, key = sign(tmp_path, ca, ca_key, f"vhost-{name}", f"{name}.test")
        (tls_dir / f"{name}.crt").write_bytes(cert.read_bytes())
        (tls_dir / f"{name}.key").write_bytes(key.read_bytes())
    ports, llhls_tls, thumbnail_tls = Ports(), free_tcp_port(), free_tcp_port()
    kiln = kiln_factory(xml=two_vhost_xml(ports, workdir / "records", llhls_tls, thumbnail_tls), ports=ports,
                        workdir=workdir)
    return Site(kiln, tls_dir, ca, ca_key, llhls_tls, thumbnail_tls)


def test_a_vhost_certificate_that_is_a_fifo_does_not_stop_the_server(site: Site, tmp_path: Path,
                                                                       fifos: Callable[[Path], Path]) -> None:
    """A vhost created through the API names a FIFO as its certificate; the first TLS client that asks for
    that vhost by SNI made the handshake's SNI callback, on the loop, open it (the whole server stopped)."""
    _cert, key = sign(tmp_path, site.ca, site.ca_key, "vhost-f", "f.test")
    cert = fifos(tmp_path / "f.crt")
    created = site.kiln.api.post("/v1/vhosts", json=[{"name": "f", "host": {
        "names": ["f.test"], "tls": {"certPath": str(cert), "keyPath": str(key)}}}])
    assert created.status_code == 200, created.text
    got: list[object] = []

    def handshake() -> None:
        try:
            got.append(presented(site.llhls_tls, "f.test", site.ca))
        except (OSError, ssl.SSLError) as exc:
            got.append(exc)

    client = threading.Thread(target=handshake, daemon=True)
    client.start()
    client.join(2.0)  # the handshake reached the SNI callback (or finished)
    still_answers(site.kiln)
    client.join(10.0)
    # refused and logged; the handshake is served with the first TLS vhost's certificate instead
    b = Presented("vhost-b", serial_of(site.tls_dir / "b.crt"))
    assert got == [b], got
    assert presented(site.llhls_tls, "f.test", site.ca) == b
    site.kiln.wait_for_log(f"not a regular file: {cert}")
    assert httpx.get(f"http://127.0.0.1:{site.kiln.ports.llhls}/app/none/llhls.m3u8", timeout=5).status_code == 404


def test_reloading_a_vhost_certificate_that_became_a_fifo_is_refused(site: Site, fifos: Callable[[Path], Path]) -> None:
    """The server actor read the files itself: a FIFO held it, and with it every vhost command after."""
    cert = fifos(site.tls_dir / "b.crt")
    r = site.kiln.api.post("/v1/vhosts/b:reloadCertificate", timeout=ANSWER_WITHIN)
    assert r.json() == {"statusCode": 500, "message":
                        "[HTTP] Failed to reload certificate. Check server log for more information. (500)"}
    created = site.kiln.api.post("/v1/vhosts", json=[{"name": "g"}], timeout=ANSWER_WITHIN)
    assert created.status_code == 200, created.text
    site.kiln.wait_for_log(f"not a regular file: {cert}")


def test_reloading_the_api_certificate_when_it_became_a_fifo_is_refused(kiln_factory: Callable[..., KilnProcess],
                                                                        tmp_path: Path,
                                                                        fifos: Callable[[Path], Path]) -> None:
    """``POST /v1/managers/api:reloadCertificate`` read the files on the loop: a FIFO stopped the whole API."""
    cert, key = make_cert(tmp_path, "api")
    ports, tls_port = Ports(), free_tcp_port()
    xml = server_xml(ports, tmp_path / "rec")
    xml = xml.replace(f"<API><Port>{ports.api}</Port></API>",
                      f"<API><Port>{ports.api}</Port><TLSPort>{tls_port}</TLSPort></API>", 1)
    xml = xml.replace("<Managers><API><AccessToken>", f"<Managers><Host><Names><Name>*</Name></Names><TLS><CertPath>"
                      f"{cert}</CertPath><KeyPath>{key}</KeyPath></TLS></Host><API><AccessToken>", 1)
    kiln = kiln_factory(xml=xml, ports=ports)
    fifos(cert)
    got: list[httpx.Response | Exception] = []

    def reload() -> None:
        try:
            got.append(kiln.api.post("/v1/managers/api:reloadCertificate", timeout=30))
        except httpx.HTTPError as exc:
            got.append(exc)

    client = threading.Thread(target=reload, daemon=True)
    client.start()
    client.join(2.0)
    still_answers(kiln)
    client.join(10.0)
    assert len(got) == 1 and isinstance(got[0], httpx.Response), got
    assert got[0].json() == {"message": "[HTTP] Failed to create a certificate for the API Server (500)",
                             "statusCode": 500}
    assert served_cn(tls_port) == "api"  # the chain loaded at start keeps serving
    kiln.wait_for_log(f"not a regular file: {cert}")


APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def live(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[KilnProcess]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/live", test_flv, loop=True, log_dir=peer_dir)
    with httpx.Client(timeout=15) as http:
        kiln.wait_for(lambda: http.get(f"http://127.0.0.1:{kiln.ports.llhls}/app/live/llhls.m3u8").status_code == 200,
                      timeout=30, what="master playlist")
    yield kiln
    pub.stop()


def test_a_dump_whose_info_file_is_a_fifo_does_not_hold_the_server(live: KilnProcess, tmp_path: Path,
                                                                     fifos: Callable[[Path], Path]) -> None:
    """The dump's worker opened the FIFO to read the previous items and waited there for good: nothing was
    dumped, and Kiln never exited on SIGTERM (its executor's threads are joined at exit). Now refused (400)."""
    info = fifos(tmp_path / "dump.xml")
    r = live.api.post(f"{APP}/streams/live:startHlsDump", json={
        "outputStreamName": "live", "id": "d1", "outputPath": str(tmp_path / "dump"), "infoFile": str(info)},
        timeout=ANSWER_WITHIN)
    # a FIFO among the chunklists of an earlier run (which the worker reads to resume them; the API cannot see it)
    out = tmp_path / "out"
    out.mkdir()
    stale = fifos(out / "chunklist_0_video_old_llhls.m3u8")
    resumed = live.api.post(f"{APP}/streams/live:startHlsDump", json={
        "outputStreamName": "live", "id": "d2", "outputPath": str(out), "infoFile": str(tmp_path / "d2.xml")},
        timeout=ANSWER_WITHIN)
    still_answers(live)
    live.wait_for(lambda: list(out.glob("seg_*_video_*.m4s")), timeout=30, what="d2's first segment")
    live.wait_for_log(f"hls dump ignores an old chunklist id=d2 path={stale}")
    assert live.stop() == 0, live.log_tail()  # SIGTERM: exits within 20 s
    assert r.json() == {"statusCode": 400, "message": f"[HTTP] infoFile is not a regular file: [{info}] (400)"}
    assert resumed.json() == {"message": "OK", "statusCode": 200}, resumed.text


def records(kiln: KilnProcess, task_id: str) -> dict[str, Any]:
    found = [t for t in kiln.api.post(f"{APP}:records", timeout=ANSWER_WITHIN).json()["response"] if t["id"] == task_id]
    return found[0] if found else {}


def test_a_recording_whose_info_file_is_a_fifo_does_not_hold_its_worker_or_actor(
        live: KilnProcess, fifos: Callable[[Path], Path]) -> None:
    """The recording's worker opened the info file to add the finished file's entry: a FIFO held it there,
    so no later file was written (still shown 'recording'), and :stopRecord held the record's actor for 30 s."""
    root = live.workdir / "records"
    root.mkdir(parents=True, exist_ok=True)
    # a template the API cannot check before the recording runs (${Id}): the worker meets the FIFO
    late = fifos(root / "r2.xml")
    r = live.api.post(f"{APP}:startRecord", json={"id": "r2", "stream": {"name": "live"}, "interval": 1000,
                                                  "filePath": "r2_${Sequence}.ts", "infoPath": "${Id}.xml"},
                      timeout=ANSWER_WITHIN)
    assert r.status_code == 200, r.text
    task = live.wait_for(lambda: (t := records(live, "r2")).get("state") == "error" and t, timeout=20,
                         what="the recording in error")
    assert task["lastError"] == f"not a regular file: {late}", task
    assert (root / "r2_0.ts").stat().st_size > 0  # the file itself is in place
    still_answers(live)
    stopped = live.api.post(f"{APP}:stopRecord", json={"id": "r2"}, timeout=ANSWER_WITHIN)
    assert stopped.status_code == 200, stopped.text
    # a path without macros is checked before the recording starts
    info = fifos(root / "fixed.xml")
    r = live.api.post(f"{APP}:startRecord", json={"id": "r1", "stream": {"name": "live"},
                                                  "filePath": "r1_${Sequence}.ts", "infoPath": "fixed.xml"},
                      timeout=ANSWER_WITHIN)
    assert r.json() == {"statusCode": 400, "message": f"[HTTP] infoPath is not a regular file: [{info}] (400)"}
    assert live.stop() == 0, live.log_tail()


def test_admission_webhook_requests_load_no_ca_bundle_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each admission webhook request made a new HTTP client, which loaded the CA bundle on the event loop:
    about 25 ms of loop time (measured on the 2-core test machine) for every session opening and closing, so a
    burst of players or publishers with AdmissionWebhooks held every other client for that long per session."""
    loads: list[str] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(threading.current_thread().name)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)

    async def control_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        await reader.readexactly(length)
        body = b'{"allowed": true}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def run() -> list[bool]:
        server = await asyncio.start_server(control_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        section = {"controlServerUrl": f"http://127.0.0.1:{port}/admission", "secretKey": "k", "timeout": 3000,
                   "enables": {"providers": "rtmp"}}
        check = WebhookCheck(_Settings(section))
        request = AdmissionRequest("RTMP", Direction.INCOMING, "rtmp://127.0.0.1:1935/app/s", ("127.0.0.1", 5),
                                   "default", "app", "s")
        async with server:
            verdicts = [(await check.check(request)).allowed for _ in range(10)]
            for _ in range(10):
                await check.closed(request)
        return verdicts

    assert asyncio.run(run()) == [True] * 10
    loop_thread = threading.current_thread().name
    assert loop_thread not in loads, loads  # none on the loop; the worker thread's one load is the shared context
    assert len(loads) <= 1, loads


class _Settings:
    def __init__(self, section: dict[str, Any]) -> None:
        self.section = section

    def admission_webhooks(self, vhost: str) -> dict[str, Any] | None:
        return self.section
