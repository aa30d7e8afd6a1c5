"""nginx with the RTMP module as an RTMP origin / push destination that records what arrives.

Every published stream of application `live` (and any other listed application) is recorded to
`<workdir>/record/<app>/<stream>.flv`, so a test can check what Kiln pushed. An HTTP `rtmp_stat`
endpoint tells which streams are being published right now.
"""

from __future__ import annotations

import logging
import signal
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.ports import free_tcp_port, wait_tcp, wait_until
from tests.peers.process import Peer

log = logging.getLogger(__name__)

NGINX = "nginx"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

_CONF = """\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
{apps}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /stat {{ rtmp_stat all; }}
    }}
}}
"""

_APP = """\
        application {name} {{
            live on;
            record all;
            record_path {record_dir};
            record_unique off;
        }}"""


@dataclass
class NginxRtmp:
    """An nginx-rtmp server on 127.0.0.1:<free port>. `start()` returns once it accepts connections."""

    workdir: Path
    applications: tuple[str, ...] = ("live",)
    port: int = 0
    http_port: int = 0
    peer: Peer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    def record_dir(self, app: str = "live") -> Path:
        return self.workdir / "record" / app

    def start(self, timeout: float = 15.0) -> NginxRtmp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.port = self.port or free_tcp_port()  # a restart keeps its ports (fault tests)
        self.http_port = self.http_port or free_tcp_port()
        apps = []
        for app in self.applications:
            self.record_dir(app).mkdir(parents=True, exist_ok=True)
            apps.append(_APP.format(name=app, record_dir=self.record_dir(app)))
        self.conf_path.write_text(
            _CONF.format(module=RTMP_MODULE, workdir=self.workdir, port=self.port, http_port=self.http_port,
                         apps="\n".join(apps))
        )
        # -e: nginx opens its compiled-in error log before reading the config; point it at our dir.
        argv = [NGINX, "-p", f"{self.workdir}/", "-c", str(self.conf_path), "-e", str(self.workdir / "startup.log")]
        self.peer = Peer.spawn("nginx-rtmp", argv, self.workdir, stop_signal=signal.SIGQUIT)
        wait_tcp("127.0.0.1", self.port, timeout, proc=self.peer)
        wait_tcp("127.0.0.1", self.http_port, timeout, proc=self.peer)
        log.info("nginx-rtmp ready port=%d http_port=%d workdir=%s", self.port, self.http_port, self.workdir)
        return self

    def url(self, app: str = "live", stream: str = "s") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{stream}"

    def recorded(self, stream: str, app: str = "live") -> Path:
        """Where nginx records `stream` (the file exists once a publisher has sent data)."""
        return self.record_dir(app) / f"{stream}.flv"

    def publishing(self, app: str = "live") -> list[str]:
        """Names of streams with an active publisher in `app`, from rtmp_stat."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/stat", timeout=5) as resp:
            root = ET.fromstring(resp.read())
        names = []
        for application in root.iter("application"):
            if application.findtext("name") != app:
                continue
            for stream in application.iter("stream"):
                if stream.find("publishing") is not None or any(
                    c.find("publishing") is not None for c in stream.iter("client")
                ):
                    names.append(stream.findtext("name") or "")
        return names

    def wait_publishing(self, stream: str, app: str = "live", timeout: float = 15.0) -> None:
        """Wait until a publisher is sending `stream` to this server."""
        wait_until(lambda: stream in self.publishing(app), timeout, f"nginx-rtmp publish of {app}/{stream}",
                   proc=self.peer)

    def wait_recorded(self, stream: str, app: str = "live", *, min_bytes: int = 1, timeout: float = 15.0) -> Path:
        """Wait until the recording of `stream` holds at least `min_bytes`; return its path."""
        path = self.recorded(stream, app)
        wait_until(lambda: path.exists() and path.stat().st_size >= min_bytes, timeout,
                   f"nginx-rtmp recording {path} >= {min_bytes} bytes", proc=self.peer)
        return path

    def stop(self) -> None:
        if self.peer is not None:
            self.peer.stop()

    def __enter__(self) -> NginxRtmp:
        return self.start() if self.peer is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
