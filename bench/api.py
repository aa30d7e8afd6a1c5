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

Then the pairs section (issue 16, target 5: pairs limited only by the fsyncs they wait for): start/stop
pairs at ``--pair-clients`` client counts, each row with the journal's fsyncs/s, records per fsync, mean
fsync, the share of the window in fsync, Kiln's CPU per pair and a pair's latency split from Kiln's own
command timings (``kiln_api_command_seconds``: actor, journal, loop; the rest is HTTP and the client).
``--kiln-tree DIR`` runs another checkout's Kiln in turns with this one (``--turns``), for before/after;
with ``--together`` both run at once, each with its own clients, so both rows of a turn share the same load.

Usage: .venv/bin/python bench/api.py [--seconds 4] [--concurrency 16] [--only all|reads|pairs]
       [--pair-clients 4,16,48] [--kiln-tree ../main --turns 3]
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

    def __init__(self, name: str, argv: list[str], log: Path, base_url: str, env: dict[str, str],
                 cwd: Path = ROOT) -> None:
        self.name, self.base_url, self.log = name, base_url, log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=env, cwd=cwd)

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


def start_kiln(work: Path, servers: list[Server], tree: Path = ROOT) -> Server:
    """``kiln serve`` from ``tree`` (this checkout, or another one to compare with: ``--kiln-tree``)."""
    ports = Ports()
    (work / "records").mkdir()
    config = work / "Server.xml"
    config.write_text(server_xml(ports, work / "records"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tree)}
    server = Server("kiln", [sys.executable, "-m", "kiln.cli", "serve", "-c", str(config), "-d", str(work / "data")],
                    work / "kiln.log", f"http://127.0.0.1:{ports.api}", env, cwd=tree)
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
                   "kiln_journal_fsync_seconds_sum", "kiln_api_commands_total",
                   *(f'kiln_api_command_seconds_total{{phase="{name}"}}' for name in ("actor", "journal", "loop")))


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


PAIR_HEADERS = ["kiln", "clients", "pairs/s", "p50 ms", "mean ms", "fsyncs/s", "rec/fsync", "fsync ms", "fsync busy",
                "cpu us/pair", "actor ms", "journal ms", "loop ms", "rest ms"]


def pair_row(label: str, clients: int, pairs: Result) -> list[object]:
    """One run of start/stop pairs set against the disk: the journal's fsyncs in the same window (records per
    fsync, mean fsync, the share of the window spent in fsync), Kiln's CPU per pair, and a pair's mean latency
    split by Kiln's own command timings (``kiln_api_command_seconds``, two commands per pair): ``actor`` (to the
    actor's answer), ``journal`` (its events made durable: the commit under way, then its own write + fsync),
    ``loop`` (the request resuming) and ``rest`` (HTTP both ways and the client)."""
    j, secs = pairs.journal, pairs.seconds
    count = pairs.requests / 2
    fsyncs = j.get("kiln_journal_fsync_seconds_count", 0.0)
    fsync_sum = j.get("kiln_journal_fsync_seconds_sum", 0.0)
    mean_ms = sum(pairs.latencies) / max(1, len(pairs.latencies)) * 1000
    row: list[object] = [label, clients, count / secs, pairs.ms(50), mean_ms, fsyncs / secs,
                         j.get("kiln_journal_records_total", 0.0) / max(1.0, fsyncs),
                         fsync_sum / max(1.0, fsyncs) * 1000, f"{fsync_sum / secs:.0%}",
                         pairs.cpu / max(1.0, count) * 1e6]
    commands = j.get("kiln_api_commands_total", 0.0)
    if commands:
        phases = [j.get(f'kiln_api_command_seconds_total{{phase="{name}"}}', 0.0) / commands * 2 * 1000
                  for name in ("actor", "journal", "loop")]
        row += [*phases, mean_ms - sum(phases)]
    else:  # a Kiln without the command timings
        row += ["-", "-", "-", "-"]
    return row


def pairs_verdict(rows: list[list[object]], raw_rate: float) -> str:
    """Issue 16 target 5 for this tree's runs: at the client count with the most pairs/s, is the journal in
    fsync (nearly) the whole window?"""
    mine = [row for row in rows if row[0] == "this"]
    if not mine:
        return ""
    best = max(mine, key=lambda row: float(str(row[2])))
    busy = float(str(best[8]).rstrip("%")) / 100
    waits = ""
    if best[11] != "-":  # the pair's wait for its events to be durable, against its whole latency
        share = float(str(best[11])) / float(str(best[4]))
        waits = f", {share:.0%} of the pair's mean latency spent waiting for the journal"
    return (f"start/stop pairs: best {float(str(best[2])):,.0f} pairs/s at {best[1]} clients "
            f"({float(str(best[9])):,.0f} us of Kiln CPU per pair), the journal in fsync {busy:.0%} of the "
            f"window{waits}; raw write+fsync loop on the same "
            f"disk, same run: {raw_rate:,.0f}/s. Target (issue 16, 5): pairs limited only by the fsyncs they wait "
            f"for, i.e. fsync busy near 100 % at the best client count: "
            f"{'met' if busy >= 0.8 else 'NOT met (the rest is CPU: actor, journal encoding, HTTP)'}")


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


