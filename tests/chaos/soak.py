"""Soak: a real ``kiln serve`` under a steady mixed load for a long time; flat lines are the target.

Load: 4 RTMP publishers (320x180 loops), 2 LL-HLS viewers per stream fetching every new part, a push
of stream 0 back into Kiln over RTMP (so it is a 5th stream), a recording of stream 1 split every
60 s, and API traffic (GETs of lists, stats and streams; a vhost created and deleted every few
seconds). Every ``--interval`` seconds it prints Kiln's RSS, open fds and threads, and the API's GET
round trip (p50/max over the interval, the outside view) and the event loop's own lag as Kiln's
``/metrics`` reports it (the last timer's lateness, and the largest since start: the API answers on
the same loop as ingest and LL-HLS). Not in CI: ``make soak MINUTES=60``.

What grows: each line also has the load average and Kiln's anonymous RSS. ``--malloc-stats`` runs Kiln under
``bench/_traced_kiln.py`` (tracing off) and adds glibc's heap figures per line (in use, free but kept, mmapped),
and, after the last line, what ``malloc_trim(0)`` gives back; ``--tracemalloc N`` traces N frames, saves a
snapshot per line and prints, at the end, the 15 biggest growths between the line at ``--since`` minutes and the
last (by traceback and by line). ``--kiln-env KEY=VALUE`` (repeatable) sets Kiln's environment, e.g.
``MALLOC_ARENA_MAX=2``. Each line's ``journal_in_memory`` is how many journal records Kiln keeps for ``GET
/v1/journal`` (at most 5,000, about 100 more a minute under this load): ``--prefill-journal 5200`` fills that
window before the load starts, so a curve that still climbs is something else.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.media import test_flv
from tests.peers.process import Peer

ROOT = Path(__file__).resolve().parents[2]
STREAMS = 4
VIEWERS_PER_STREAM = 2
APP = "/v1/vhosts/default/apps/app"


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    api_ms: list[float] = field(default_factory=list)
    api_errors: int = 0
    parts: int = 0
    viewer_errors: int = 0

    def take(self) -> tuple[list[float], int, int, int]:
        with self.lock:
            out = (self.api_ms, self.api_errors, self.parts, self.viewer_errors)
            self.api_ms, self.api_errors, self.parts, self.viewer_errors = [], 0, 0, 0
        return out


def proc_status(pid: int) -> tuple[int, int, int]:
    """(RSS in KiB, open fds, threads) of ``pid``."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir())), threads


