"""LL-HLS serving under load, for bench/llhls.py (``--serve``, ``--load-viewers``); kept apart from its
latency parts so both evolve without touching each other.

(d) Request rates: ``h2load --h1`` (Debian nghttp2-client, C, not the limit) GETs one part, one segment
    and one chunklist (plain, with the session query a player has) of the live stream at ``-c`` 100 and
    1000 keep-alive clients, then the same bytes from nginx serving a static copy, alternating in the
    same run. Kiln's and nginx's CPU over each h2load run are read from /proc.
(e) Blocking-reload viewers: ``--procs`` client processes (this file run as ``--child``; asyncio on
    uvloop with a minimal HTTP/1.1 client, so the client costs a few microseconds a request) share N
    viewers. Each viewer follows the video and the audio chunklist as hls.js does in low-latency mode:
    blocking reload on the PRELOAD-HINT part (``_HLS_msn``/``_HLS_part``), then GET that part, gzip
    accepted. Lateness of a video part = downloaded - the moment it became available, the write of
    the frame that closes it (its last frame: Kiln predicts that frame's duration, so a part is cut
    when its last frame arrives). "late" = lateness > 100 ms. The reference, in the same run and at the same
    count, is nginx serving the static copy: each viewer GETs the playlist and a part every
    part-duration (nothing to wait for), with its GET times and CPU. Those GETs are spread over the period;
    Kiln's come in bursts, so the burst reference (``nginx-burst``, off with ``--no-burst``) gives nginx
    Kiln's shape: at every 0.5 s boundary of one clock shared by the client processes, every viewer GETs a
    file of a video part's size (and one of an audio part's, on a second connection) that nobody asked for
    before, all at the same instant; lateness = boundary -> last byte received. It runs twice: with
    sendfile, and with ``sendfile off`` (``nginx-burst-copy``: nginx copies from its memory into each
    socket, as Kiln writes a part from its memory). What the machine allows for ~200 MB per burst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_GET_RPS = 10_000
TARGET_CHUNKLIST_RPS = 8_000
TARGET_VS_NGINX = 0.3
TARGET_VIEWERS = 1_000
LATE_MS = 100.0

part_samples: Any = None  # bench/llhls.py's moof reader, imported by the client process (run_child)
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
_PART_NAME = re.compile(rb"part_(\d+)_(\d+)_(\d+)_")


# ---------------------------------------------------------------------------------------------- h2load


@dataclass
class H2Result:
    req_s: float
    succeeded: int
    failed: int
    cpu_pct: float  # the server's share of one core over the run
    note: str = ""
    client_pct: float = 0.0  # h2load's own share of one core over the run (100: it was the limit)


def h2load(url: str, clients: int, seconds: float, server_pid: int) -> H2Result:
    """``h2load --h1 -c clients -D seconds url`` (a short warm-up first); the server's CPU over the run."""
    from _media import cpu_seconds

    argv = ["h2load", "--h1", "-c", str(clients), "-t", "1", "-D", str(max(1, round(seconds))), "--warm-up-time", "1",
            "-H", "Accept-Encoding: gzip", url]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = cpu_seconds(server_pid), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    wall = max(1e-6, time.perf_counter() - t0)
    cpu = 100 * (cpu_seconds(server_pid) - c0) / wall
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = 100 * (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / wall
    text = proc.stdout
    rate = re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", text)
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", text)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if rate is None or done is None:
        return H2Result(0.0, 0, 0, cpu, (proc.stderr or text).strip().splitlines()[-1:][0] if (proc.stderr or text)
                        else f"h2load exit {proc.returncode}")
    note = ""
    if status is not None and (int(status.group(3)) or int(status.group(4))):
        note = f"{status.group(3)} 4xx, {status.group(4)} 5xx"
    return H2Result(float(rate.group(1)), int(done.group(1)), int(done.group(2)), cpu, note, client)


KINDS = ("part", "segment", "audio segment", "chunklist")


def serve_url(chunklist: str, audio_chunklist: str, kind: str) -> str:
    """A URL of ``kind`` as a player asks for it (session query kept): the newest complete segment (or
    its first part) of the chunklist, which stays in the window for the segment count, or the chunklist."""
    import httpx

    if kind == "chunklist":
        return chunklist
    source = audio_chunklist if kind.startswith("audio") else chunklist
    text = httpx.get(source, timeout=15).text
    segs = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    seg_no = re.search(r"seg_\d+_(\d+)_", segs[-1])
    assert seg_no is not None, segs[-1]
    if kind.endswith("segment"):
        return urljoin(source, segs[-1])
    part = next(u for u in re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)
                if re.search(rf"part_\d+_{seg_no.group(1)}_0_", u))
    return urljoin(source, part)


