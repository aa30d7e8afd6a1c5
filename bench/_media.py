"""Shared helpers for bench/ingest.py, bench/push.py and bench/llhls.py.

- the 720p30 H.264 3 Mbit/s + AAC test file, generated once with ffmpeg and cached;
- CPU seconds and RSS of processes from /proc (no psutil), machine-wide CPU from /proc/stat;
- Kiln as a subprocess at ``--log-level info`` (the e2e helper runs it at debug, which costs CPU);
- nginx-rtmp (``live on``, no record) and a minimal static nginx http server, each with a temp prefix.

Work files live under ``$KILN_BENCH_DIR`` (default ``<tmp>/kiln-bench``): ``media/`` is kept between
runs, every run gets its own ``run-*`` directory with the logs of Kiln, nginx and the ffmpeg peers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml  # noqa: E402
from tests.peers.ports import free_tcp_port, wait_tcp, wait_until  # noqa: E402
from tests.peers.process import Peer, run_checked  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
MEDIA_SECONDS = 20


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def bench_dir() -> Path:
    path = Path(os.environ.get("KILN_BENCH_DIR") or Path(tempfile.gettempdir()) / "kiln-bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(name: str) -> Path:
    """A fresh directory for one run's logs and configs."""
    return Path(tempfile.mkdtemp(prefix=f"run-{name}-", dir=bench_dir()))


def media_720p(seconds: int = MEDIA_SECONDS) -> Path:
    """720p30 testsrc2, H.264 3 Mbit/s GOP 2 s no B-frames + AAC 128k 48 kHz, FLV; made once, then cached."""
    target = bench_dir() / "media" / f"testsrc2_1280x720_{seconds}s.flv"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial.flv")
    run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                 "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                 "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                 "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M",
                 "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-t", str(seconds), "-f", "flv", partial],
                timeout=300)  # fmt: skip
    partial.rename(target)
    return target


# ---------------------------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * PAGE / 1e6


def thread_count(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) over all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


@dataclass
class CpuWindow:
    """CPU seconds used by each of `pids` (and the whole machine's busy share) over a wall-clock window."""

    pids: dict[str, list[int]]
    wall: float = 0.0
    used: dict[str, float] | None = None
    machine_busy_pct: float = 0.0

    @classmethod
    def measure(cls, pids: dict[str, list[int]], seconds: float, sample: float = 1.0,
                on_sample: object = None) -> CpuWindow:
        win = cls(pids)
        start_cpu = {k: [cpu_seconds(p) for p in v] for k, v in pids.items()}
        b0, t0 = machine_busy()
        w0 = time.monotonic()
        end = w0 + seconds
        while (now := time.monotonic()) < end:
            time.sleep(min(sample, end - now))
            if callable(on_sample):
                on_sample()
        win.wall = time.monotonic() - w0
        b1, t1 = machine_busy()
        win.used = {}
        for k, v in pids.items():
            # a process that died mid-window counts what it used until then (cpu_seconds -> 0 would
            # go negative): clamp each process at >= 0
            win.used[k] = sum(max(0.0, cpu_seconds(p) - s) for p, s in zip(v, start_cpu[k], strict=True))
        win.machine_busy_pct = 100.0 * (b1 - b0) / max(1, t1 - t0)
        return win

    def per_minute(self, key: str, units: int) -> float:
        """CPU seconds of `key` per unit-minute (e.g. per stream-minute)."""
        assert self.used is not None
        return self.used[key] / (units * self.wall / 60.0) if units else 0.0

    def core_pct(self, key: str) -> float:
        assert self.used is not None
        return 100.0 * self.used[key] / self.wall