def anon_kib(pid: int) -> int:
    """Kiln's anonymous resident memory (heaps, stacks: what a leak grows), KiB."""
    found = re.search(r"^Anonymous:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)
    return int(found.group(1)) if found else -1


class MemoryProbe:
    """Asks a Kiln started through bench/_traced_kiln.py for its memory figures (SIGUSR2) and a trim (SIGUSR1)."""

    def __init__(self, kiln: KilnProcess, out: Path, frames: int) -> None:
        self.kiln = kiln
        self.report = out / "tracemalloc.txt"
        self.snapshots = out / "snapshots"
        self.frames = frames
        kiln.entry = [str(ROOT / "bench" / "_traced_kiln.py")]
        kiln.env.update({"KILN_TRACEMALLOC_OUT": str(self.report), "KILN_TRACEMALLOC_FRAMES": str(frames)})
        if frames:
            kiln.env["KILN_TRACEMALLOC_SNAPSHOTS"] = str(self.snapshots)

    def _lines(self, prefix: str) -> list[str]:
        text = self.report.read_text() if self.report.exists() else ""
        return [line for line in text.splitlines() if line.startswith(prefix)]

    def _ask(self, sig: signal.Signals, prefix: str) -> str:
        """Sends ``sig`` and waits for the next report line starting with ``prefix`` (a snapshot takes seconds)."""
        assert self.kiln.proc is not None
        before = len(self._lines(prefix))
        os.kill(self.kiln.proc.pid, sig)
        lines = self.kiln.wait_for(lambda: self._lines(prefix)[before:], timeout=300, what=f"kiln's {prefix!r} line")
        return str(lines[0])

    def figures(self) -> str:
        """'traced MB  malloc in use MB  malloc free MB  malloc mmap MB' now."""
        line = self._ask(signal.SIGUSR2, "== ")
        values = re.findall(r"([0-9.]+) MB", line)  # traced, peak, in use, free, mmap
        blocks = re.search(r"py_blocks (\d+)", line)
        return (f"{float(values[0]):9.1f}  {float(values[2]):14.1f}  {float(values[3]):14.1f}  {float(values[4]):7.1f}"
                f"  {int(blocks.group(1)) if blocks else -1:9d}")

    def trim(self) -> str:
        return self._ask(signal.SIGUSR1, "trim ")

    def growth(self, since: int) -> str:
        """The 15 biggest growths from snapshot ``since`` to the last, by traceback and by line."""
        files = sorted(self.snapshots.glob("*.snapshot"))
        if len(files) < 2:
            return "fewer than two snapshots\n"
        first, last = files[min(since, len(files) - 2)], files[-1]
        old, new = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
        total = sum(t.size for t in new.traces) - sum(t.size for t in old.traces)
        lines = [f"tracemalloc growth {first.name} -> {last.name}: {total / 1e3:+.1f} kB traced"]
        for key in ("traceback", "lineno"):
            lines.append(f"-- top 15 by {key}")
            for stat in new.compare_to(old, key)[:15]:
                lines.append(f"{stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7d} blocks "
                             f"(now {stat.size / 1e3:.1f} kB)")
                if key == "traceback":
                    lines.extend("    " + line for line in stat.traceback.format(most_recent_first=True))
                else:
                    lines[-1] += f"  {stat.traceback[0]}"
        return "\n".join(lines) + "\n"


def journal_in_memory(kiln: KilnProcess) -> int:
    """Journal records Kiln keeps in memory for ``GET /v1/journal`` (the newest, at most 5,000)."""
    r = kiln.api.get("/v1/status")
    return int(r.json()["response"]["journal"]["inMemory"]) if r.status_code == 200 else -1


def prefill_journal(kiln: KilnProcess, records: int) -> None:
    """``records`` journal records (vhosts created and deleted) before the load starts: the journal's in-memory
    window is then full from the first line, so what still grows is something else."""
    for n in range(records // 2):
        for r in (kiln.api.post("/v1/vhosts", json=[{"name": f"fill{n}"}]), kiln.api.delete(f"/v1/vhosts/fill{n}")):
            assert r.status_code == 200, r.text


def loop_lag_ms(kiln: KilnProcess) -> tuple[float, float]:
    """(last, largest since start) event-loop lag in ms, read from Kiln's Prometheus ``/metrics``."""
    r = kiln.api.get("/metrics")
    if r.status_code != 200:
        return float("nan"), float("nan")
    found = dict(re.findall(r"^(kiln_event_loop_lag(?:_max)?_seconds) ([0-9.eE+-]+)$", r.text, re.M))
    last = float(found.get("kiln_event_loop_lag_seconds", "nan")) * 1000
    most = float(found.get("kiln_event_loop_lag_max_seconds", "nan")) * 1000
    return last, most


def viewer(base: str, stop: threading.Event, tally: Tally) -> None:
    """Fetches the video chunklist and every part it has not fetched yet, as a player would."""
    origin = base.split("/app/")[0]
    seen: set[str] = set()
    with httpx.Client(timeout=15) as http:
        while not stop.is_set():
            try:
                master = http.get(f"{base}/llhls.m3u8").text
                video = next(u for u in re.findall(r"^[^#\s].*$", master, re.M) if "video" in u)
                chunklist = http.get(f"{origin}{video}").text
                for uri in re.findall(r'#EXT-X-PART:.*URI="([^"]+)"', chunklist):
                    if uri.split("?")[0] not in seen:
                        url = uri if uri.startswith("http") else f"{base}/{uri.lstrip('/')}" \
                            if not uri.startswith("/") else f"{origin}{uri}"
                        if http.get(url).status_code == 200:
                            with tally.lock:
                                tally.parts += 1
                        seen.add(uri.split("?")[0])
                if len(seen) > 5000:
                    seen.clear()
            except (httpx.HTTPError, StopIteration):
                with tally.lock:
                    tally.viewer_errors += 1
            stop.wait(0.5)


def api_traffic(kiln: KilnProcess, stop: threading.Event, tally: Tally) -> None:
    n = 0
    paths = ["/v1/vhosts", f"{APP}/streams", f"{APP}:pushes", f"{APP}:records", "/v1/stats/current",
             "/v1/stats/current/vhosts/default/apps/app/streams/s0", f"{APP}/streams/s0"]
    while not stop.is_set():
        for path in paths:
            t = time.monotonic()
            try:
                ok = kiln.api.get(path, timeout=15).status_code == 200
            except httpx.HTTPError:
                ok = False
            with tally.lock:
                tally.api_ms.append((time.monotonic() - t) * 1000)
                tally.api_errors += 0 if ok else 1
        n += 1
        if n % 10 == 0:
            name = f"soak{n}"
            try:
                kiln.api.post("/v1/vhosts", json=[{"name": name}])
                kiln.api.delete(f"/v1/vhosts/{name}")
            except httpx.HTTPError:
                with tally.lock:
                    tally.api_errors += 1
        stop.wait(0.2)


def run(minutes: float, interval: float, out: Path, *, kiln_env: dict[str, str] | None = None,
        frames: int | None = None, since: int = 4, prefill: int = 0) -> int:
    """``frames``: None runs plain ``kiln``; 0 adds the malloc figures; N > 0 also traces N frames."""
    ports = Ports()
    workdir = out / "kiln"
    workdir.mkdir(parents=True, exist_ok=True)
    kiln = KilnProcess(workdir, server_xml(ports, out / "records"), ports)
    kiln.env.update(kiln_env or {})
    probe = MemoryProbe(kiln, out, frames) if frames is not None else None
    kiln.start(timeout=120 if frames else 30)
    assert kiln.proc is not None
    pid = kiln.proc.pid
    media = test_flv(8)
    peers: list[Peer] = []
    stop = threading.Event()
    tally = Tally()
    threads: list[threading.Thread] = []
    lines: list[tuple[int, int, int]] = []
    try:
        prefill_journal(kiln, prefill)
        for i in range(STREAMS):
            peers.append(publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/s{i}", media, loop=True,
                                      log_dir=out / "peers"))
        for i in range(STREAMS):
            kiln.wait_for(lambda i=i: kiln.api.get(f"{APP}/streams/s{i}").status_code == 200, timeout=60,
                          what=f"stream s{i}")
        r = kiln.api.post(f"{APP}:startPush", json={"id": "soakpush", "stream": {"name": "s0"}, "protocol": "rtmp",
                                                    "url": f"rtmp://127.0.0.1:{ports.rtmp}/app", "streamKey": "pushed"})
        assert r.status_code == 200, r.text
        r = kiln.api.post(f"{APP}:startRecord", json={"id": "soakrec", "stream": {"name": "s1"}, "interval": 60000,
                                                      "filePath": "soak/${Id}_${Sequence}.mp4"})
        assert r.status_code == 200, r.text
        for i in range(STREAMS):
            for _ in range(VIEWERS_PER_STREAM):
                threads.append(threading.Thread(target=viewer, daemon=True, args=(
                    f"http://127.0.0.1:{ports.llhls}/app/s{i}", stop, tally)))
        threads.append(threading.Thread(target=api_traffic, args=(kiln, stop, tally), daemon=True))
        for t in threads:
            t.start()
        started = time.monotonic()
        sys.stdout.write(f"soak pid={pid} minutes={minutes} interval={interval}s workdir={out} "
                         f"kiln_env={kiln_env or {}} tracemalloc_frames={frames}\n")
        sys.stdout.write("minute  rss_kib  anon_kib  fds  threads  api_get_ms_p50  api_get_ms_max  api_errors  "
                         "parts_fetched  viewer_errors  streams  loop_lag_ms  loop_lag_max_ms  load1  journal_in_memory"
                         + ("  traced_mb  malloc_used_mb  malloc_free_mb  mmap_mb  py_blocks" if probe else "") + "\n")
        while time.monotonic() - started < minutes * 60:
            stop.wait(interval)
            rss, fds, nthreads = proc_status(pid)
            lines.append((rss, fds, nthreads))
            api_ms, api_errors, parts, viewer_errors = tally.take()
            p50 = statistics.median(api_ms) if api_ms else float("nan")
            worst = max(api_ms) if api_ms else float("nan")
            streams = len(kiln.api.get(f"{APP}/streams").json()["response"])
            lag, lag_max = loop_lag_ms(kiln)
            figures = "  " + probe.figures() if probe else ""
            sys.stdout.write(f"{(time.monotonic() - started) / 60:6.1f}  {rss:7d}  {anon_kib(pid):8d}  {fds:3d}  "
                             f"{nthreads:7d}  {p50:14.1f}  {worst:14.1f}  {api_errors:10d}  {parts:13d}  "
                             f"{viewer_errors:13d}  {streams:7d}  {lag:11.1f}  {lag_max:15.1f}  "
                             f"{os.getloadavg()[0]:5.2f}  {journal_in_memory(kiln):17d}{figures}\n")
            sys.stdout.flush()
        if probe:
            sys.stdout.write(probe.trim() + "\n")
            if frames:
                sys.stdout.write(probe.growth(since))
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        for peer in peers:
            peer.stop()
        kiln.close()
    if len(lines) >= 2:
        (rss0, fds0, th0), (rss1, fds1, th1) = lines[0], lines[-1]
        sys.stdout.write(f"soak first→last: rss {rss0}→{rss1} KiB ({rss1 - rss0:+d}), fds {fds0}→{fds1}, "
                         f"threads {th0}→{th1}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--interval", type=float, default=60, help="seconds between report lines")
    parser.add_argument("--kiln-env", action="append", default=[], metavar="KEY=VALUE",
                        help="set in Kiln's environment (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--malloc-stats", action="store_true",
                        help="print glibc's heap figures each line and what malloc_trim(0) gives back at the end")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="trace FRAMES frames; print the biggest growths from --since to the end")
    parser.add_argument("--prefill-journal", type=int, default=0, metavar="N",
                        help="journal N records (vhosts created and deleted) before the load: with N >= 5000 the "
                             "journal's in-memory window is full from the start")
    parser.add_argument("--since", type=int, default=4, help="the line (minute) growth is counted from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the peers and Kiln as Ctrl-C does
    kiln_env = dict(item.split("=", 1) for item in args.kiln_env)
    frames = args.tracemalloc if args.tracemalloc else (0 if args.malloc_stats else None)
    with tempfile.TemporaryDirectory(prefix="kiln-soak-") as tmp:
        return run(args.minutes, args.interval, Path(tmp), kiln_env=kiln_env, frames=frames, since=args.since,
                   prefill=args.prefill_journal)


if __name__ == "__main__":
    raise SystemExit(main())