def mirror(url: str, dest: Path, name: str) -> tuple[str, int]:
    """The bytes Kiln answers (identity) as a file for nginx; (its path on nginx, size)."""
    import httpx

    r = httpx.get(url, timeout=15)
    r.raise_for_status()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / name).write_bytes(r.content)
    return "/" + name, len(r.content)


def serving_rates(chunklist: str, audio_chunklist: str, kiln_pid: int, nginx_port: int, nginx_pid: int,
                  static_dir: Path, clients: list[int], seconds: float, turns: int = 1) -> list[list[Any]]:
    """(d): h2load on Kiln then on nginx (the same bytes) for each file kind and client count, ``turns`` times in
    turn (K N K N ...): the other jobs on a shared machine change what either server gets from one run to the
    next, so each side's median is compared, every turn printed."""
    from _media import out

    rows: list[list[Any]] = []
    for kind in KINDS:
        for c in clients:
            kiln_runs: list[H2Result] = []
            nginx_runs: list[H2Result] = []
            size = 0
            for _turn in range(turns):
                url = serve_url(chunklist, audio_chunklist, kind)  # again each turn: a segment leaves the window
                name = kind.replace(" ", "_") + "_" + urlsplit(url).path.rsplit("/", 1)[-1]
                path, size = mirror(url, static_dir, name)
                # Kiln right after the URL is taken: a part is listed for only a few seconds (then 404s)
                kiln_runs.append(h2load(url, c, seconds, kiln_pid))
                nginx_runs.append(h2load(f"http://127.0.0.1:{nginx_port}{path}", c, seconds, nginx_pid))
            k, n = _median_run(kiln_runs), _median_run(nginx_runs)
            target = TARGET_CHUNKLIST_RPS if kind == "chunklist" else TARGET_GET_RPS
            ratio = k.req_s / n.req_s if n.req_s else 0.0
            ok = k.req_s >= target and (kind == "chunklist" or ratio >= TARGET_VS_NGINX) and all(
                r.failed == 0 for r in kiln_runs)
            notes = [x for r in kiln_runs + nginx_runs for x in (r.note,) if x]
            if turns > 1:
                notes.insert(0, "turns kiln/nginx req/s: " + " ".join(
                    f"{a.req_s:.0f}/{b.req_s:.0f}" for a, b in zip(kiln_runs, nginx_runs, strict=True)))
            rows.append([kind, size, c, round(k.req_s), round(k.cpu_pct), round(k.client_pct),
                         sum(r.failed for r in kiln_runs), round(n.req_s), round(n.cpu_pct), round(n.client_pct),
                         f"{ratio:.2f}", f">= {target:,}" + ("" if kind == "chunklist" else " and 0.3x"),
                         "yes" if ok else "NO", "; ".join(notes)])
            out("  " + "  ".join(str(x) for x in rows[-1]))
    return rows


