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

``--floor`` adds a run per round with no Kiln at all: N ``srt-live-transmit`` listeners (Debian srt-tools,
the same libsrt 1.5.1) receive the same N SRT publishers and write to /dev/null. That is libsrt's own cost
for these streams with the least an application can do, printed per stream-minute and as a share of the
same round's RTMP figure: whatever part of the 1.5x budget it takes is not Kiln's to cut.

``--compare TREE`` adds a third run per round: SRT into the Kiln of another checkout (e.g. main, for a
before/after in one call), with its ratio to the same round's RTMP.

``--srt-option SRTO_KEY=VALUE`` (repeatable) puts an option in Kiln's SRT provider ``Options`` for every
Kiln run of the call (RTMP's too, where the idle SRT port is all it touches): to measure a setting by itself.

Usage: .venv/bin/python bench/srt_ingest.py [--streams 10 --seconds 15 --repeat 2 --threads --profile]
       [--floor] [--compare /work/main] [--srt-option SRTO_RCVBUF=...]
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import (  # noqa: E402
    BenchKiln,
    CpuWindow,
    Peer,
    dead,
    media_720p,
    out,
    run_dir,
    stop_all,
    table,
    wait_until,
)
from ingest import publish_to_kiln, srt_ingest_available  # noqa: E402

from tests.peers.ports import free_udp_port, wait_udp_bound  # noqa: E402

SRT_LIVE_TRANSMIT = "srt-live-transmit"

TARGET = 1.5


def thread_cpu(pid: int) -> Counter[str]:
    """CPU seconds per thread name (digits folded, so the N demux threads add up under one name), from the
    scheduler's nanosecond counter (``schedstat``): clock ticks are too coarse for a libsrt thread in 15 s.
    Each name also gets ``<name> switches``: its context switches (voluntary + involuntary, from ``status``),
    since in this VM a wake-up costs more than most of what a libsrt thread does once awake."""
    used: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            on_cpu_ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        name = re.sub(r"\d+", "N", stat[stat.index("(") + 1:stat.rindex(")")])
        used[name] += on_cpu_ns / 1e9
        used[f"{name} switches"] += sum(int(line.split()[1]) for line in status.splitlines()
                                        if "ctxt_switches:" in line)
    return used


def thread_report(before: Counter[str], after: Counter[str], wall: float, n: int = 6) -> list[str]:
    """The busiest threads: % of a core and context switches per second."""
    busiest = sorted(((k, after[k] - before.get(k, 0.0)) for k in after if not k.endswith(" switches")),
                     key=lambda x: -x[1])[:n]
    return [f"thread {name[:28]:28s} {used / wall * 100:5.1f} % of a core, "
            f"{(after[name + ' switches'] - before.get(name + ' switches', 0.0)) / wall:6.0f} context switches/s"
            for name, used in busiest]


@dataclass
class Figure:
    per_min: float  # CPU-s per stream-minute of the whole process(es)
    busy: float  # the machine's busy share over the window, %
    notes: list[str]
    libsrt: float = 0.0  # of per_min: libsrt's own threads (SRT:RcvQ, SRT:TsbPd, ...)


def libsrt_share(before: Counter[str], after: Counter[str], wall: float, streams: int) -> float:
    """CPU-s per stream-minute of libsrt's own threads (named ``SRT:…`` by libsrt)."""
    return sum(after[k] - before.get(k, 0.0) for k in after
               if k.startswith("SRT:") and not k.endswith(" switches")) / (streams * wall / 60.0)


def run_floor(args: argparse.Namespace, media: Path, wd: Path) -> Figure:
    """libsrt alone: one srt-live-transmit listener per publisher (it serves one caller), output /dev/null."""
    log_dir = wd / f"floor-{time.monotonic_ns()}"
    receivers: list[Peer] = []
    pubs: list[Peer] = []
    notes: list[str] = []
    try:
        for i in range(args.streams):
            port = free_udp_port()
            listen = f"srt://127.0.0.1:{port}?mode=listener"
            receivers.append(Peer.spawn(f"slt-floor-{i}", ["sh", "-c", f"exec {SRT_LIVE_TRANSMIT} -q '{listen}' "
                                                           "file://con > /dev/null"], log_dir))
            wait_udp_bound(port, 15, receivers[-1])
            url = f"srt://127.0.0.1:{port}?mode=caller&latency=200000&pkt_size=1316"
            pubs.append(Peer.spawn("ffmpeg-srt-pub", ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin",
                                                      "-re", "-stream_loop", "-1", "-i", str(media), "-c", "copy",
                                                      "-f", "mpegts", url], log_dir))
        pids = [r.pid for r in receivers]
        wait_until(lambda: all("SRT:TsbPd" in thread_cpu(p) for p in pids), 60,
                   f"{args.streams} srt-live-transmit receivers with a caller")
        time.sleep(args.warmup)
        before = sum((thread_cpu(p) for p in pids), Counter())
        win = CpuWindow.measure({"floor": pids}, args.seconds)
        after = sum((thread_cpu(p) for p in pids), Counter())
        notes += [f"died: {d}" for d in dead(receivers + pubs)]
        if args.threads:
            notes += thread_report(before, after, win.wall)
        return Figure(win.per_minute("floor", args.streams), win.machine_busy_pct, notes,
                      libsrt_share(before, after, win.wall, args.streams))
    finally:
        stop_all(pubs)
        stop_all(receivers)


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


