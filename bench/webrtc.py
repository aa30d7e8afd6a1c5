"""WebRTC playback capacity: Kiln's CPU per viewer-minute, packet loss, and the largest viewer count with
every viewer under 1 % loss; next to LL-HLS viewers of the same stream in the same run.

One 720p30 3 Mbit/s H.264 (no B-frames) + AAC stream is published by ffmpeg over RTMP; Kiln passes
the H.264 through and encodes Opus for WebRTC. For each step of ``--viewers`` (default 5,10,20,40):
(a) that many WebRTC viewers (aiortc peers in ``--per-process``-sized farms, bench/_rtc_viewers.py,
    receiving without decoding) play over OME's signalling; after ``--warmup`` seconds Kiln's CPU is
    read from /proc over ``--seconds``; each viewer reports RTP packets received and lost;
(b) reference: the same number of LL-HLS viewers (httpx, blocking reload on the preload hint, then
    the part), Kiln's CPU over the same window.
Kiln's own figures are printed too: the p50/p99 time from a frame's arrival in Kiln to its payloads
being handed to the RTP sender (``first_rtp_ms``, logged per session). The viewers share the machine
with Kiln, so the machine's busy share is printed: on 2 cores the clients are a limit as well.

Usage:
  .venv/bin/python bench/webrtc.py                          # about 3 minutes
  .venv/bin/python bench/webrtc.py --viewers 5,20 --seconds 10
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
)

from tests.e2e.webrtc.play_kiln import RtcPorts, rtc_server_xml  # noqa: E402
from tests.peers.process import Peer  # noqa: E402

FARM = Path(__file__).with_name("_rtc_viewers.py")
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
PART = re.compile(r"part_\d+_(\d+)_(\d+)_")
HEADERS = ["viewers", "rtc up", "loss% avg/max", "kiln %core", "cpu-s/viewer-min", "farms %core", "machine %",
           "udp rcvbuf drops", "hls kiln %core", "hls cpu-s/viewer-min", "hls parts/err"]


class RtcKiln(BenchKiln):
    def __init__(self, workdir: Path) -> None:
        ports = RtcPorts()
        super().__init__(workdir, ports=ports)
        self.config_path.write_text(rtc_server_xml(ports))


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", default="5,10,20,40")
    ap.add_argument("--per-process", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    args = ap.parse_args()
    steps = [int(v) for v in args.viewers.split(",")]
    wd = run_dir("webrtc")
    kiln = RtcKiln(wd / "kiln").start()
    publisher = ffmpeg_publish(kiln.rtmp_url("cam"), media_720p(), wd)
    rows, best = [], 0
    try:
        deadline = time.monotonic() + 30
        while "cam" not in kiln.stream_names() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        ports = kiln.ports
        ws_url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
        master = f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8"
        idle = CpuWindow.measure({"kiln": [kiln.pid]}, 5)
        out(f"kiln idle with one 720p publisher (Opus encode, LL-HLS packaging): {idle.core_pct('kiln'):.1f} % "
            "of a core")
        for n in steps:
            drops0 = udp_drops()
            peers = farms(ws_url, n, args.per_process, args.warmup + args.seconds, wd)
            try:
                time.sleep(args.warmup)
                cpu = CpuWindow.measure({"kiln": [kiln.pid], "farms": [p.pid for p in peers]}, args.seconds)
                results = farm_results(peers, args.warmup + args.seconds + 90)
            finally:
                stop_all(peers)
            drops = udp_drops() - drops0
            connected = sum(1 for r in results if r.get("connected"))
            losses = [100.0 * r.get("video_lost", 0) / max(1, r.get("video_received", 0) + r.get("video_lost", 0))
                      for r in results]
            worst = max(losses) if losses else 100.0
            ok = connected == n and worst < 1.0
            best = n if ok else best
            hls_cpu, tally = run_llhls(master, n, args.seconds, 4.0, kiln.pid)
            extra = cpu.core_pct("kiln") - idle.core_pct("kiln")
            hls_extra = hls_cpu.core_pct("kiln") - idle.core_pct("kiln")
            rows.append([n, f"{connected}/{n}", f"{statistics.mean(losses) if losses else 0:.2f}/{worst:.2f}",
                         f"{cpu.core_pct('kiln'):.0f}", f"{60 * extra / 100 / n:.2f}",
                         f"{cpu.core_pct('farms'):.0f}", f"{cpu.machine_busy_pct:.0f}", drops,
                         f"{hls_cpu.core_pct('kiln'):.0f}", f"{60 * hls_extra / 100 / n:.2f}",
                         f"{tally['parts']}/{tally['errors']}"])
            out(table(HEADERS, rows[-1:]))
        latencies = [line for line in kiln.log_path.read_text(errors="replace").splitlines()
                     if "webrtc session closed" in line]
        p99s = [float(m.group(1)) for m in (re.search(r"first_rtp_ms_p99=([\d.]+)", x) for x in latencies) if m]
        p50s = [float(m.group(1)) for m in (re.search(r"first_rtp_ms_p50=([\d.]+)", x) for x in latencies) if m]
        out()
        out(table(HEADERS, rows))
        out(f"largest N with every WebRTC viewer under 1 % loss: {best} (of the steps {args.viewers})")
        if p99s:
            out(f"frame arrival in Kiln -> payloads handed to the RTP sender, per session: p50 median "
                f"{statistics.median(p50s):.2f} ms, p99 median {statistics.median(p99s):.2f} ms, "
                f"p99 worst {max(p99s):.2f} ms ({len(p99s)} sessions)")
        out(f"kiln log: {kiln.log_findings()}  run dir: {wd}")
    finally:
        stop_all([publisher])
        kiln.close()


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