def _median_run(runs: list[H2Result]) -> H2Result:
    """The run with the median rate (its own CPU figures with it)."""
    return sorted(runs, key=lambda r: r.req_s)[len(runs) // 2]


# ---------------------------------------------------------------------------------------------- client


_SCRATCH = memoryview(bytearray(1 << 18))  # every connection of a client process receives into this buffer


class HttpConn(asyncio.BufferedProtocol):
    """A minimal keep-alive HTTP/1.1 client connection: one request at a time, Content-Length bodies.

    Cheap, so that the load generator is not the limit: the kernel copies into one reused buffer
    (``recv_into``: BufferedProtocol), only the head is parsed, and a body is kept only when the caller
    asks for it (a playlist; a part the process has not seen yet), else just counted; answers go to a
    callback, no future or task per request.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.body: bytearray | None = None
        self.left = -1  # body bytes still to come; -1: reading the head
        self.size = 0
        self.status = 0
        self.gzipped = False
        self.keep = False
        self.lost = False
        self.on_answer: Any = None  # (status, body or None, body size) -> None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        done, self.on_answer = self.on_answer, None
        if done is not None:
            done(0, None, 0)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SCRATCH

    def buffer_updated(self, nbytes: int) -> None:
        data = _SCRATCH[:nbytes]
        while len(data):
            if self.left < 0:
                start = max(0, len(self.head) - 3)
                self.head += data
                end = self.head.find(b"\r\n\r\n", start)
                if end < 0:
                    return
                rest = len(self.head) - end - 4
                data = data[len(data) - rest:]
                head = bytes(self.head[:end]).lower()
                self.head.clear()
                self.status = int(head[9:12])
                i = head.find(b"content-length:")
                self.left = self.size = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                                                 else None]) if i >= 0 else 0
                self.gzipped = b"content-encoding: gzip" in head
                self.body = bytearray() if self.keep else None
            take = min(self.left, len(data))
            if self.body is not None:
                self.body += data[:take]
            self.left -= take
            data = data[take:]
            if self.left == 0:
                self.left = -1
                body, self.body = self.body, None
                done, self.on_answer = self.on_answer, None
                if done is not None:
                    done(self.status, None if body is None else (zlib.decompress(body, 31) if self.gzipped
                                                                 else bytes(body)), self.size)

    def send(self, host: bytes, path: bytes, keep: bool, on_answer: Any) -> None:
        """GET ``path``; ``on_answer(status, body (if ``keep``) or None, body size)``; status 0: connection lost."""
        if self.lost or self.transport is None:
            on_answer(0, None, 0)
            return
        self.keep = keep
        self.on_answer = on_answer
        self.transport.write(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nAccept-Encoding: gzip\r\n\r\n")

    async def get(self, host: str, path: bytes) -> tuple[int, bytes]:
        """GET with the body, awaited (a master playlist, once per viewer)."""
        got: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.send(host.encode(), path, True, lambda status, body, _n: got.set_result((status, body or b"")))
        status, body = await got
        if status == 0:
            raise ConnectionError("closed by the server")
        return status, body


async def connect(host: str, port: int) -> HttpConn:
    _t, conn = await asyncio.get_running_loop().create_connection(HttpConn, host, port)
    return conn


@dataclass
class ChildTally:
    requests: int = 0
    errors: int = 0
    bytes: int = 0
    late: list[tuple[int, float]] = field(default_factory=list)  # (video part's last sample ms, downloaded)
    get_ms: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors += 1
        self.error_kinds[what] = self.error_kinds.get(what, 0) + 1


class PartClock:
    """The last video sample's time (ms) of each part, parsed once per process (the first viewer's copy)."""

    def __init__(self, timescale: int) -> None:
        self.timescale = timescale
        self.known: dict[bytes, int] = {}

    def last_ms(self, name: bytes, body: bytes) -> int:
        got = self.known.get(name)
        if got is None:
            tfdt, durs = part_samples(body)
            got = self.known[name] = round((tfdt + sum(durs[:-1])) * 1000 / self.timescale)
        return got


class BlockingTrack:
    """One track of one viewer as hls.js follows it: blocking reload on the PRELOAD-HINT part, then GET that
    part; callbacks on one connection, no task per request."""

    def __init__(self, conn: HttpConn, host: bytes, path: bytes, video: bool, clock: PartClock, tally: ChildTally,
                 window: tuple[float, float], done: asyncio.Future[None]) -> None:
        self.conn, self.host, self.path, self.video, self.clock = conn, host, path, video, clock
        self.tally, self.window, self.done = tally, window, done
        self.base = path.rsplit(b"/", 1)[0] + b"/"
        self.sep = b"&" if b"?" in path else b"?"
        self.text = b""
        self.hint = b""
        self.t0 = 0.0

    def start(self) -> None:
        self.conn.send(self.host, self.path, True, self.on_playlist)

    def finish(self, error: str | None = None) -> None:
        if error is not None:
            self.tally.error(error)
        if self.conn.transport is not None:
            self.conn.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def on_playlist(self, status: int, text: bytes | None, _size: int) -> None:
        """A plain chunklist, or a reload's answer that did not list the hinted part: block on its hint."""
        if status == 0:
            return self.finish("ConnectionError")
        if time.perf_counter() >= self.window[1]:
            return self.finish()
        m = _HINT.search(text or b"")
        if status != 200 or m is None:
            self.tally.error(f"chunklist {status}" if status != 200 else "no hint")
            asyncio.get_running_loop().call_later(0.1, self.start)
            return None
        self.hint = m.group(1)
        k = _PART_NAME.search(self.hint)
        assert k is not None
        self.conn.send(self.host, self.path + self.sep + b"_HLS_msn=" + k.group(2) + b"&_HLS_part=" + k.group(3),
                       True, self.on_reload)
        return None

    def on_reload(self, status: int, text: bytes | None, size: int) -> None:
        if status == 0:
            return self.finish("ConnectionError")
        if self.window[0] <= time.perf_counter() < self.window[1]:
            self.tally.requests += 1
        text = text or b""
        if status != 200 or text.find(b'URI="' + self.hint + b'"', 0, text.rfind(b"#EXT-X-PRELOAD-HINT")) < 0:
            return self.on_playlist(status, text, size)  # the hinted part's segment ended before it
        self.text = text
        self.t0 = time.perf_counter()
        keep = self.video and self.hint.split(b"?")[0] not in self.clock.known
        self.conn.send(self.host, self.base + self.hint, keep, self.on_part)
        return None

    def on_part(self, status: int, body: bytes | None, size: int) -> None:
        if status == 0:
            return self.finish("ConnectionError")
        done = time.perf_counter()
        if self.window[0] <= done < self.window[1]:
            tally = self.tally
            tally.requests += 1
            tally.bytes += size
            if status != 200:
                tally.error(f"part {status}")
            else:
                tally.get_ms.append((done - self.t0) * 1000)
                if self.video:
                    tally.late.append((self.clock.last_ms(self.hint.split(b"?")[0], body or b""), done))
        return self.on_playlist(200, self.text, 0)


