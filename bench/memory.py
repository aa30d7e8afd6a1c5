"""Memory that comes back: Kiln's RSS over cycles of N 720p RTMP streams arriving and leaving.

Kiln runs with the e2e application config (every stream is packaged as LL-HLS; nobody watches). Its
RSS is read from /proc when idle, then in each of ``--cycles`` cycles: N ffmpeg publishers
(``-re -stream_loop -1 -c copy``, 720p30 H.264 3 Mbit/s + AAC) start, the API lists every stream,
they run ``--hold`` seconds (RSS "live"), they stop, the API lists no stream, and ``--settle``
seconds later RSS is read again ("after"). The reference is Kiln's own idle RSS in the same run.
Targets (issue 16): after the last cycle, RSS within 20 MB of idle; per live stream,
(live - idle) / N at most 6 MB.

``--tracemalloc`` runs Kiln under ``bench/_traced_kiln.py`` (tracemalloc on) and, when each cycle's
streams are live and after the last cycle, asks it (SIGUSR2) for its biggest allocation sites, which
are printed at the end: the Python side of where the memory goes (FFmpeg's own buffers are not traced).

Usage: .venv/bin/python bench/memory.py [--streams 20 --cycles 10 --hold 10 --settle 5] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import (  # noqa: E402
    ROOT,
    BenchKiln,
    dead,
    ffmpeg_publish,
    media_720p,
    out,
    rss_mb,
    run_dir,
    stop_all,
    table,
    thread_count,
    wait_until,
)


class TracedKiln(BenchKiln):
    """``kiln serve`` started through bench/_traced_kiln.py: SIGUSR2 appends a tracemalloc report."""

    def start(self, timeout: float = 30.0) -> TracedKiln:
        self.report = self.workdir / "tracemalloc.txt"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_traced_kiln.py"), "serve", "-c", str(self.config_path),
             "-d", str(self.data_dir), "--log-level", self.log_level],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "KILN_TRACEMALLOC_OUT": str(self.report)})
        wait_until(lambda: self._ready(), timeout, "kiln ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"kiln exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.api.get("/v1/version", timeout=1).status_code == 200 and self.rtmp_ready()
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    def dump(self, label: str) -> None:
        size = self.report.stat().st_size if self.report.exists() else 0
        with self.report.open("a") as fh:
            fh.write(f"\n#### {label}\n")
        os.kill(self.pid, signal.SIGUSR2)
        wait_until(lambda: self.report.stat().st_size > size + len(label) + 8, 30, "tracemalloc report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the streams run in each cycle")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the API lists no stream")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    media = media_720p()
    wd = run_dir("memory")
    kiln = (TracedKiln if args.tracemalloc else BenchKiln)(wd / "kiln")
    kiln.start()
    pubs: list = []
    rows = []
    notes: list[str] = []
    out(f"kiln bench/memory.py  streams={args.streams} cycles={args.cycles} hold={args.hold:g}s "
        f"settle={args.settle:g}s  load avg {os.getloadavg()[0]:.2f}  tracemalloc={args.tracemalloc}")
    try:
        time.sleep(2)
        idle = rss_mb(kiln.pid)
        idle_threads = thread_count(kiln.pid)
        for cycle in range(1, args.cycles + 1):
            pubs = [ffmpeg_publish(kiln.rtmp_url(f"c{cycle}s{i}"), media, wd / "peers") for i in range(args.streams)]
            wait_until(lambda: len(kiln.stream_names()) >= args.streams, 90, f"{args.streams} streams listed")
            time.sleep(args.hold)
            live, live_threads = rss_mb(kiln.pid), thread_count(kiln.pid)
            if args.tracemalloc and cycle in (1, args.cycles):
                kiln.dump(f"cycle {cycle}: {args.streams} streams live")
            notes += [f"cycle {cycle}: publisher died: {d}" for d in dead(pubs)]
            stop_all(pubs)
            pubs = []
            wait_until(lambda: not kiln.stream_names(), 60, "no stream listed")
            time.sleep(args.settle)
            after = rss_mb(kiln.pid)
            rows.append([cycle, round(live, 1), round((live - idle) / args.streams, 2), live_threads, round(after, 1),
                         round(after - idle, 1), thread_count(kiln.pid)])
            out(f"cycle {cycle}: live {live:.1f} MB, after {after:.1f} MB (idle {idle:.1f} MB)")
        if args.tracemalloc:
            kiln.dump(f"after {args.cycles} cycles")
        out()
        out(f"idle: {idle:.1f} MB RSS, {idle_threads} threads (the reference)")
        out(table(["cycle", "rss live MB", "MB per stream", "threads live", "rss after MB", "after - idle MB",
                   "threads after"], rows))
        last, per = rows[-1], max(r[2] for r in rows)
        out(f"after {args.cycles} cycles: {last[5]:+.1f} MB over idle (target <= 20 MB: "
            f"{'met' if last[5] <= 20 else 'NOT met'}); per live stream up to {per:.2f} MB (target <= 6 MB: "
            f"{'met' if per <= 6 else 'NOT met'})")
        counts = kiln.log_findings()
        out("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        for line in notes + kiln.log_lines(" WARNING ", " ERROR ", "Traceback"):
            out("  " + line)
        if args.tracemalloc:
            out()
            out(kiln.report.read_text())
    finally:
        stop_all(pubs)
        kiln.close()


if __name__ == "__main__":
    main()
