"""An RTSP pull source (gst-rtsp-server through the system python3) for Kiln's RTSP pull tests.

Serves rtsp://127.0.0.1:<free port>/cam: 320x180 30 fps H.264 (1 s GOP) + AAC 48 kHz stereo, over
TCP-interleaved or UDP transport. `start()` returns after a DESCRIBE has succeeded, i.e. the
pipeline is built and the stream can be pulled.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.ports import free_tcp_port, wait_tcp, wait_until
from tests.peers.process import Peer

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("gst_rtsp_source.py")


def rtsp_request(url: str, method: str = "DESCRIBE", timeout: float = 5.0) -> tuple[int, str]:
    """Send one RTSP request on a fresh connection; return (status code, full response head + body)."""
    host_port = url.split("/")[2]
    host, _, port = host_port.partition(":")
    request = f"{method} {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: kiln-tests\r\n\r\n"
    with socket.create_connection((host, int(port or 554)), timeout=timeout) as s:
        s.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return code, (head + b"\r\n\r\n" + body).decode(errors="replace")


@dataclass
class RtspSource:
    """gst-rtsp-server test source. `url` is valid after `start()`."""

    workdir: Path
    mount: str = "/cam"
    max_seconds: int = 600
    port: int = 0
    peer: Peer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout: float = 20.0) -> RtspSource:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_port()
        argv = [SYSTEM_PYTHON, str(SCRIPT), str(self.port), self.mount, str(self.max_seconds)]
        self.peer = Peer.spawn("gst-rtsp-source", argv, self.workdir)
        wait_tcp("127.0.0.1", self.port, timeout, proc=self.peer)
        wait_until(lambda: rtsp_request(self.url)[0] == 200, timeout, f"RTSP DESCRIBE {self.url}", proc=self.peer)
        log.info("rtsp source ready url=%s", self.url)
        return self

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()

    def __enter__(self) -> RtspSource:
        return self.start() if self.peer is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