async def blocking_viewer(host: str, port: int, path: bytes, video: bool, clock: PartClock, tally: ChildTally,
                          window: tuple[float, float]) -> None:
    """One track of one viewer (BlockingTrack), until the window ends."""
    conn = await connect(host, port)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    BlockingTrack(conn, host.encode(), path, video, clock, tally, window, done).start()
    await done


async def static_viewer(host: str, port: int, playlist: bytes, parts: list[bytes], period: float, tally: ChildTally,
                        window: tuple[float, float], offset: float) -> None:
    """nginx reference: GET the playlist and a part every ``period`` (nothing to block on)."""
    conn = await connect(host, port)
    await asyncio.sleep(offset)
    nxt, i = time.perf_counter(), 0
    try:
        while time.perf_counter() < window[1]:
            t0 = time.perf_counter()
            s1, _ = await conn.get(host, playlist)
            s2, size = await _count(conn, host.encode(), parts[i % len(parts)])
            done = time.perf_counter()
            if window[0] <= done < window[1]:
                tally.requests += 2
                tally.bytes += size
                if s1 != 200 or s2 != 200:
                    tally.error(f"static {s1}/{s2}")
                else:
                    tally.get_ms.append((done - t0) * 1000)
            i += 1
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
    except (ConnectionError, OSError) as exc:
        tally.error(type(exc).__name__)
    finally:
        if conn.transport is not None:
            conn.transport.close()


class BurstViewer:
    """Burst reference: at every boundary of the shared clock, GET that boundary's file (a URL never asked
    before), on one keep-alive connection; a GET still running at a boundary sends the next one when it ends
    (its lateness counts from its own boundary). Lateness = boundary -> last byte received."""

    def __init__(self, conn: HttpConn, host: bytes, files: list[bytes], counted: bool, tally: ChildTally,
                 window: tuple[float, float]) -> None:
        self.conn, self.host, self.files, self.counted = conn, host, files, counted
        self.tally, self.window = tally, window
        self.queue: list[tuple[int, float]] = []  # (boundary number, its perf_counter time) not yet sent
        self.busy = False

    def boundary(self, k: int, at: float) -> None:
        self.queue.append((k, at))
        if not self.busy:
            self._next()

    def _next(self) -> None:
        k, at = self.queue.pop(0)
        self.busy = True
        sent = time.perf_counter()
        self.conn.send(self.host, self.files[k % len(self.files)], False,
                       lambda status, _b, size: self._done(status, size, at, sent))

    def _done(self, status: int, size: int, at: float, sent: float) -> None:
        self.busy = False
        done = time.perf_counter()
        if status == 0:
            self.tally.error("ConnectionError")
            self.queue.clear()
            return
        if self.window[0] <= done < self.window[1]:
            tally = self.tally
            tally.requests += 1
            tally.bytes += size
            if status != 200:
                tally.error(f"burst {status}")
            elif self.counted:
                tally.late.append((0, (done - at) * 1000))
                tally.get_ms.append((done - sent) * 1000)
        if self.queue:
            self._next()


async def burst_viewers(host: str, port: int, spec: dict[str, Any], tally: ChildTally,
                        window: tuple[float, float]) -> None:
    """This process's share of the burst reference: all its viewers' GETs sent by one ticker at each boundary
    (``spec["clock"]`` + k * period, the same instant in every client process: perf_counter is CLOCK_MONOTONIC)."""
    viewers: list[BurstViewer] = []
    for _ in range(spec["viewers"]):
        for track, files in enumerate(spec["burst_files"]):  # [video files, audio files]: one connection each
            conn = await connect(host, port)
            viewers.append(BurstViewer(conn, host.encode(), [f.encode() for f in files], track == 0, tally, window))
    clock, period = spec["clock"], spec["period"]
    k = max(0, int((time.perf_counter() - clock) / period) + 1)
    while clock + k * period < window[1]:
        await asyncio.sleep(max(0.0, clock + k * period - time.perf_counter()))
        at = clock + k * period
        for viewer in viewers:
            viewer.boundary(k, at)
        k += 1
    while any(v.busy for v in viewers) and time.perf_counter() < window[1] + 5:
        await asyncio.sleep(0.05)
    for viewer in viewers:
        if viewer.conn.transport is not None:
            viewer.conn.transport.close()


async def _count(conn: HttpConn, host: bytes, path: bytes) -> tuple[int, int]:
    """GET ``path``, the body counted, not kept: (status, size)."""
    got: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
    conn.send(host, path, False, lambda status, _b, size: got.set_result((status, size)))
    status, size = await got
    if status == 0:
        raise ConnectionError("closed by the server")
    return status, size