def pctl(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> str:
    if not values:
        return "n=0"
    return (f"n={len(values)} p50={pctl(values, 50):.1f} p90={pctl(values, 90):.1f} p99={pctl(values, 99):.1f} "
            f"max={max(values):.1f} mean={statistics.fmean(values):.1f}")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- Kiln


class BenchKiln(KilnProcess):
    """``kiln serve`` at a chosen log level (info by default: the e2e helper's debug level costs CPU)."""

    def __init__(self, workdir: Path, *, log_level: str = "info", ports: Ports | None = None) -> None:
        ports = ports or Ports()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, server_xml(ports, workdir / "records"), ports)
        self.log_level = log_level
        self.tree = ROOT  # the source tree Kiln runs from (a bench may compare another checkout's Kiln)

    def start(self, timeout: float = 30.0) -> BenchKiln:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiln.cli", "serve", "-c", str(self.config_path), "-d", str(self.data_dir),
             "--log-level", self.log_level],
            cwd=self.tree, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiln exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if self.api.get("/v1/version", timeout=1).status_code == 200 and self.rtmp_ready():
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"kiln did not become ready:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rtmp_url(self, stream: str, app: str = "app") -> str:
        return f"rtmp://127.0.0.1:{self.ports.rtmp}/{app}/{stream}"

    def stream_names(self, app: str = "app") -> list[str]:
        r = self.api.get(f"/v1/vhosts/default/apps/{app}/streams", timeout=10)
        return list(r.json().get("response") or []) if r.status_code == 200 else []

    def log_findings(self) -> dict[str, int]:
        """Counts of WARNING/ERROR/Traceback lines and of drop/skip mentions in Kiln's log."""
        counts = {"WARNING": 0, "ERROR": 0, "Traceback": 0, "drop": 0, "skip": 0}
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return counts
        for line in text.splitlines():
            line = line.replace("dropped_bytes=0", "").replace("dropped=0", "")
            for key in counts:
                if key in line if key[0].isupper() else key in line.lower():
                    counts[key] += 1
        return counts

    def log_lines(self, *needles: str, limit: int = 8) -> list[str]:
        """A few distinct log lines (with the timestamp cut off) containing any of `needles`."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        seen: dict[str, int] = {}
        for line in text.splitlines():
            if any(n in line for n in needles):
                key = line.split(" ", 2)[-1][:220]
                seen[key] = seen.get(key, 0) + 1
        return [f"{n}x {k}" for k, n in list(seen.items())[:limit]]


# ---------------------------------------------------------------------------------------------- nginx

_NGINX_HEAD = """\
load_module {{module}};
daemon off;
master_process off;
worker_processes 1;
pid {{workdir}}/nginx.pid;
error_log {{workdir}}/error.log warn;
events {{{{ worker_connections 4096; }}}}
rtmp {{{{
    server {{{{
        listen 127.0.0.1:{{port}};
        chunk_size 4096;
        {applications}
    }}}}
}}}}
"""

_NGINX_STAT = """\
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


def nginx_rtmp_conf(applications: str, stat: bool = True) -> str:
    """An nginx-rtmp config template (for ``_start_nginx``) with these ``application`` blocks, written as
    ``str.format`` text (braces doubled); ``stat`` adds the HTTP ``/stat`` page on ``{http_port}``."""
    return _NGINX_HEAD.format(applications=applications) + (_NGINX_STAT if stat else "")


_NGINX_RTMP_CONF = nginx_rtmp_conf("application live {{ live on; }}\n        application app {{ live on; }}")

