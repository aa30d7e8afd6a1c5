"""REST API cost: requests/s and p50/p99 latency of Kiln next to a bare Starlette JSON endpoint.

``kiln serve`` runs as a subprocess (its own Server.xml, free ports, a temp data dir, fsync on, as a
user runs it). The reference is a bare Starlette app under uvicorn, in its own subprocess with the
same uvicorn settings, answering every route with the very bytes Kiln answered (recorded first) after
parsing the request's JSON body: so the ratio Kiln/bare is what Kiln's own work (auth, routing,
projections, actors, the durable journal) costs on top of HTTP + Starlette. ``--concurrency`` asyncio
workers, each on its own keep-alive connection, drive each scenario for ``--seconds`` (after a short
warm-up). The load client is a minimal HTTP/1.1 client on asyncio streams, not httpx: on a 2-core
machine httpx's own CPU capped both servers at the same few hundred requests/s, which hid the ratio
(``--client httpx`` still runs it that way). Calls measured:

- GET  /v1/vhosts                             the list a dashboard polls
- GET  /v1/vhosts/bench/apps/live             one app (with its output profiles)
- POST /v1/vhosts/bench/apps/live:pushes      the push list (10 tasks)
- POST :startPush then :stopPush              a durable pair: two journal appends, each fsynced

Server CPU per request (from /proc, over each scenario) is printed too: with 2 cores the client can
be the bottleneck, and then CPU/request still shows the server's cost.

Usage: .venv/bin/python bench/api.py [--seconds 4] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _control import ROOT, filesystem_of, machine, out, percentile, table  # noqa: E402

from tests.e2e.kiln_process import TOKEN, Ports, server_xml  # noqa: E402
from tests.peers.ports import free_tcp_port  # noqa: E402

AUTH = {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}
VHOST_PATH = "/v1/vhosts/bench"
APP = VHOST_PATH + "/apps/live"
PUSH = {"stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/live", "streamKey": "k"}

BARE_SERVER = r"""
import json, sys
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

with open(sys.argv[2]) as fh:
    canned = {key: (item["status"], item["body"].encode()) for key, item in json.load(fh).items()}

async def endpoint(request: Request) -> Response:
    raw = await request.body()
    if raw:
        json.loads(raw)
    path = request.url.path
    status, body = canned.get(f"{request.method} {path}", (404, b"{}"))
    return Response(body, status_code=status, media_type="application/json")

app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PATCH", "DELETE"])])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
                        lifespan="off", timeout_keep_alive=30)
uvicorn.Server(config).run()
"""


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu: float  # server CPU seconds over the run
    journal: dict[str, float] = field(default_factory=dict)  # Kiln's journal counters' change over the run


    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


# --- processes ------------------------------------------------------------------------------------------


class Server:
    """A subprocess we started; stopped by its own process group id only."""

    def __init__(self, name: str, argv: list[str], log: Path, base_url: str, env: dict[str, str]) -> None:
        self.name, self.base_url, self.log = name, base_url, log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=env, cwd=ROOT)

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, headers=AUTH, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_kiln(work: Path, servers: list[Server]) -> Server:
    ports = Ports()
    (work / "records").mkdir()
    config = work / "Server.xml"
    config.write_text(server_xml(ports, work / "records"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = Server("kiln", [sys.executable, "-m", "kiln.cli", "serve", "-c", str(config), "-d", str(work / "data")],
                    work / "kiln.log", f"http://127.0.0.1:{ports.api}", env)
    servers.append(server)
    server.wait_ready("/v1/version")
    return server


def start_bare(work: Path, canned: dict[str, Any], servers: list[Server]) -> Server:
    port = free_tcp_port()
    (work / "canned.json").write_text(json.dumps(canned))
    (work / "bare.py").write_text(BARE_SERVER)
    server = Server("bare starlette", [sys.executable, str(work / "bare.py"), str(port), str(work / "canned.json")],
                    work / "bare.log", f"http://127.0.0.1:{port}", dict(os.environ))
    servers.append(server)
    server.wait_ready("/v1/version")
    return server


# --- load -----------------------------------------------------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection: just enough client to keep the server, not itself, busy."""

    def __init__(self, base_url: str) -> None:
        hostport = base_url.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.prefix = f"Host: {hostport}\r\nAuthorization: {AUTH['Authorization']}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, json_body: Any = None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}"
        if json_body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return status

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class HttpxConnection:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, json_body: Any = None) -> int:
        if json_body is None:
            return (await self.client.request(method, path)).status_code
        return (await self.client.request(method, path, json=json_body)).status_code

    async def aclose(self) -> None:
        return None