_MEDIA_URI = re.compile(rb'#EXT-X-MEDIA:TYPE=AUDIO[^\n]*URI="([^"]+)"')


async def kiln_viewer(host: str, port: int, master: bytes, tracks: str, clock: PartClock, tally: ChildTally,
                      window: tuple[float, float]) -> None:
    """A player: GET the master (its own session), then follow the video (and audio) chunklist."""
    try:
        conn = await connect(host, port)
        status, text = await conn.get(host, master)
        assert conn.transport is not None
        conn.transport.close()
    except (ConnectionError, OSError) as exc:
        tally.error(f"master {type(exc).__name__}")
        return
    if status != 200:
        tally.error(f"master {status}")
        return
    base = master.split(b"?")[0].rsplit(b"/", 1)[0] + b"/"
    uris = [ln for ln in text.splitlines() if ln and not ln.startswith(b"#")]
    video = next((u for u in uris if b"_video_" in u), None)
    audio = _MEDIA_URI.search(text)
    paths = [(video, True)] + ([(audio.group(1), False)] if audio is not None and tracks == "both" else [])
    await asyncio.gather(*(blocking_viewer(host, port, uri if uri.startswith(b"/") else base + uri, is_video,
                                           clock, tally, window) for uri, is_video in paths if uri is not None))


async def child_main(spec: dict[str, Any]) -> ChildTally:
    tally = ChildTally()
    window = (spec["start"], spec["end"])
    host, port = spec["host"], spec["port"]
    clock = PartClock(spec.get("timescale", 90000))
    tasks = []
    if spec["mode"] == "burst":
        await burst_viewers(host, port, spec, tally, window)
        return tally
    for n in range(spec["viewers"]):
        if spec["mode"] == "kiln":
            tasks.append(kiln_viewer(host, port, spec["master"].encode(), spec["tracks"], clock, tally, window))
        else:
            for _ in range(spec.get("viewers_per", 1)):
                tasks.append(static_viewer(host, port, spec["playlist"].encode(), [p.encode() for p in spec["parts"]],
                                           spec["period"], tally, window, (n % 50) * spec["period"] / 50))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            tally.error(type(r).__name__)
    return tally


def run_child() -> None:
    global part_samples
    from llhls import part_samples  # imported before the viewers start: the import takes a second or more

    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tally = asyncio.run(child_main(spec))
    Path(spec["result"]).write_text(json.dumps(tally.__dict__))


# ---------------------------------------------------------------------------------------------- viewers


@dataclass
class LoadStep:
    requests: float
    errors: int
    error_kinds: dict[str, int]
    mbit_s: float
    late: list[float]  # ms, video parts
    get_ms: list[float]
    server_pct: float
    client_pct: float
    wall: tuple[float, float] = (0.0, 0.0)  # time.time() of the measured window
    server_sys_pct: float = 0.0  # the kernel's part of server_pct (system time: sends, receives, epoll)


def sys_seconds(pid: int) -> float:
    """stime of a process (the kernel's work on its behalf), in seconds; 0 if it is gone."""
    from _media import CLK_TCK

    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    return int(stat[stat.rindex(")") + 2:].split()[12]) / CLK_TCK


def run_load(spec: dict[str, Any], viewers: int, procs: int, seconds: float, server_pid: int,
             warmup: float = 3.0) -> tuple[LoadStep, list[tuple[int, float]]]:
    """Spread ``viewers`` over ``procs`` child processes; the server's and the clients' CPU over the window."""
    from _media import cpu_seconds

    start = time.perf_counter() + warmup
    end = start + seconds
    if spec["mode"] == "burst":  # boundaries from before the window (the warm-up), one falling on its start
        spec = {**spec, "clock": start - spec["period"] * int(warmup / spec["period"])}
    wall = (time.time() + warmup, time.time() + warmup + seconds)
    children = []
    for i in range(procs):
        share = viewers // procs + (1 if i < viewers % procs else 0)
        if not share:
            continue
        result = Path(tempfile.mkstemp(prefix="llhls-load-", suffix=".json")[1])
        p = subprocess.Popen([sys.executable, __file__, "--child"], stdin=subprocess.PIPE, text=True)
        assert p.stdin is not None
        p.stdin.write(json.dumps({**spec, "viewers": share, "start": start, "end": end, "result": str(result)}))
        p.stdin.close()
        children.append((p, result))
    time.sleep(max(0.0, start - time.perf_counter()))
    s0, c0, k0 = cpu_seconds(server_pid), sum(cpu_seconds(p.pid) for p, _r in children), sys_seconds(server_pid)
    time.sleep(max(0.0, end - time.perf_counter()))
    s1, c1, k1 = cpu_seconds(server_pid), sum(cpu_seconds(p.pid) for p, _r in children), sys_seconds(server_pid)
    total = ChildTally()
    for p, result in children:
        p.wait(timeout=120)
        text = result.read_text()
        result.unlink()
        if not text:
            total.error(f"client exit {p.returncode}")
            continue
        got = json.loads(text)
        total.requests += got["requests"]
        total.errors += got["errors"]
        total.bytes += got["bytes"]
        total.late += [(int(a), float(b)) for a, b in got["late"]]
        total.get_ms += got["get_ms"]
        for k, v in got["error_kinds"].items():
            total.error_kinds[k] = total.error_kinds.get(k, 0) + v
    return (LoadStep(total.requests / seconds, total.errors, total.error_kinds, total.bytes * 8 / seconds / 1e6, [],
                     total.get_ms, 100 * (s1 - s0) / seconds, 100 * (c1 - c0) / seconds, wall,
                     100 * (k1 - k0) / seconds), total.late)


