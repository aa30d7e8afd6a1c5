"""WebRTC playback capacity: Kiln's CPU per viewer-minute, packet loss, frame arrival -> first RTP packet
out, and the largest viewer count with every viewer under 1 % loss; next to LL-HLS viewers of the same
stream in the same run, and (``--compare TREE``) next to the Kiln of another checkout (e.g. main's
send path) measured first in the same call.

One 720p30 H.264 (no B-frames) + AAC stream is published by ffmpeg over RTMP; Kiln passes the H.264
through and encodes Opus for WebRTC. For each step of ``--viewers`` (default 10,50,100,200,300):
(a) that many WebRTC viewers (bench/_rtc_viewers.py: aiortc peers that complete ICE and DTLS, then
    count RTP from the clear header on their socket, no SRTP decrypt or jitter buffer; ``--per-process``
    per farm process) play over OME's signalling; after ``--warmup`` seconds Kiln's CPU is read from
    /proc over ``--seconds``; each viewer reports RTP packets received and lost (sequence gaps);
(b) reference: the same number of LL-HLS viewers (httpx, blocking reload on the preload hint, then
    the part), Kiln's CPU over the same window.
Kiln's own figures per step: p50/p99 from a frame's arrival in Kiln to its first RTP packet out
(``first_rtp_ms`` of the feed's log line; main's Kiln logs only its per-session time to the sender,
printed in the ``per-viewer p99`` column for both). Targets (issue 12) are printed next to the
figures. The viewers share the machine with Kiln: its busy share and UDP receive-buffer drops are
printed, since on 2 cores the clients are a limit as well. A ramp stops after its first failing step.

``--mode ingest`` measures WebRTC ingest instead (bench/_webrtc_ingest.py): N aiortc WHIP publishers,
Kiln's CPU per stream-minute next to the same streams over RTMP in the same run. ``--mode sendcost``
(bench/_rtc_sendcost.py) measures the send path's CPU per RTP packet, which the machine's load does not move.

Usage:
  .venv/bin/python bench/webrtc.py                          # about 5 minutes
  .venv/bin/python bench/webrtc.py --viewers 10,50 --seconds 10 --compare /work/main
  .venv/bin/python bench/webrtc.py --mode ingest [--streams 8] [--seconds 20]
  .venv/bin/python bench/webrtc.py --mode sendcost [--viewers 100] [--compare /work/main]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _rtc_glass  # noqa: E402
import httpx  # noqa: E402
from _media import (  # noqa: E402
    ROOT,
    BenchKiln,
    CpuWindow,
    ffmpeg_publish,
    media_720p,
    out,
    run_dir,
    stop_all,
    table,
    timecoded_publish,
)

from tests.e2e.webrtc.play_kiln import RtcPorts, rtc_server_xml  # noqa: E402
from tests.peers.process import Peer  # noqa: E402

FARM = Path(__file__).with_name("_rtc_viewers.py")
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
PART = re.compile(r"part_\d+_(\d+)_(\d+)_")
HEADERS = ["kiln", "viewers", "rtc up", "loss% avg/max (<1)", "kiln %core", "cpu-s/viewer-min",
           "frame->rtp p50/p99 ms (p99<=10)", "last viewer p99 ms", "shed frames (0)", "per-viewer p99 ms",
           "farms %core", "machine %", "udp rcvbuf drops", "load 1m", "hls kiln %core", "hls cpu-s/viewer-min",
           "hls parts/err"]
TARGET_VIEWERS = 200


class RtcKiln(BenchKiln):
    def __init__(self, workdir: Path, tree: Path = ROOT) -> None:
        ports = RtcPorts()
        super().__init__(workdir, ports=ports)
        self.tree = tree
        self.config_path.write_text(rtc_server_xml(ports))


def window_figures(text: str) -> tuple[str, int | None, str]:
    """The feed's arrival -> first RTP out over the measured windows (``webrtc feed window`` lines logged while
    CPU was measured): median p50 / worst p99 in ms, the frames it shed (too late to send: overload), and the worst
    p99 of arrival -> the last viewer's packets out."""
    found = [(float(m.group(2)), float(m.group(3)), int(m.group(1)), float(m.group(4))) for m in (
        re.search(r"webrtc feed window .*shed=(\d+) first_rtp_ms_p50=([\d.]+) first_rtp_ms_p99=([\d.]+) "
                  r"last_viewer_ms_p99=([\d.]+)", x)
        for x in text.splitlines()) if m]
    if not found:
        return "-", None, "-"
    return (f"{statistics.median(f[0] for f in found):.2f}/{max(f[1] for f in found):.2f}",
            sum(f[2] for f in found), f"{max(f[3] for f in found):.0f}")