Conn = RawConnection | HttpxConnection
Call = Callable[[Conn, int, int], Awaitable[int]]  # (connection, worker, n) -> requests made, negative on errors


def simple(method: str, path: str, body: Any = None) -> Call:
    async def call(conn: Conn, _worker: int, _n: int) -> int:
        return 1 if await conn.request(method, path, body) == 200 else -1

    return call


async def push_pair(conn: Conn, worker: int, n: int) -> int:
    task = f"w{worker}-{n}"
    ok = await conn.request("POST", APP + ":startPush", {**PUSH, "id": task}) == 200
    ok = await conn.request("POST", APP + ":stopPush", {"id": task}) == 200 and ok
    return 2 if ok else -2


async def drive(server: Server, call: Call, concurrency: int, seconds: float, warmup: float, client: str) -> Result:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, limits=limits, timeout=30) as shared:
        counter = [0]
        phase = {"measure": False, "stop": False}
        latencies: list[float] = []
        totals = {"requests": 0, "errors": 0}

        async def worker(index: int) -> None:
            conn: Conn = RawConnection(server.base_url) if client == "raw" else HttpxConnection(shared)
            try:
                while not phase["stop"]:
                    counter[0] += 1
                    t0 = time.perf_counter()
                    made = await call(conn, index, counter[0])
                    if phase["measure"] and not phase["stop"]:
                        latencies.append(time.perf_counter() - t0)
                        totals["requests"] += abs(made)
                        totals["errors"] += abs(made) if made < 0 else 0
            finally:
                await conn.aclose()

        tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
        await asyncio.sleep(warmup)
        journal0 = await journal_counters(shared) if server.name == "kiln" else {}
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        phase["measure"] = True
        await asyncio.sleep(seconds)
        phase["stop"] = True
        elapsed, cpu1 = time.perf_counter() - t0, server.cpu_seconds()
        journal1 = await journal_counters(shared) if server.name == "kiln" else {}
        await asyncio.gather(*tasks)
    latencies.sort()
    return Result(totals["requests"], totals["errors"], elapsed, latencies, cpu1 - cpu0,
                  {k: journal1[k] - journal0.get(k, 0.0) for k in journal1})


JOURNAL_METRICS = ("kiln_journal_records_total", "kiln_journal_commits_total", "kiln_journal_fsync_seconds_count",
                   "kiln_journal_fsync_seconds_sum")


