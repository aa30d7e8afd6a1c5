"""LL-HLS on its TLS port (Bind/Publishers/LLHLS/TLSPort), over HTTP/2.

OME documents LL-HLS over HTTP/2 for browsers: over HTTP/1.1 a browser opens at most six
connections per host, and hls.js's blocking playlist reloads (one per rendition, each held open
until the next part) stall everything else queued behind them. uvicorn speaks HTTP/1.1 only, so
this one listener runs on hypercorn (h2 + http/1.1 by ALPN); the plain LL-HLS port stays on uvicorn.

The certificate is the first vhost's ``Host/TLS`` (choosing among vhosts by SNI is not done here).
One ``ssl.SSLContext`` lives as long as the listener; ``:reloadCertificate`` loads the files again
into it, so new handshakes get the new chain and connections already open keep playing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

log = logging.getLogger(__name__)

ALPN = ["h2", "http/1.1"]


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # HTTP/2 requires TLS 1.2 or later (RFC 9113 9.2)
    context.set_alpn_protocols(ALPN)
    return context


@dataclass
class VhostCertificate:
    """The certificate files of one vhost's ``Host/TLS`` and the live context loaded from them."""

    vhost: str
    cert_path: Path
    key_path: Path
    chain_path: Path | None = None
    context: ssl.SSLContext = field(default_factory=_new_context)

    @classmethod
    def first_of(cls, vhosts: Iterable[Mapping[str, Any]], resolve: Callable[[str], Path]) -> VhostCertificate | None:
        """The first vhost (in order) whose ``host.tls`` names both a CertPath and a KeyPath;
        relative paths are resolved by ``resolve`` (against Server.xml's directory)."""
        for vhost in vhosts:
            host = vhost.get("host")
            tls = host.get("tls") if isinstance(host, Mapping) else None
            if not isinstance(tls, Mapping) or not tls.get("certPath") or not tls.get("keyPath"):
                continue
            chain = tls.get("chainCertPath")
            return cls(str(vhost.get("name") or ""), resolve(str(tls["certPath"])), resolve(str(tls["keyPath"])),
                       resolve(str(chain)) if chain else None)
        return None

    def reload(self) -> None:
        """Load the files into the live context; raises OSError/ssl.SSLError and keeps the old chain."""
        if self.chain_path is not None:
            # the chain goes after the certificate: clients are sent the full chain
            combined = self.key_path.parent / f".{self.cert_path.name}.llhls-fullchain.pem"
            combined.write_bytes(self.cert_path.read_bytes() + b"\n" + self.chain_path.read_bytes())
            self.context.load_cert_chain(combined, self.key_path)
        else:
            self.context.load_cert_chain(self.cert_path, self.key_path)
        log.info("llhls tls certificate loaded vhost=%s cert=%s", self.vhost, self.cert_path)

    def try_load(self) -> bool:
        try:
            self.reload()
        except (OSError, ssl.SSLError) as exc:
            log.error("llhls tls certificate could not be loaded vhost=%s cert=%s error=%s (TLS port not opened)",
                      self.vhost, self.cert_path, exc)
            return False
        return True


@dataclass
class ServedCertificate:
    """The certificate the LL-HLS TLS listener serves, reloadable from any thread (the server actor
    calls ``reload_certificate`` on ``:reloadCertificate``). Empty until the listener opens."""

    certificate: VhostCertificate | None = None
    loop: asyncio.AbstractEventLoop | None = None
    timeout: float = 30.0

    def serving(self, certificate: VhostCertificate, loop: asyncio.AbstractEventLoop) -> None:
        self.certificate, self.loop = certificate, loop

    def reload_certificate(self, vhost: str) -> bool:
        certificate, loop = self.certificate, self.loop
        if certificate is None or loop is None or vhost != certificate.vhost:
            return True
        # handshakes use the context on the event loop, so the new chain is loaded there, between them
        try:
            return asyncio.run_coroutine_threadsafe(self._reload(certificate), loop).result(self.timeout)
        except (RuntimeError, TimeoutError) as exc:  # the loop has stopped (shutdown)
            log.error("llhls tls certificate reload not done vhost=%s error=%r", vhost, exc)
            return False

    @staticmethod
    async def _reload(certificate: VhostCertificate) -> bool:
        try:
            certificate.reload()
        except (OSError, ssl.SSLError) as exc:
            log.error("llhls tls certificate reload failed vhost=%s cert=%s error=%s (the old chain keeps serving)",
                      certificate.vhost, certificate.cert_path, exc)
            return False
        return True


class _ContextConfig(Config):
    """A hypercorn config that serves TLS with our live context instead of building one from files."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._context


@dataclass
class H2Listener:
    """hypercorn serving one ASGI app on one already bound socket, TLS with ALPN h2 and http/1.1."""

    app: Any
    sock: socket.socket
    certificate: VhostCertificate
    keep_alive_timeout: float = 30.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def config(self) -> Config:
        config = _ContextConfig(self.certificate.context)
        config.keep_alive_timeout = self.keep_alive_timeout
        config.graceful_timeout = 1.0  # blocking playlist reloads would hold a graceful stop for their full wait
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        return config

    async def serve(self) -> None:
        """Run until ``stop()``."""
        sockets = Sockets(secure_sockets=[self.sock], insecure_sockets=[], quic_sockets=[])
        await worker_serve(wrap_app(self.app, 0, "asgi"), self.config(), sockets=sockets,
                           shutdown_trigger=self._stop.wait)

    def stop(self) -> None:
        self._stop.set()
