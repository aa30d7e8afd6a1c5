"""LL-HLS on its TLS port (Bind/Publishers/LLHLS/TLSPort), over HTTP/2.

OME documents LL-HLS over HTTP/2 for browsers: over HTTP/1.1 a browser opens at most six
connections per host, and hls.js's blocking playlist reloads (one per rendition, each held open
until the next part) stall everything else queued behind them. uvicorn speaks HTTP/1.1 only, so
this one listener runs on hypercorn (h2 + http/1.1 by ALPN); the plain LL-HLS port stays on uvicorn.

The listener's ``ssl.SSLContext`` is handed in (``kiln.config.tls.SniCertificates`` builds it: the
certificate is chosen per handshake by SNI among the vhosts, and reloads swap it for new handshakes).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

log = logging.getLogger(__name__)

ALPN = ["h2", "http/1.1"]


def alpn_protocols(http2: bool) -> list[str]:
    """What the listener offers by ALPN: ``Modules/HTTP2/Enable`` false (OME's switch) leaves HTTP/1.1 only."""
    return ALPN if http2 else ["http/1.1"]


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
    context: ssl.SSLContext
    keep_alive_timeout: float = 30.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def config(self) -> Config:
        config = _ContextConfig(self.context)
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