def session_figures(text: str) -> str:
    """The median over sessions of each one's p99 from arrival to its own packets out (main's Kiln: to its sender)."""
    sessions = [float(m.group(1)) for m in (re.search(r"webrtc session closed .*first_rtp_ms_p99=([\d.]+)", x)
                                            for x in text.splitlines()) if m]
    return f"{statistics.median(sessions):.2f}" if sessions else "-"


def read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def udp_drops() -> int:
    """The machine's UDP receive-buffer drops (RcvbufErrors in /proc/net/snmp): datagrams a receiver, here
    a starved viewer farm, could not take in time. Loss that shows here is the clients', not Kiln's."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


def farms(url: str, n: int, per_process: int, seconds: float, wd: Path) -> list[Peer]:
    peers = []
    for i in range(0, n, per_process):
        count = min(per_process, n - i)
        peers.append(Peer.spawn(f"rtc-farm-{n}-{i}", [sys.executable, str(FARM), url, str(count), str(seconds)], wd,
                                cwd=ROOT))
    return peers


def farm_results(peers: list[Peer], timeout: float) -> list[dict[str, Any]]:
    results = []
    for p in peers:
        p.wait(timeout)
        results += [json.loads(line) for line in p.stdout_text().splitlines() if line.startswith("{")]
    return results


async def llhls_viewer(master: str, stop: asyncio.Event, tally: dict[str, int]) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        try:
            text = (await http.get(master)).text
            chunklist = urljoin(master, next(line for line in text.splitlines()
                                             if line and not line.startswith("#") and "video" in line))
            url = chunklist
            while not stop.is_set():
                playlist = await http.get(url)
                hint = HINT.search(playlist.text)
                if hint is None:
                    tally["errors"] += 1
                    await asyncio.sleep(0.5)
                    continue
                part_url = urljoin(chunklist, hint.group(1))
                part = await http.get(part_url)  # blocks until the hinted part is cut
                tally["parts"] += 1
                tally["bytes"] += len(part.content)
                msn, idx = PART.search(hint.group(1)).groups()  # type: ignore[union-attr]
                sep = "&" if "?" in chunklist else "?"
                url = f"{chunklist}{sep}_HLS_msn={msn}&_HLS_part={int(idx) + 1}"
        except (httpx.HTTPError, StopIteration):
            tally["errors"] += 1


def run_llhls(master: str, n: int, seconds: float, warmup: float, pid: int) -> tuple[CpuWindow, dict[str, int]]:
    tally = {"parts": 0, "bytes": 0, "errors": 0}
    result: dict[str, CpuWindow] = {}

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(llhls_viewer(master, stop, tally)) for _ in range(n)]
        await asyncio.sleep(warmup)
        result["cpu"] = await asyncio.to_thread(CpuWindow.measure, {"kiln": [pid]}, seconds)
        stop.set()
        await asyncio.wait(tasks, timeout=15)

    asyncio.run(main())
    return result["cpu"], tally


def ramp(label: str, tree: Path, args: argparse.Namespace, wd: Path) -> tuple[list[list[object]], int]:
    """One Kiln (from ``tree``) with one publisher, the viewer steps in turn: rows, largest N under 1 % loss."""
    steps = [int(v) for v in args.viewers.split(",")]
    kiln = RtcKiln(wd / f"kiln-{label}", tree).start()
    publisher = (timecoded_publish(kiln.rtmp_url("cam"), wd) if args.glass  # --glass: a live, time-stamped camera
                 else ffmpeg_publish(kiln.rtmp_url("cam"), media_720p(), wd))
    rows: list[list[object]] = []
    best = 0
    try:
        deadline = time.monotonic() + 30
        while "cam" not in kiln.stream_names() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        ports = kiln.ports
        ws_url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
        master = f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8"
        idle = CpuWindow.measure({"kiln": [kiln.pid]}, 5)
        out(f"[{label}: {tree}] kiln idle with one 720p publisher (Opus encode, LL-HLS packaging): "
            f"{idle.core_pct('kiln'):.1f} % of a core; load {Path('/proc/loadavg').read_text().split()[:3]}")
        glass = _rtc_glass.GlassProbe(ws_url, master, wd, label, hls=not args.no_hls) if args.glass else None
        if glass:  # glass-to-glass in OvenPlayer with no other viewer, then in each step's window (bench/_rtc_glass.py)
            glass.alone(args.seconds)
        for n in steps:
            drops0 = udp_drops()
            log_at = kiln.log_path.stat().st_size
            if glass:  # first: a browser joining beside N viewers' connection storm can take 30 s to connect
                glass.start(args.warmup + args.seconds, args.seconds)
            peers = farms(ws_url, n, args.per_process, args.warmup + args.seconds, wd)
            try:
                time.sleep(args.warmup)
                window_at = kiln.log_path.stat().st_size
                cpu = CpuWindow.measure({"kiln": [kiln.pid], "farms": [p.pid for p in peers]}, args.seconds)
                first, shed, last_viewer = window_figures(read_from(kiln.log_path, window_at))
                results = farm_results(peers, args.warmup + args.seconds + 120)
            finally:
                stop_all(peers)
            if glass:
                glass.finish(n)
            drops = udp_drops() - drops0
            load_1m = Path("/proc/loadavg").read_text().split()[0]  # other jobs on the machine take Kiln's share
            deadline = time.monotonic() + 30  # the sessions' closing lines (each viewer's DTLS goes down)
            while (read_from(kiln.log_path, log_at).count("webrtc session closed") < n
                   and time.monotonic() < deadline):
                time.sleep(0.5)
            per_viewer = session_figures(read_from(kiln.log_path, log_at))
            connected = sum(1 for r in results if r.get("connected"))
            losses = [100.0 * r.get("video_lost", 0) / max(1, r.get("video_received", 0) + r.get("video_lost", 0))
                      for r in results if r.get("connected")]
            worst = max(losses) if losses else 100.0
            ok = connected == n and worst < 1.0 and not shed  # a shed frame is video a viewer never got
            best = n if ok else best
            if args.no_hls:
                hls_cells = ["-", "-", "-"]
            else:
                hls_cpu, tally = run_llhls(master, n, args.seconds, 4.0, kiln.pid)
                hls_extra = hls_cpu.core_pct("kiln") - idle.core_pct("kiln")
                hls_cells = [f"{hls_cpu.core_pct('kiln'):.0f}", f"{60 * hls_extra / 100 / n:.2f}",
                             f"{tally['parts']}/{tally['errors']}"]
            extra = cpu.core_pct("kiln") - idle.core_pct("kiln")
            rows.append([label, n, f"{connected}/{n}",
                         f"{statistics.mean(losses) if losses else 0:.2f}/{worst:.2f}",
                         f"{cpu.core_pct('kiln'):.0f}", f"{60 * extra / 100 / n:.2f}", first, last_viewer,
                         "-" if shed is None else shed, per_viewer,
                         f"{cpu.core_pct('farms'):.0f}", f"{cpu.machine_busy_pct:.0f}", drops, load_1m, *hls_cells])
            out(table(HEADERS, rows[-1:]))
            if not ok:
                break
        out(f"[{label}] kiln log: {kiln.log_findings()}" + (f"\n{glass.summary()}" if glass else ""))
    finally:
        stop_all([publisher])
        kiln.close()
    return rows, best


def main() -> None:
    mode = argparse.ArgumentParser(add_help=False)
    mode.add_argument("--mode", choices=("play", "ingest", "sendcost"), default="play")
    chosen, rest = mode.parse_known_args()
    if chosen.mode == "ingest":
        import _webrtc_ingest
        _webrtc_ingest.main(rest)
        return
    if chosen.mode == "sendcost":
        import _rtc_sendcost
        _rtc_sendcost.main(rest)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("play", "ingest", "sendcost"), default="play")
    ap.add_argument("--viewers", default="10,50,100,200,300")
    ap.add_argument("--per-process", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--compare", type=Path, help="another checkout whose Kiln is measured first (e.g. /work/main)")
    ap.add_argument("--no-hls", action="store_true", help="leave out the LL-HLS reference")
    ap.add_argument("--glass", action="store_true", help="publish live with a clock on each frame; OvenPlayer's "
                    "glass-to-glass alone and in each step (bench/_rtc_glass.py)")
    args = ap.parse_args()
    wd = run_dir("webrtc")
    runs = ([("before", args.compare)] if args.compare else []) + [("this", ROOT)]
    rows: list[list[object]] = []
    bests: list[tuple[str, int]] = []
    for label, tree in runs:
        got, best = ramp(label, tree, args, wd)
        rows += got
        bests.append((label, best))
    out()
    out(table(HEADERS, rows))
    for label, best in bests:
        out(f"[{label}] largest N with every WebRTC viewer under 1 % loss: {best} (steps {args.viewers}; "
            f"target >= {TARGET_VIEWERS})")
    out(f"run dir: {wd}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
