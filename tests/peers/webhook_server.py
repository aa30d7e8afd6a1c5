"""An admission webhook control server for e2e tests, run in its own process.

``python -m tests.peers.webhook_server PORT LOG`` answers OME's admission POSTs by the stream name
(the URL's path ``/app/<stream>[/file]``): ``deny*`` denies with a reason, ``redirect*`` sends ``new_url`` to
``<name>-moved``, ``short*`` allows with a 3000 ms ``lifetime``, ``slow*`` answers after 6 s,
``fail*`` answers HTTP 500, anything else is allowed; closings get ``{}``. A webhook subscription's POST
(``{"subscription": ..., "events": [...]}``) gets 200 ``{}``. Every request is appended
to LOG as one JSON line (signature header, raw body, arrival time) for the test to verify on its own.
:class:`WebhookServer` starts it on a free port, waits for it and stops it by PID.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.peers.ports import free_tcp_port, wait_tcp
from tests.peers.process import Peer

SLOW_S = 6.0
LIFETIME_MS = 3000


def answer_for(request: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """(HTTP status, JSON answer, delay in seconds) for one opening request."""
    url = request["url"]
    parts = urlsplit(url)
    segments = parts.path.split("/")          # "", app, stream[, file]
    name = segments[2] if len(segments) > 2 else ""
    if request.get("status") == "closing":
        return 200, {}, 0.0
    if name.startswith("deny"):
        return 200, {"allowed": False, "reason": f"{name} is not on the list"}, 0.0
    if name.startswith("redirect"):
        moved_path = "/".join([*segments[:2], f"{name}-moved", *segments[3:]])
        moved = urlunsplit((parts.scheme, parts.netloc, moved_path, "", ""))
        return 200, {"allowed": True, "new_url": moved}, 0.0
    if name.startswith("short"):
        return 200, {"allowed": True, "lifetime": LIFETIME_MS}, 0.0
    if name.startswith("slow"):
        return 200, {"allowed": True}, SLOW_S
    if name.startswith("fail"):
        return 500, {"allowed": True}, 0.0
    return 200, {"allowed": True, "reason": "welcome"}, 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record = {"at": time.time(), "path": self.path, "signature": self.headers.get("X-OME-Signature"),
                  "content_type": self.headers.get("Content-Type"), "body": raw.decode("utf-8", "replace")}
        with self.server.lock, open(self.server.log_path, "a") as log:
            log.write(json.dumps(record) + "\n")
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, dict) and "events" in parsed:
                status, answer, delay = 200, {}, 0.0
            else:
                status, answer, delay = answer_for(parsed["request"])
        except (ValueError, KeyError, TypeError):
            status, answer, delay = 400, {"error": "bad request"}, 0.0
        time.sleep(delay)
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        sys.stderr.write(format % args + "\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    log_path: Path
    lock: threading.Lock


def serve(port: int, log_path: Path) -> None:
    server = _Server(("127.0.0.1", port), _Handler)
    server.log_path = log_path
    server.lock = threading.Lock()
    server.serve_forever()


@dataclass
class WebhookServer:
    """The control server above in its own process; ``requests()`` reads what it received."""

    workdir: Path
    port: int = 0
    peer: Peer | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "webhook-requests.jsonl"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/admission"

    def start(self) -> WebhookServer:
        """Starts it; again on the same port after ``stop()`` (a receiver that was down comes back)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_tcp_port()
        self.peer = Peer.spawn("webhook-server", [sys.executable, "-m", "tests.peers.webhook_server",
                                                 str(self.port), str(self.log_path)], self.workdir,
                              cwd=Path(__file__).resolve().parents[2])
        wait_tcp("127.0.0.1", self.port, 15, proc=self.peer)
        return self

    def requests(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
