"""The LL-HLS TLS listener: which vhost certificate it takes from the config, ALPN h2 with an
http/1.1 fallback, hypercorn serving HTTP/2 on a socket Kiln bound, and reloads from another thread."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kiln.media.publish.llhls.tls_server import H2Listener, ServedCertificate, VhostCertificate
from kiln.service import bind_tcp


def make_cert(directory: Path, cn: str) -> tuple[Path, Path]:
    cert, key = directory / f"{cn}.crt", directory / f"{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    make_cert(directory, "first")
    make_cert(directory, "second")
    return directory


def resolve_in(base: Path) -> Callable[[str], Path]:
    return lambda value: Path(value) if Path(value).is_absolute() else base / value


# -- which certificate ------------------------------------------------------------------------

def test_the_first_vhost_with_a_cert_and_a_key_is_taken_and_relative_paths_resolve_against_the_config() -> None:
    vhosts = [
        {"name": "plain", "host": {"names": ["*"]}},
        {"name": "keyless", "host": {"tls": {"certPath": "/c/keyless.crt"}}},
        {"name": "odd", "host": "not a mapping"},
        {"name": "secure", "host": {"tls": {"certPath": "tls/s.crt", "keyPath": "/abs/s.key",
                                            "chainCertPath": "tls/chain.crt"}}},
        {"name": "later", "host": {"tls": {"certPath": "/c/l.crt", "keyPath": "/c/l.key"}}},
    ]
    found = VhostCertificate.first_of(vhosts, resolve_in(Path("/etc/kiln")))
    assert found is not None
    assert (found.vhost, found.cert_path, found.key_path, found.chain_path) == \
        ("secure", Path("/etc/kiln/tls/s.crt"), Path("/abs/s.key"), Path("/etc/kiln/tls/chain.crt"))
    later = VhostCertificate.first_of(vhosts[4:], resolve_in(Path("/etc/kiln")))
    assert later is not None and later.chain_path is None


def test_no_vhost_with_tls_means_no_certificate() -> None:
    assert VhostCertificate.first_of([], resolve_in(Path("/"))) is None
    assert VhostCertificate.first_of([{"name": "a"}, {"name": "b", "host": {"tls": {}}}], resolve_in(Path("/"))) is None


# -- the handshake ---------------------------------------------------------------------------

def handshake(server: ssl.SSLContext, offered: list[str]) -> tuple[str | None, str]:
    """An in-memory TLS handshake; returns (the ALPN protocol chosen, the CN the server presented)."""
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.set_alpn_protocols(offered)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if c.version() is not None and s.version() is not None:
            break
    der = c.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True,
                             check=True, timeout=30).stdout
    return c.selected_alpn_protocol(), subject.strip().rsplit("=", 1)[-1].strip()


def test_alpn_prefers_h2_and_serves_http11_clients_too(cert_dir: Path) -> None:
    cert = VhostCertificate("v", cert_dir / "first.crt", cert_dir / "first.key")
    cert.reload()
    assert handshake(cert.context, ["h2", "http/1.1"]) == ("h2", "first")
    assert handshake(cert.context, ["http/1.1"]) == ("http/1.1", "first")


def test_a_chain_file_loads_with_the_certificate_and_a_bad_file_keeps_the_old_chain(cert_dir: Path,
                                                                                       tmp_path: Path) -> None:
    cert = VhostCertificate("v", cert_dir / "first.crt", cert_dir / "first.key", chain_path=cert_dir / "second.crt")
    assert cert.try_load()
    assert handshake(cert.context, ["h2"]) == ("h2", "first")
    broken = VhostCertificate("v", tmp_path / "missing.crt", cert_dir / "first.key", context=cert.context)
    assert not broken.try_load()
    assert handshake(cert.context, ["h2"]) == ("h2", "first")


# -- hypercorn on our socket ---------------------------------------------------------------------

async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.scope['http_version']} {request.url.path}")


def test_the_listener_serves_http2_on_the_socket_it_is_given_until_stopped(cert_dir: Path) -> None:
    cert = VhostCertificate("v", cert_dir / "first.crt", cert_dir / "first.key")
    cert.reload()
    app = Starlette(routes=[Route("/{path:path}", _hello)])

    async def run() -> tuple[list[tuple[str, str]], bool]:
        listener = H2Listener(app, bind_tcp("127.0.0.1", 0), cert)
        port = listener.sock.getsockname()[1]
        serving = asyncio.create_task(listener.serve())
        trust = ssl.create_default_context(cafile=cert_dir / "first.crt")
        seen = []
        for http2 in (True, False):
            async with httpx.AsyncClient(http2=http2, verify=trust, timeout=10) as client:
                for _ in range(50):  # until hypercorn has started serving the socket
                    try:
                        r = await client.get(f"https://127.0.0.1:{port}/app/s/llhls.m3u8")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.05)
                seen.append((r.http_version, r.text))
        listener.stop()
        await asyncio.wait_for(serving, 10)
        return seen, serving.done()

    seen, stopped = asyncio.run(run())
    assert seen == [("HTTP/2", "2 /app/s/llhls.m3u8"), ("HTTP/1.1", "1.1 /app/s/llhls.m3u8")]
    assert stopped


# -- reload from the server actor's thread -----------------------------------------------------------

@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)
    running.close()


def test_reload_touches_only_the_served_vhost_and_reports_a_failed_load(cert_dir: Path, tmp_path: Path,
                                                                       loop: asyncio.AbstractEventLoop) -> None:
    cert_path, key_path = tmp_path / "v.crt", tmp_path / "v.key"
    cert_path.write_bytes((cert_dir / "first.crt").read_bytes())
    key_path.write_bytes((cert_dir / "first.key").read_bytes())
    served = ServedCertificate()
    assert served.reload_certificate("v")  # no listener yet: nothing to reload
    cert = VhostCertificate("v", cert_path, key_path)
    cert.reload()
    served.serving(cert, loop)
    cert_path.write_bytes((cert_dir / "second.crt").read_bytes())
    key_path.write_bytes((cert_dir / "second.key").read_bytes())
    assert served.reload_certificate("other")  # another vhost's certificate: not this listener's
    assert handshake(cert.context, ["h2"]) == ("h2", "first")
    assert served.reload_certificate("v")
    assert handshake(cert.context, ["h2"]) == ("h2", "second")
    cert_path.write_text("not a certificate")
    assert not served.reload_certificate("v")
    assert handshake(cert.context, ["h2"]) == ("h2", "second")
