"""The LL-HLS TLS listener: hypercorn serving HTTP/2 (and HTTP/1.1 by ALPN) on a socket Kiln bound,
with the context it is handed (certificate choice and reloads: tests/unit/config/test_tls.py)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kiln.media.publish.llhls.tls_server import ALPN, H2Listener
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


# -- hypercorn on our socket ---------------------------------------------------------------------

async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.scope['http_version']} {request.url.path}")


def test_the_listener_serves_http2_on_the_socket_it_is_given_until_stopped(cert_dir: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_alpn_protocols(ALPN)
    context.load_cert_chain(cert_dir / "first.crt", cert_dir / "first.key")
    app = Starlette(routes=[Route("/{path:path}", _hello)])

    async def run() -> tuple[list[tuple[str, str]], bool]:
        listener = H2Listener(app, bind_tcp("127.0.0.1", 0), context)
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
