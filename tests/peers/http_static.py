"""A static file server on 127.0.0.1 in a background thread (for HLS fixtures and player pages)."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.peers.ports import free_tcp_port

log = logging.getLogger(__name__)


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def end_headers(self) -> None:
        if self.server.cors:
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        self.server.requests.append(self.path)
        log.debug("http_static %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cors: bool = False
    requests: list[str]


@dataclass
class StaticHttpServer:
    """Serves `directory` on http://127.0.0.1:<free port>/; `requests` lists the paths asked for."""

    directory: Path
    cors: bool = False
    port: int = 0
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> StaticHttpServer:
        self.port = free_tcp_port()
        handler = functools.partial(_Handler, directory=str(self.directory))
        self._server = _Server(("127.0.0.1", self.port), handler)
        self._server.cors = self.cors
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-static-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def requests(self) -> list[str]:
        return [] if self._server is None else list(self._server.requests)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> StaticHttpServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