_NGINX_HTTP_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s mp4; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        add_header Cache-Control no-cache;
    }}
}}
"""


@dataclass
class Nginx:
    """One nginx process (master_process off: the PID does all the work, so its CPU is nginx's CPU)."""

    peer: Peer
    port: int
    workdir: Path
    http_port: int = 0

    @property
    def pid(self) -> int:
        return self.peer.pid

    def stop(self) -> None:
        self.peer.stop()

    def rtmp_streams(self, app: str) -> dict[str, dict[str, int]]:
        """nginx-rtmp's rtmp_stat for `app`: {stream: {"publishing": 0/1, "bytes_in": n, "bw_in": bit/s}}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/stat", timeout=5) as resp:
            root = ET.fromstring(resp.read())
        found: dict[str, dict[str, int]] = {}
        for application in root.iter("application"):
            if application.findtext("name") != app:
                continue
            for stream in application.iter("stream"):
                publishing = stream.find("publishing") is not None or any(
                    c.find("publishing") is not None for c in stream.iter("client"))
                found[stream.findtext("name") or ""] = {
                    "publishing": int(publishing), "bytes_in": int(stream.findtext("bytes_in") or 0),
                    "bw_in": int(stream.findtext("bw_in") or 0)}
        return found

    def error_log_tail(self, n: int = 10) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / "error.log").read_text(errors="replace").splitlines()[-n:])
        return ""


def _start_nginx(workdir: Path, conf: str, name: str, **fmt: object) -> Nginx:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    port = free_tcp_port()
    http_port = free_tcp_port() if "{http_port}" in conf else 0
    conf_path = workdir / "nginx.conf"
    conf_path.write_text(conf.format(workdir=workdir, port=port, http_port=http_port, **fmt))
    # -e: nginx opens its compiled-in error log before reading the config; point it at our dir.
    argv = ["nginx", "-p", f"{workdir}/", "-c", str(conf_path), "-e", str(workdir / "startup.log")]
    peer = Peer.spawn(name, argv, workdir, stop_signal=signal.SIGQUIT)
    wait_tcp("127.0.0.1", port, 15, proc=peer)
    if http_port:
        wait_tcp("127.0.0.1", http_port, 15, proc=peer)
    return Nginx(peer, port, workdir, http_port)


def start_nginx_rtmp(workdir: Path) -> Nginx:
    """nginx-rtmp with applications ``live`` and ``app``, ``live on``, nothing recorded."""
    return _start_nginx(workdir, _NGINX_RTMP_CONF, "nginx-rtmp", module=RTMP_MODULE)


def start_nginx_http(workdir: Path, root: Path, *, sendfile: bool = True) -> Nginx:
    """A static nginx http server for `root` (sendfile unless told not, keep-alive, no access log)."""
    conf = _NGINX_HTTP_CONF if sendfile else _NGINX_HTTP_CONF.replace("sendfile on;", "sendfile off;")
    return _start_nginx(workdir, conf, "nginx-http", root=root)


# ---------------------------------------------------------------------------------------------- ffmpeg


def ffmpeg_publish(url: str, media: Path, log_dir: Path, name: str = "ffmpeg-pub") -> Peer:
    """``ffmpeg -re -stream_loop -1 -i media -c copy -f flv url``."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-stream_loop", "-1",
            "-i", str(media), "-c", "copy", "-f", "flv", "-flvflags", "no_duration_filesize", url]
    return Peer.spawn(name, argv, log_dir)


def timecoded_publish(url: str, log_dir: Path, *, width: int = 1280, height: int = 720, bitrate: str = "2500k",
                      bufsize: str | None = None, name: str = "ffmpeg-timecoded") -> Peer:
    """A live camera stand-in for glass-to-glass: ffmpeg encodes testsrc2 in real time (libx264 zerolatency,
    no B-frames, GOP 1 s, AAC) with the wall clock at each frame's capture drawn on top as bars
    (tests/e2e/webrtc/timecode.py, read back by the player) and publishes it to ``url`` over RTMP."""
    from tests.e2e.webrtc.timecode import Timecode, publish_timecoded_rtmp

    return publish_timecoded_rtmp(url, log_dir, timecode=Timecode(width, height), bitrate=bitrate,
                                  bufsize=bufsize, name=name)


def ffmpeg_relay(src: str, dst: str, log_dir: Path, name: str = "ffmpeg-relay") -> Peer:
    """``ffmpeg -i src -c copy -f flv dst``: the reference RTMP relay."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-rw_timeout", "10000000",
            "-i", src, "-c", "copy", "-f", "flv", "-flvflags", "no_duration_filesize", dst]
    return Peer.spawn(name, argv, log_dir)


def stop_all(peers: Iterable[Peer]) -> None:
    for p in peers:
        with contextlib.suppress(Exception):
            p.stop(grace=2)


def dead(peers: Iterable[Peer]) -> list[str]:
    """Names + stderr tail of peers that exited."""
    return [f"{p.name} pid={p.pid} rc={p.returncode}: {p.stderr_tail(3)}" for p in peers if not p.alive]


@contextlib.contextmanager
def cleanup(*stoppers: object) -> Iterator[list[object]]:
    """Collects objects with .stop()/.close(); stops them in reverse order on exit."""
    items: list[object] = list(stoppers)
    try:
        yield items
    finally:
        for item in reversed(items):
            for meth in ("close", "stop"):
                fn = getattr(item, meth, None)
                if callable(fn):
                    with contextlib.suppress(Exception):
                        fn()
                    break


__all__ = ["BenchKiln", "CpuWindow", "Nginx", "Peer", "Ports", "wait_until"]