def lateness(samples: list[tuple[int, float]], closing_frame: Any) -> list[float]:
    """ms from the closing frame's write to the download, for each (part's last sample ms, downloaded)."""
    found = []
    for last_ms, done in samples:
        closed = closing_frame(last_ms)
        if closed is not None:
            found.append((done - closed) * 1000)
    return found


def _us_per_request(step: LoadStep, pct: float | None = None) -> int:
    """The server's (or the clients') CPU per answered request (µs): steadier than %core or lateness on a
    shared machine, where each process gets what the other jobs leave it."""
    pct = step.server_pct if pct is None else pct
    return round(pct / 100 / step.requests * 1e6) if step.requests else 0


_WINDOW = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d+) .*llhls answer lateness window listener=llhls (.*)$")


def kiln_side(log_path: Path | None, wall: tuple[float, float]) -> list[str]:
    """Kiln's own lateness figures (kiln/http/answer_lateness.py) for the log windows that end inside ``wall``:
    from a part available to its answers' last byte handed to the kernel."""
    if log_path is None:
        return []
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = _WINDOW.match(line)
        if m is None:
            continue
        at = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
        if wall[0] + 1.0 <= at <= wall[1] + 0.5:
            fields = dict(kv.split("=", 1) for kv in m.group(3).split())
            found.append(f"{fields['seconds']} s: reload p50/p99 {fields['reload_ms_p50']}/"
                         f"{fields['reload_ms_p99']} ms ({fields['reloads']}), part p50/p99/max "
                         f"{fields['part_ms_p50']}/{fields['part_ms_p99']}/"
                         f"{fields['part_ms_max']} ms ({fields['parts']}), buffered {fields['buffered']}")
    return found


def viewer_rows(kiln_spec: dict[str, Any], static_spec: dict[str, Any], counts: list[int], procs: int,
                seconds: float, kiln_pid: int, nginx_pid: int, closing_frame: Any,
                kiln_log: Path | None = None, burst_spec: dict[str, Any] | None = None,
                copy_nginx: tuple[int, int] | None = None) -> list[list[Any]]:
    """(e): each count on Kiln (blocking reload), then on nginx static, then (``burst_spec``) nginx answering
    Kiln's burst shape, with sendfile and (``copy_nginx``: port, pid) without; rows for the table."""
    from _media import out, pctl

    rows: list[list[Any]] = []
    for n in counts:
        step, samples = run_load(kiln_spec, n, procs, seconds, kiln_pid)
        step.late = lateness(samples, closing_frame)
        late = sum(1 for x in step.late if x > LATE_MS)
        ok = bool(step.late) and pctl(step.late, 99) <= LATE_MS and step.errors == 0
        rows.append(["kiln", n, round(step.requests), round(step.mbit_s), len(step.late), late,
                     f"{pctl(step.late, 50):.0f}/{pctl(step.late, 99):.0f}/{max(step.late, default=float('nan')):.0f}",
                     f"{pctl(step.get_ms, 50):.1f}/{pctl(step.get_ms, 99):.1f}", step.errors, round(step.server_pct),
                     _us_per_request(step), round(step.client_pct), _us_per_request(step, step.client_pct),
                     "yes" if ok else "NO"])
        out("  " + "  ".join(str(x) for x in rows[-1]) + (f"  {step.error_kinds}" if step.error_kinds else ""))
        for window in kiln_side(kiln_log, step.wall):
            out(f"    kiln side (part available -> answer's last byte to the kernel), log window {window}")
        out(f"    kiln CPU {step.server_pct:.0f} % of a core, of it kernel (system time) {step.server_sys_pct:.0f} %")
        ref, _ = run_load(static_spec, n, procs, seconds, nginx_pid)
        rows.append(["nginx-static", n, round(ref.requests), round(ref.mbit_s), "-", "-", "-",
                     f"{pctl(ref.get_ms, 50):.1f}/{pctl(ref.get_ms, 99):.1f}", ref.errors, round(ref.server_pct),
                     _us_per_request(ref), round(ref.client_pct), _us_per_request(ref, ref.client_pct), "-"])
        out("  " + "  ".join(str(x) for x in rows[-1]) + (f"  {ref.error_kinds}" if ref.error_kinds else ""))
        if burst_spec is not None:
            rows.append(burst_row(burst_spec, n, procs, seconds, nginx_pid))
            out("  " + "  ".join(str(x) for x in rows[-1]))
            if copy_nginx is not None:
                rows.append(burst_row({**burst_spec, "port": copy_nginx[0]}, n, procs, seconds, copy_nginx[1],
                                      "nginx-burst-copy"))
                out("  " + "  ".join(str(x) for x in rows[-1]))
    return rows