def with_srt_options(kiln: BenchKiln, pairs: list[str]) -> None:
    """Add ``KEY=VALUE`` pairs to the SRT provider's ``Options`` in Kiln's Server.xml (to measure a setting)."""
    options = "".join(f"<Option><Key>{k}</Key><Value>{v}</Value></Option>"
                      for k, _, v in (pair.partition("=") for pair in pairs))
    bind = f"<SRT><Port>{kiln.ports.srt}</Port></SRT>"
    xml = kiln.config_path.read_text()
    if bind not in xml:
        raise SystemExit(f"--srt-option: {bind} not found in {kiln.config_path}")
    with_options = f"<SRT><Port>{kiln.ports.srt}</Port><Options>{options}</Options></SRT>"
    kiln.config_path.write_text(xml.replace(bind, with_options))


def run(protocol: str, args: argparse.Namespace, media: Path, wd: Path,
        tree: Path | None = None) -> Figure:
    kiln = BenchKiln(wd / f"{protocol}-{time.monotonic_ns()}")
    if args.srt_option:
        with_srt_options(kiln, args.srt_option)
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
            notes += thread_report(before, after, win.wall)
        if args.profile:
            notes += py_spy_top(kiln.pid, args.profile, kiln.workdir / "py-spy.txt")
        counts = kiln.log_findings()
        if counts["ERROR"] or counts["Traceback"] or counts["drop"] or counts["skip"]:
            notes.append("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        return Figure(win.per_minute("server", args.streams), win.machine_busy_pct, notes,
                      libsrt_share(before, after, win.wall, args.streams))
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
    ap.add_argument("--floor", action="store_true", help="also run srt-live-transmit receivers to /dev/null "
                    "(libsrt alone, no Kiln) in each round, as the floor")
    ap.add_argument("--compare", metavar="TREE", help="also run another checkout's Kiln (e.g. /work/main) on SRT "
                    "in each round, as the before figure")
    ap.add_argument("--srt-option", action="append", default=[], metavar="SRTO_KEY=VALUE",
                    help="an SRT provider option (Server.xml Bind/Providers/SRT/Options) for Kiln's runs; repeatable")
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
    floors: list[tuple[float, float]] = []  # (srt-live-transmit whole, its libsrt threads) / RTMP
    libsrt_in_kiln: list[float] = []  # Kiln's libsrt threads / RTMP
    for round_no in range(1, args.repeat + 1):
        figures: dict[str, Figure] = {}
        runs: list[tuple[str, str, Path | None]] = [("rtmp", "rtmp", None), ("srt", "srt", None)]
        if args.compare:
            runs.append(("srt", f"srt ({args.compare})", Path(args.compare)))
        if args.floor:
            runs.append(("floor", "srt-live-transmit to /dev/null (floor)", None))
        for protocol, label, tree in runs:
            fig = run_floor(args, media, wd) if protocol == "floor" else run(protocol, args, media, wd, tree)
            figures[protocol if protocol == "floor" else label] = fig
            rows.append([round_no, label, round(fig.per_min, 3), round(fig.libsrt, 3), round(fig.busy, 1)])
            out(f"round {round_no} {label}: {fig.per_min:.3f} CPU-s per stream-minute, libsrt's own threads "
                f"{fig.libsrt:.3f} of it (machine {fig.busy:.0f} % busy)")
            for note in fig.notes:
                out(f"  {note}")
        rtmp = figures["rtmp"].per_min
        if rtmp:
            ratios.append(figures["srt"].per_min / rtmp)
            libsrt_in_kiln.append(figures["srt"].libsrt / rtmp)
            if args.compare:
                compared.append(figures[f"srt ({args.compare})"].per_min / rtmp)
            if args.floor:
                floors.append((figures["floor"].per_min / rtmp, figures["floor"].libsrt / rtmp))
    out()
    out(table(["round", "run", "cpu_s/stream-min", "libsrt threads", "machine%"], rows))
    if ratios:
        ratio = statistics.median(ratios)
        out(f"SRT / RTMP ingest CPU per stream-minute: {ratio:.3f}x (rounds: {', '.join(f'{r:.3f}' for r in ratios)}; "
            f"target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'})")
        out(f"of which libsrt's own threads in Kiln: {statistics.median(libsrt_in_kiln):.2f}x RTMP's whole path")
    if floors:
        whole = statistics.median(f[0] for f in floors)
        threads = statistics.median(f[1] for f in floors)
        out(f"floor, srt-live-transmit to /dev/null (libsrt + the least an application does): {whole:.2f}x RTMP "
            f"(rounds: {', '.join(f'{f[0]:.2f}' for f in floors)}); its libsrt threads alone {threads:.2f}x RTMP: "
            f"of the {TARGET}x budget, {TARGET - threads:.2f}x is left for everything above libsrt (listener, "
            "TS demux, stream, LL-HLS) against RTMP's whole path")
    if compared:
        out(f"the same with {args.compare}'s Kiln for SRT: {statistics.median(compared):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in compared)})")


if __name__ == "__main__":
    main()