def run_pairs(work: Path, kiln: Server, other: Server | None, args: argparse.Namespace) -> None:
    """Start/stop pairs at each ``--pair-clients`` count; with ``--kiln-tree`` the other Kiln takes turns with
    this one (this, other, this, ... ``--turns`` times), so both meet the same load on a shared machine."""
    rows: list[list[object]] = []
    for clients in args.pair_clients:
        for _turn in range(args.turns):
            if args.together and other is not None:  # both Kilns in the same window, each with its own clients
                async def both(n: int = clients) -> list[Result]:
                    return list(await asyncio.gather(*(drive(server, push_pair, n, args.seconds, args.warmup,
                                                             args.client) for server in (kiln, other))))

                mine, theirs = asyncio.run(both())
                rows += [pair_row("this", clients, mine), pair_row("other", clients, theirs)]
                continue
            for label, server in (("this", kiln), ("other", other)):
                if server is None:
                    continue
                result = asyncio.run(drive(server, push_pair, clients, args.seconds, args.warmup, args.client))
                rows.append(pair_row(label, clients, result))
    table(PAIR_HEADERS, rows)
    out("this = this checkout" + (f"; other = {args.kiln_tree}" if other is not None else "") +
        ". A pair = :startPush + :stopPush (two commands, each answered after its events are fsynced). "
        "fsync busy = share of the window the journal spent in fsync (timed up to the GIL taken back); "
        "actor/journal/loop = a pair's mean time "
        "in Kiln's command phases (kiln_api_command_seconds: to the actor's answer, to the events being durable, "
        "to the request resuming), rest = mean - those (HTTP both ways, the client)")
    out(pairs_verdict(rows, raw_fsync_rate(work / "data", min(2.0, args.seconds))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured duration of each scenario")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load client (see above)")
    parser.add_argument("--only", choices=["all", "reads", "pairs"], default="all",
                        help="reads: the table against bare Starlette; pairs: the start/stop pairs section")
    parser.add_argument("--pair-clients", type=lambda text: [int(n) for n in text.split(",")], default=[4, 16, 48],
                        help="client counts for the pairs section (comma-separated; the API allows 64 connections "
                        "per client address, and the bench holds one more for /metrics)")
    parser.add_argument("--kiln-tree", type=Path, help="another checkout whose Kiln takes turns with this one "
                        "in the pairs section (e.g. a worktree of main)")
    parser.add_argument("--turns", type=int, default=1, help="turns of this/other per client count")
    parser.add_argument("--together", action="store_true",
                        help="with --kiln-tree: drive both Kilns at once (each with --pair-clients clients) instead "
                        "of in turns, so each row pair shares the same moments of a machine others load; CPU per "
                        "pair is the figure to compare (pairs/s and latency are halved by sharing the cores)")
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
        if args.only in ("all", "reads"):
            run_reads(work, kiln, canned, servers, args)
        if args.only in ("all", "pairs"):
            other = None
            if args.kiln_tree is not None:
                (work / "other").mkdir()
                other = start_kiln(work / "other", servers, args.kiln_tree.resolve())
                prepare_kiln(other)
            run_pairs(work, kiln, other, args)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_reads(work: Path, kiln: Server, canned: dict[str, Any], servers: list[Server],
              args: argparse.Namespace) -> None:
    """Every scenario against the bare Starlette reference, in turns; the read-route target."""
    bare = start_bare(work, canned, servers)
    rows = []
    for label, call, unit in SCENARIOS:
        k = asyncio.run(drive(kiln, call, args.concurrency, args.seconds, args.warmup, args.client))
        b = asyncio.run(drive(bare, call, args.concurrency, args.seconds, args.warmup, args.client))
        rows.append([label + (" (latency per pair)" if unit == "pair" else ""), k.rate, k.ms(50), k.ms(99),
                     k.cpu / max(1, k.requests) * 1e6, b.rate, b.ms(50), b.ms(99), b.cpu / max(1, b.requests) * 1e6,
                     f"{k.rate / b.rate:.2f}", f"{(b.cpu / max(1, b.requests)) / (k.cpu / max(1, k.requests)):.2f}",
                     f"{k.errors}/{b.errors}"])
    table(["scenario", "kiln req/s", "p50 ms", "p99 ms", "cpu us/req", "bare req/s", "p50 ms", "p99 ms",
           "cpu us/req", "kiln/bare", "cpu bare/kiln", "errors k/b"], rows)
    out("req/s counts HTTP requests (a pair is 2); latency is per request, or per pair where marked; "
        "cpu bare/kiln is the same ratio from server CPU per request, steadier on a busy machine")
    reads = [(str(row[0]), float(str(row[9]))) for row in rows if "pair" not in str(row[0])]
    worst = min(reads, key=lambda r: r[1])
    out(f"read routes: worst kiln/bare {worst[1]:.2f} ({worst[0]}); target >= 0.50 for every read route: "
        f"{'met' if worst[1] >= 0.5 else 'NOT met'}")
    out()


if __name__ == "__main__":
    main()