def burst_row(spec: dict[str, Any], n: int, procs: int, seconds: float, nginx_pid: int,
              name: str = "nginx-burst") -> list[Any]:
    """nginx answering Kiln's burst shape: ``n`` viewers GET a file never asked before at every period boundary,
    all at the same instant; lateness = boundary -> last byte received (the video file's)."""
    from _media import pctl

    step, samples = run_load(spec, n, procs, seconds, nginx_pid)
    step.late = [ms for _k, ms in samples]
    late = sum(1 for x in step.late if x > LATE_MS)
    ok = bool(step.late) and pctl(step.late, 99) <= LATE_MS and step.errors == 0
    return [name, n, round(step.requests), round(step.mbit_s), len(step.late), late,
            f"{pctl(step.late, 50):.0f}/{pctl(step.late, 99):.0f}/{max(step.late, default=float('nan')):.0f}",
            f"{pctl(step.get_ms, 50):.1f}/{pctl(step.get_ms, 99):.1f}", step.errors, round(step.server_pct),
            _us_per_request(step), round(step.client_pct), _us_per_request(step, step.client_pct),
            "yes" if ok else "NO"]


def write_burst_files(dest: Path, sizes: list[int], count: int) -> list[list[str]]:
    """``count`` files of each size (random bytes: nothing to compress), one per boundary and track, so every
    boundary asks for URLs nginx has not served before; [[video paths], [audio paths]] on nginx."""
    dest.mkdir(parents=True, exist_ok=True)
    found = []
    for track, size in enumerate(sizes):
        paths = []
        for k in range(count):
            name = f"t{track}_{k}.bin"
            (dest / name).write_bytes(os.urandom(size))
            paths.append(f"/{dest.name}/{name}")
        found.append(paths)
    return found


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--serve-only", action="store_true", help="run only (d) and (e), the serving load")
    ap.add_argument("--no-serve", action="store_true", help="skip (d) and (e)")
    ap.add_argument("--h2load-clients", default="100,1000", help="(d) h2load -c values")
    ap.add_argument("--h2load-seconds", type=float, default=5.0, help="(d) duration of each h2load run")
    ap.add_argument("--h2load-turns", type=int, default=3,
                    help="(d) runs per server, in turn with the other's; medians compared")
    ap.add_argument("--load-viewers", default="250,1000", help="(e) blocking-reload viewer counts")
    ap.add_argument("--load-seconds", type=float, default=10.0, help="(e) measured time per step")
    ap.add_argument("--procs", type=int, default=2, help="(e) client processes")
    ap.add_argument("--tracks", choices=("video", "both"), default="both", help="(e) chunklists each viewer follows")
    ap.add_argument("--no-burst", action="store_true", help="(e) skip the nginx burst reference")


