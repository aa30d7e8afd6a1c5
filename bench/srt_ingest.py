"""SRT ingest cost next to RTMP ingest, in one run: issue 16's "SRT ingest <= 1.5x RTMP ingest".

Kiln is started twice with the same config (``bench/ingest.py``'s: the e2e application, LL-HLS
packaging on) and fed the same 720p30 3 Mbit/s H.264 + AAC file by N ``ffmpeg -re -c copy``
publishers: first over RTMP (FLV), then over SRT (MPEG-TS, latency 200 ms). ``--repeat`` alternates
the two so a busy machine hits both alike. For each run it prints Kiln's CPU per stream-minute, the
machine's busy share, and Kiln's CPU split by thread (``--threads``: the listener, the TS demux
threads, the event loop, libsrt's own threads), then the median SRT/RTMP ratio next to the target.

``--profile`` samples Kiln with py-spy (``.venv/bin/py-spy``) for a few seconds after each measured
window (outside it, so sampling costs nothing in the figures) and prints the top entries by own
samples and the top functions including callees.

``--compare TREE`` adds a third run per round: SRT into the Kiln of another checkout (e.g. main, for a
before/after in one call), with its ratio to the same round's RTMP.

Usage: .venv/bin/python bench/srt_ingest.py [--streams 10 --seconds 15 --repeat 2 --threads --profile]
       [--compare /work/main]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import BenchKiln, CpuWindow, dead, media_720p, out, run_dir, stop_all, table, wait_until  # noqa: E402
from ingest import publish_to_kiln, srt_ingest_available  # noqa: E402

TARGET = 1.5
TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> Counter[str]:
    """CPU seconds per thread name (digits folded, so the N demux threads add up under one name)."""
    used: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = re.sub(r"\d+", "N", stat[stat.index("(") + 1:stat.rindex(")")])
        fields = stat[stat.rindex(")") + 2:].split()
        used[name] += (int(fields[11]) + int(fields[12])) / TICK
    return used


def py_spy_top(pid: int, seconds: float, out_file: Path, n: int = 12, rate: int = 100) -> list[str]:
    """Sample ``pid`` with py-spy (raw collapsed stacks) and return the top own / inclusive entries."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return ["py-spy not found: no profile"]
    done = subprocess.run([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate), "--gil",
                           "-f", "raw", "--nonblocking", "-o", str(out_file)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or not out_file.exists():
        return [f"py-spy failed: {done.stderr.strip()[-200:]}"]
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out_file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r" \(([^)]*?)([^/)]*)\)$", r" (\2)", f) for f in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(re.sub(r":\d+\)$", ")", f) for f in frames):
            inclusive[frame] += samples
    lines = [f"py-spy {seconds:g}s, {total} samples holding the GIL ({rate}/s per thread); top own:"]
    lines += [f"  {c / total * 100:5.1f} %  {f}" for f, c in own.most_common(n)]
    lines.append("top inclusive (functions):")
    lines += [f"  {c / total * 100:5.1f} %  {f}" for f, c in inclusive.most_common(n)]
    return lines


def run(protocol: str, args: argparse.Namespace, media: Path, wd: Path,
        tree: Path | None = None) -> tuple[float, float, list[str]]:
    kiln = BenchKiln(wd / f"{protocol}-{time.monotonic_ns()}")
    if tree is not None:
        kiln.tree = tree  # another checkout's Kiln (``--compare``)
    kiln.start()
    pubs = []
    notes: list[str] = []
    try:
        pubs = [publish_to_kiln(protocol, kiln, f"s{i}", media, kiln.workdir / "peers") for i in range(args.streams)]
        wait_until(lambda: len(kiln.stream_names()) >= args.streams, 60, f"{args.streams} {protocol} streams listed")
        time.sleep(args.warmup)
        before = thread_cpu(kiln.pid)
        win = CpuWindow.measure({"server": [kiln.pid]}, args.seconds)
        after = thread_cpu(kiln.pid)
        notes += [f"publisher died: {d}" for d in dead(pubs)]
        if len(kiln.stream_names()) != args.streams:
            notes.append(f"the API lists {len(kiln.stream_names())} streams after the window, not {args.streams}")
        if args.threads:
            for name, used in sorted(((n, after[n] - before.get(n, 0.0)) for n in after), key=lambda x: -x[1])[:6]:
                notes.append(f"thread {name[:28]:28s} {used / win.wall * 100:5.1f} % of a core")
        if args.profile:
            notes += py_spy_top(kiln.pid, args.profile, kiln.workdir / "py-spy.txt")
        counts = kiln.log_findings()
        if counts["ERROR"] or counts["Traceback"] or counts["drop"] or counts["skip"]:
            notes.append("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        return win.per_minute("server", args.streams), win.machine_busy_pct, notes
    finally:
        stop_all(pubs)
        kiln.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", action="store_true", help="print Kiln's CPU by thread")
    ap.add_argument("--profile", type=float, nargs="?", const=8.0, default=0.0, metavar="SECONDS",
                    help="after each window, sample Kiln with py-spy (default 8 s) and print the top entries")
    ap.add_argument("--compare", metavar="TREE", help="also run another checkout's Kiln (e.g. /work/main) on SRT "
                    "in each round, as the before figure")
    args = ap.parse_args()
    if not srt_ingest_available():
        out("Kiln has no SRT ingest wired: nothing to compare.")
        return
    media = media_720p()
    wd = run_dir("srt-ingest")
    out(f"srt_ingest bench: {args.streams} x 720p30 3 Mbit/s, {args.seconds:g}s windows, {args.repeat} round(s) "
        f"RTMP then SRT; load avg {os.getloadavg()[0]:.2f}; work dir {wd}")
    rows = []
    ratios = []
    compared: list[float] = []
    for round_no in range(1, args.repeat + 1):
        figures = {}
        runs: list[tuple[str, str, Path | None]] = [("rtmp", "rtmp", None), ("srt", "srt", None)]
        if args.compare:
            runs.append(("srt", f"srt ({args.compare})", Path(args.compare)))
        for protocol, label, tree in runs:
            per_min, busy, notes = run(protocol, args, media, wd, tree)
            figures[label] = per_min
            rows.append([round_no, label, round(per_min, 3), round(busy, 1)])
            out(f"round {round_no} {label}: {per_min:.3f} CPU-s per stream-minute (machine {busy:.0f} % busy)")
            for note in notes:
                out(f"  {note}")
        if figures["rtmp"]:
            ratios.append(figures["srt"] / figures["rtmp"])
            if args.compare:
                compared.append(figures[f"srt ({args.compare})"] / figures["rtmp"])
    out()
    out(table(["round", "protocol", "cpu_s/stream-min", "machine%"], rows))
    if ratios:
        ratio = statistics.median(ratios)
        out(f"SRT / RTMP ingest CPU per stream-minute: {ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'})")
    if compared:
        out(f"the same with {args.compare}'s Kiln for SRT: {statistics.median(compared):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in compared)})")


if __name__ == "__main__":
    main()