async def journal_counters(client: httpx.AsyncClient) -> dict[str, float]:
    """Kiln's journal counters from ``GET /metrics`` (records, group commits, fsyncs and their time)."""
    text = (await client.get("/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in JOURNAL_METRICS:
            found[name] = float(value)
    return found


def raw_fsync_rate(directory: Path, seconds: float) -> float:
    """The disk's own answer, in the same run: a loop of a small ``write`` + ``fsync`` on one file in the
    directory Kiln's journal is in (what one commit at a time can reach)."""
    path = directory / "raw-fsync"
    count, deadline = 0, time.monotonic() + seconds
    with open(path, "ab") as fh:
        while time.monotonic() < deadline:
            fh.write(b"x" * 100)
            fh.flush()
            os.fsync(fh.fileno())
            count += 1
    path.unlink()
    return count / seconds


def fsync_line(pairs: Result, raw_rate: float) -> str:
    """Whether start/stop pairs wait on the disk: the journal's fsyncs during the pairs next to the raw rate."""
    j, secs = pairs.journal, pairs.seconds
    fsyncs = j.get("kiln_journal_fsync_seconds_count", 0.0)
    if not fsyncs:
        return "journal during the pairs: no fsync counted (is /metrics served?)"
    busy = j.get("kiln_journal_fsync_seconds_sum", 0.0) / secs
    return (f"start/stop pairs: {pairs.rate / 2:,.0f} pairs/s; journal meanwhile {fsyncs / secs:,.0f} fsyncs/s, "
            f"{j.get('kiln_journal_records_total', 0.0) / max(1.0, fsyncs):.1f} records per fsync, mean fsync "
            f"{j.get('kiln_journal_fsync_seconds_sum', 0.0) / fsyncs * 1000:.2f} ms, fsync busy {busy:.0%} of the "
            f"window; raw write+fsync loop on the same disk, same run: {raw_rate:,.0f}/s. Pairs are limited by the "
            f"fsyncs they wait for when the journal's fsync is busy most of the window "
            f"({'yes' if busy >= 0.8 else 'no: the rest is CPU (actors, journal, HTTP)'})")


SCENARIOS: list[tuple[str, Call, str]] = [
    ("GET /v1/vhosts (list)", simple("GET", "/v1/vhosts"), "request"),
    ("GET one vhost", simple("GET", VHOST_PATH), "request"),
    ("GET apps (list)", simple("GET", VHOST_PATH + "/apps"), "request"),
    ("GET one app", simple("GET", APP), "request"),
    ("POST :pushes (10 tasks)", simple("POST", APP + ":pushes", {}), "request"),
    ("startPush + stopPush pair", push_pair, "pair"),
]


def prepare_kiln(kiln: Server) -> dict[str, Any]:
    """Create what the scenarios read; record Kiln's answers for the bare server to replay."""
    with httpx.Client(base_url=kiln.base_url, headers=AUTH, timeout=10) as client:
        client.post("/v1/vhosts", json=[{"name": "bench", "host": {"names": ["bench.example"]}}]).raise_for_status()
        client.post("/v1/vhosts/bench/apps", json=[{"name": "live", "type": "live",
                                                     "publishers": {"push": {}, "file": {}, "llhls": {}}}])
        for k in range(10):
            client.post(APP + ":startPush", json={**PUSH, "id": f"standing{k}"}).raise_for_status()
        canned: dict[str, Any] = {}
        for method, path, body in (("GET", "/v1/version", None), ("GET", "/v1/vhosts", None), ("GET", VHOST_PATH, None),
                                   ("GET", VHOST_PATH + "/apps", None), ("GET", APP, None),
                                   ("POST", APP + ":pushes", {}), ("POST", APP + ":startPush", {**PUSH, "id": "x"}),
                                   ("POST", APP + ":stopPush", {"id": "x"})):
            r = client.request(method, path, json=body) if body is not None else client.request(method, path)
            canned[f"{method} {path}"] = {"status": r.status_code, "body": r.text}
    return canned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured duration of each scenario")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load client (see above)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-api-"))
    out(f"kiln bench/api.py  client={args.client}  concurrency={args.concurrency}  {args.seconds:g} s per scenario  "
        f"machine: {machine()}  load avg {os.getloadavg()[0]:.2f}")
    out(f"data dir {work / 'data'} on {filesystem_of(work)} (kiln serve journals with fsync on)")
    out()
    servers: list[Server] = []
    try:
        kiln = start_kiln(work, servers)
        canned = prepare_kiln(kiln)
        bare = start_bare(work, canned, servers)
        rows = []
        pairs: Result | None = None
        for label, call, unit in SCENARIOS:
            k = asyncio.run(drive(kiln, call, args.concurrency, args.seconds, args.warmup, args.client))
            if unit == "pair":
                pairs = k
            b = asyncio.run(drive(bare, call, args.concurrency, args.seconds, args.warmup, args.client))
            per = 2 if unit == "pair" else 1
            rows.append([label, k.rate, k.ms(50), k.ms(99), k.cpu / max(1, k.requests) * 1e6,
                         b.rate, b.ms(50), b.ms(99), b.cpu / max(1, b.requests) * 1e6,
                         f"{k.rate / b.rate:.2f}", f"{(b.cpu / max(1, b.requests)) / (k.cpu / max(1, k.requests)):.2f}",
                         f"{k.errors}/{b.errors}"])
            if per == 2:
                rows[-1][0] += " (latency per pair)"
        table(["scenario", "kiln req/s", "p50 ms", "p99 ms", "cpu us/req", "bare req/s", "p50 ms", "p99 ms",
               "cpu us/req", "kiln/bare", "cpu bare/kiln", "errors k/b"], rows)
        out("req/s counts HTTP requests (a pair is 2); latency is per request, or per pair where marked; "
            "cpu bare/kiln is the same ratio from server CPU per request, steadier on a busy machine")
        if pairs is not None:
            out(fsync_line(pairs, raw_fsync_rate(work / "data", min(2.0, args.seconds))))
        reads = [(row[0], float(row[9])) for row in rows if "pair" not in row[0]]
        worst = min(reads, key=lambda r: r[1])
        out(f"read routes: worst kiln/bare {worst[1]:.2f} ({worst[0]}); target >= 0.50 for every read route: "
            f"{'met' if worst[1] >= 0.5 else 'NOT met'}")
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