def run_serving(args: argparse.Namespace, kiln_pid: int, master: str, chunklist: str, timescale: int,
                closing_frame: Any, wd: Path, kiln_log: Path | None = None) -> None:
    """(d) and (e) against a running Kiln whose stream is live; nginx serves a static copy beside it."""
    import httpx
    from _media import out, start_nginx_http, table

    static_dir = wd / "serve-static"
    with httpx.Client(timeout=15) as http:
        audio = _MEDIA_URI.search(http.get(master).content)
        assert audio is not None, "no audio rendition in the master playlist"
        audio_chunklist = urljoin(master, audio.group(1).decode())
        from llhls import static_copy  # the (c) static copy: a playlist and its parts, (e)'s reference

        playlist, parts = static_copy(http, chunklist, static_dir / "viewer")
    nginx = start_nginx_http(wd / "serve-nginx", static_dir)
    # the burst reference again with `sendfile off`: nginx then copies each file from its own memory into the
    # socket, as Kiln writes a part from its memory (sendfile hands the kernel page references instead)
    copy_nginx = None if args.no_burst else start_nginx_http(wd / "serve-nginx-copy", static_dir, sendfile=False)
    try:
        out()
        out(f"(d) h2load --h1 -t 1 -D {args.h2load_seconds:g} (Accept-Encoding: gzip), Kiln and nginx static "
            f"(the same bytes, identity), {args.h2load_turns} turns each, one after the other, medians; video "
            f"part/segment, audio segment, video chunklist (plain, with the session); %core = the server's CPU over "
            f"the run, h2load %core = the load generator's (near 100: it was the limit)")
        headers = ["file", "bytes", "clients", "kiln req/s", "kiln %core", "h2load %core", "kiln failed", "nginx req/s",
                   "nginx %core", "h2load %core", "kiln/nginx", "target", "met", "note"]
        out("  " + "  ".join(headers))
        rows = serving_rates(chunklist, audio_chunklist, kiln_pid, nginx.port, nginx.pid, static_dir,
                             [int(c) for c in args.h2load_clients.split(",") if c.strip()], args.h2load_seconds,
                             args.h2load_turns)
        out(table(headers, rows))

        counts = [int(c) for c in args.load_viewers.split(",") if c.strip()]
        if not counts:
            return
        split = urlsplit(master)
        kiln_spec = {"mode": "kiln", "host": "127.0.0.1", "port": split.port, "timescale": timescale,
                     "master": split.path + (f"?{split.query}" if split.query else ""), "tracks": args.tracks}
        static_spec = {"mode": "static", "host": "127.0.0.1", "port": nginx.port, "period": 0.5,
                       "playlist": f"/viewer/{playlist}", "parts": [f"/viewer/{p}" for p in parts]}
        video_size = sorted((static_dir / "viewer" / p).stat().st_size for p in parts)[len(parts) // 2]
        audio_size = len(httpx.get(serve_url(chunklist, audio_chunklist, "audio part"), timeout=15).content)
        sizes = [video_size] + ([audio_size] if args.tracks == "both" else [])
        burst_spec = {"mode": "burst", "host": "127.0.0.1", "port": nginx.port, "period": 0.5,
                      "burst_files": write_burst_files(static_dir / "burst", sizes,
                                                       int((3.0 + args.load_seconds) / 0.5) + 4)}
        out()
        out(f"(e) blocking-reload viewers in {args.procs} client processes (uvloop, minimal HTTP/1.1), "
            f"{'video + audio' if args.tracks == 'both' else 'video'} chunklists each, {args.load_seconds:g} s "
            f"measured after 3 s; lateness = video part downloaded - the frame closing it written to Kiln "
            f"(late > {LATE_MS:.0f} ms). nginx-static: playlist + part every 0.5 s per viewer and track, spread "
            f"over the period. nginx-burst: Kiln's burst shape, every viewer GETs a file never asked before of a "
            f"video part's size ({video_size:,} B{f' + audio part {audio_size:,} B' if len(sizes) > 1 else ''}"
            f", one connection each) at the same instant every 0.5 s; lateness = that instant -> last byte "
            f"received.")
        headers = ["server", "viewers", "req/s", "Mbit/s", "parts", "late", "lateness p50/p99/max ms",
                   "GET p50/p99 ms", "errors", "server %core", "server us/req", "clients %core", "clients us/req",
                   "p99<=100"]
        out("  " + "  ".join(headers))
        if args.tracks == "both":
            static_spec["viewers_per"] = 2
        rows = viewer_rows(kiln_spec, static_spec, counts, args.procs, args.load_seconds, kiln_pid, nginx.pid,
                           closing_frame, kiln_log, None if args.no_burst else burst_spec,
                           None if copy_nginx is None else (copy_nginx.port, copy_nginx.pid))
        out(table(headers, rows))
        for n in counts:
            kiln_row = next(r for r in rows if r[0] == "kiln" and r[1] == n)
            burst = {r[0]: r[6] for r in rows if r[0].startswith("nginx-burst") and r[1] == n}
            out(f"{n:,} viewers, lateness p50/p99/max ms: kiln {kiln_row[6]} (part available -> downloaded, after "
                f"a blocking reload), nginx burst reference {burst.get('nginx-burst', '-')} with sendfile, "
                f"{burst.get('nginx-burst-copy', '-')} copying (boundary -> downloaded, one GET); target p99 <= "
                f"{LATE_MS:.0f} ms")
        kiln_ok = [r[1] for r in rows if r[0] == "kiln" and r[-1] == "yes"]
        out(f"targets: {TARGET_VIEWERS:,} viewers with lateness p99 <= {LATE_MS:.0f} ms (met at: "
            f"{', '.join(map(str, kiln_ok)) or 'none'}); part/segment GETs >= {TARGET_GET_RPS:,} req/s and >= "
            f"{TARGET_VS_NGINX}x nginx; chunklists >= {TARGET_CHUNKLIST_RPS:,} req/s (see (d)); load "
            f"{os.getloadavg()[0]:.1f}")
    finally:
        nginx.stop()
        if copy_nginx is not None:
            copy_nginx.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    if ap.parse_args().child:
        run_child()
