"""RTMP push cost: Kiln's extra CPU per push next to ``ffmpeg -c copy`` relays doing the same work, in one run.

1. Kiln: ``--streams`` (default 10) ffmpeg publishers send the cached 720p30 3 Mbit/s file to Kiln
   (app ``app``, streams s<i>). Window A (``--seconds``): Kiln's CPU with no pushes. Then one
   ``:startPush`` per stream to nginx-rtmp (``rtmp://127.0.0.1:<port>/live``, key s<i>); once every
   task is ``pushing`` and nginx lists every stream as published, ``--warmup`` s, then window B.
   Extra CPU per push-minute = (B's CPU rate - A's CPU rate) / pushes. Also printed: nginx's
   incoming bitrate per pushed stream, Kiln's sentBytes per task, Kiln's RSS and thread count.
2. Reference: the same N files published to nginx-rtmp (live/src<i>), and N
   ``ffmpeg -i rtmp://nginx/live/src<i> -c copy -f flv rtmp://nginx/live/out<i>`` relays; the
   relays' summed CPU over a window of the same length, per relay-minute.
Prints both and the ratio Kiln / ffmpeg.

``--kiln-tree DIR`` (repeatable) runs another checkout's Kiln (e.g. an old commit in a ``git worktree``, or a
copy built with mypyc) in turns with this one, ``--turns`` times, the ffmpeg reference after each turn's Kilns
and the order reversed every other turn, so load from other jobs on the machine falls on every side alike.
Each row's ratio is against its own turn's reference; the summary gives each tree's mean.

Usage:
  .venv/bin/python bench/push.py                       # 10 pushes, 30 s windows (~2.5 min)
  .venv/bin/python bench/push.py --streams 3 --seconds 10
  .venv/bin/python bench/push.py --seconds 15 --turns 2 --kiln-tree /tmp/old   # before/after, interleaved
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import (  # noqa: E402
    BenchKiln,
    CpuWindow,
    Nginx,
    dead,
    ffmpeg_publish,
    ffmpeg_relay,
    media_720p,
    out,
    rss_mb,
    run_dir,
    start_nginx_rtmp,
    stop_all,
    table,
    thread_count,
    wait_until,
)

APP = "/v1/vhosts/default/apps/app"


def pushes(kiln: BenchKiln) -> dict[str, dict[str, Any]]:
    r = kiln.api.post(f"{APP}:pushes", timeout=10)
    return {p["id"]: p for p in (r.json().get("response") or [])} if r.status_code == 200 else {}


def published(nginx: Nginx, names: list[str], app: str = "live") -> bool:
    streams = nginx.rtmp_streams(app)
    return all(streams.get(n, {}).get("publishing") for n in names)


def bw_in(nginx: Nginx, names: list[str], app: str = "live") -> list[float]:
    streams = nginx.rtmp_streams(app)
    return [streams.get(n, {}).get("bw_in", 0) / 1e6 for n in names]


def run_kiln(args: argparse.Namespace, media: Path, wd: Path, tree: Path | None = None) -> dict[str, Any]:
    n = args.streams
    nginx = start_nginx_rtmp(wd / "nginx-dest")
    kiln = BenchKiln(wd / "kiln")
    if tree is not None:
        kiln.tree = tree
    kiln.start()
    pubs = []
    res: dict[str, Any] = {"notes": []}
    notes = res["notes"]
    try:
        pubs = [ffmpeg_publish(kiln.rtmp_url(f"s{i}"), media, wd / "peers-kiln") for i in range(n)]
        wait_until(lambda: len(kiln.stream_names()) >= n, 60, f"{n} streams listed")
        time.sleep(args.warmup)
        res["rss_a"] = rss_mb(kiln.pid)
        res["threads_a"] = thread_count(kiln.pid)
        res["a"] = CpuWindow.measure({"kiln": [kiln.pid], "nginx": [nginx.pid]}, args.seconds)
        t0 = time.monotonic()
        for i in range(n):
            body = {"id": f"p{i}", "stream": {"name": f"s{i}"}, "protocol": "rtmp",
                    "url": f"rtmp://127.0.0.1:{nginx.port}/live", "streamKey": f"s{i}"}
            r = kiln.api.post(f"{APP}:startPush", json=body, timeout=30)
            if r.status_code != 200:
                notes.append(f"startPush p{i}: HTTP {r.status_code} {r.text[:200]}")
        ids = [f"p{i}" for i in range(n)]
        names = [f"s{i}" for i in range(n)]
        try:
            wait_until(lambda: all(pushes(kiln).get(i, {}).get("state") == "pushing" for i in ids), 60,
                       "all pushes pushing")
            wait_until(lambda: published(nginx, names), 30, "nginx receiving every push")
        except TimeoutError as exc:
            states = {k: v.get("state") for k, v in pushes(kiln).items()}
            notes.append(f"not all pushes up: {states} ({str(exc).splitlines()[0]})")
        notes.append(f"all pushes pushing and received by nginx {time.monotonic() - t0:.1f}s after startPush")
        time.sleep(args.warmup)
        before = pushes(kiln)
        res["b"] = CpuWindow.measure({"kiln": [kiln.pid], "nginx": [nginx.pid]}, args.seconds)
        after = pushes(kiln)
        res["rss_b"] = rss_mb(kiln.pid)
        res["threads_b"] = thread_count(kiln.pid)
        res["bw_in"] = bw_in(nginx, names)
        wall = res["b"].wall
        sent = [(after.get(i, {}).get("totalsentBytes", 0) - before.get(i, {}).get("totalsentBytes", 0)) * 8 / wall
                / 1e6 for i in ids]
        res["sent_mbps"] = sent
        states = {k: (v.get("state"), v.get("sequence")) for k, v in after.items()}
        if any(s != ("pushing", states.get("p0", (None, 0))[1]) for s in states.values()):
            notes.append(f"push states after window B: {states}")
        notes += [f"publisher died: {d}" for d in dead(pubs)]
        for i in ids:
            r = kiln.api.post(f"{APP}:stopPush", json={"id": i}, timeout=30)
            if r.status_code != 200:
                notes.append(f"stopPush {i}: HTTP {r.status_code}")
        time.sleep(2)
        res["threads_stopped"] = thread_count(kiln.pid)
        res["rss_stopped"] = rss_mb(kiln.pid)
        counts = kiln.log_findings()
        notes.append("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        notes += ["  " + line for line in kiln.log_lines(" WARNING ", " ERROR ", "Traceback")]
        tail = nginx.error_log_tail(3)
        if tail:
            notes.append("nginx error.log tail: " + tail.replace("\n", " | ")[:300])
        return res
    finally:
        stop_all(pubs)
        kiln.close()
        nginx.stop()


def run_ffmpeg(args: argparse.Namespace, media: Path, wd: Path) -> dict[str, Any]:
    n = args.streams
    nginx = start_nginx_rtmp(wd / "nginx-ref")
    pubs = []
    relays = []
    res: dict[str, Any] = {"notes": []}
    try:
        pubs = [ffmpeg_publish(f"rtmp://127.0.0.1:{nginx.port}/live/src{i}", media, wd / "peers-ref")
                for i in range(n)]
        wait_until(lambda: published(nginx, [f"src{i}" for i in range(n)]), 30, "sources published")
        relays = [ffmpeg_relay(f"rtmp://127.0.0.1:{nginx.port}/live/src{i}",
                               f"rtmp://127.0.0.1:{nginx.port}/live/out{i}", wd / "peers-ref") for i in range(n)]
        outs = [f"out{i}" for i in range(n)]
        wait_until(lambda: published(nginx, outs), 30, "relays published")
        time.sleep(args.warmup)
        res["w"] = CpuWindow.measure({"relays": [r.pid for r in relays], "nginx": [nginx.pid]}, args.seconds)
        res["bw_in"] = bw_in(nginx, outs)
        res["notes"] += [f"died: {d}" for d in dead(pubs + relays)]
        return res
    finally:
        stop_all(relays + pubs)
        nginx.stop()


def report(n: int, k: dict[str, Any], f: dict[str, Any]) -> tuple[float, float]:
    """The tables of one Kiln run and its reference; returns (Kiln extra CPU-s per push-minute, relay's)."""
    a, b, w = k["a"], k["b"], f["w"]
    rate_a = a.used["kiln"] / a.wall
    rate_b = b.used["kiln"] / b.wall
    extra_per_min = (rate_b - rate_a) * 60 / n
    ref_per_min = w.per_minute("relays", n)
    out(table(["run", "wall_s", "cpu_s", "%core", "machine%", "nginx %core", "rss_MB", "threads"], [
        ["kiln, no pushes", round(a.wall, 1), round(a.used["kiln"], 2), round(a.core_pct("kiln"), 1),
         round(a.machine_busy_pct, 1), round(a.core_pct("nginx"), 1), round(k["rss_a"], 1), k["threads_a"]],
        [f"kiln, {n} pushes", round(b.wall, 1), round(b.used["kiln"], 2), round(b.core_pct("kiln"), 1),
         round(b.machine_busy_pct, 1), round(b.core_pct("nginx"), 1), round(k["rss_b"], 1), k["threads_b"]],
        [f"{n} ffmpeg relays", round(w.wall, 1), round(w.used["relays"], 2), round(w.core_pct("relays"), 1),
         round(w.machine_busy_pct, 1), round(w.core_pct("nginx"), 1), "-", "-"],
    ]))
    out(f"kiln after stopPush x{n}: rss {k['rss_stopped']:.1f} MB, threads {k['threads_stopped']}")

    def mbps(xs: list[float]) -> str:
        return f"min {min(xs):.2f} max {max(xs):.2f} Mbit/s" if xs else "-"
    out(f"nginx bw_in per pushed stream (Kiln push): {mbps(k['bw_in'])}; Kiln sentBytes rate per task: "
        f"{mbps(k['sent_mbps'])}; per ffmpeg relay: {mbps(f['bw_in'])}")
    out(f"kiln extra CPU per push-minute: {extra_per_min:.3f} s   "
        f"(with pushes {rate_b * 60 / n:.3f} s per stream-minute, without {rate_a * 60 / n:.3f})")
    out(f"ffmpeg -c copy relay CPU per relay-minute: {ref_per_min:.3f} s")
    if ref_per_min > 0:
        out(f"ratio kiln push / ffmpeg relay: {extra_per_min / ref_per_min:.2f}x")
    return extra_per_min, ref_per_min


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=10, help="source streams = pushes = relays")
    ap.add_argument("--seconds", type=float, default=30.0, help="each measurement window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--kiln-tree", type=Path, action="append", default=[],
                    help="another checkout whose Kiln takes turns with this one (repeatable)")
    ap.add_argument("--turns", type=int, default=1, help="rounds of every Kiln then the reference")
    args = ap.parse_args()
    n = args.streams
    media = media_720p()
    wd = run_dir("push")
    trees: list[tuple[str, Path | None]] = [("this", None)]
    trees += [(f"tree{i + 1}", t.resolve()) for i, t in enumerate(args.kiln_tree)]
    out(f"push bench: {n} x 720p30 3 Mbit/s sources, each pushed to nginx-rtmp over RTMP; windows of "
        f"{args.seconds:g}s; work dir {wd}")
    for label, tree in trees[1:]:
        out(f"{label} = {tree}")
    rows: list[tuple[int, str, float, float]] = []
    for turn in range(args.turns):
        order = trees if turn % 2 == 0 else trees[::-1]
        runs = []
        for label, tree in order:
            k = run_kiln(args, media, wd / f"t{turn}-{label}", tree)
            out(f"[kiln {label}, turn {turn + 1}] done")
            for note in k["notes"]:
                out(f"  {note}")
            runs.append((label, k))
        f = run_ffmpeg(args, media, wd / f"t{turn}-ref")
        out(f"[ffmpeg relays, turn {turn + 1}] done")
        for note in f["notes"]:
            out(f"  {note}")
        for label, k in runs:
            out()
            out(f"-- kiln {label}, turn {turn + 1} (uptime: {load_average()})")
            extra, ref = report(n, k, f)
            rows.append((turn + 1, label, extra, ref))
    if len(rows) > 1:
        out()
        out(table(["turn", "kiln", "extra CPU-s/push-min", "relay CPU-s/relay-min", "ratio"],
                  [[t, label, extra, ref, f"{extra / ref:.2f}x" if ref > 0 else "-"] for t, label, extra, ref in rows]))
        for label, _ in trees:
            mine = [(e, r) for _, lab, e, r in rows if lab == label]
            extra = sum(e for e, _ in mine) / len(mine)
            ref = sum(r for _, r in mine) / len(mine)
            out(f"{label}: mean extra {extra:.3f}, mean relay {ref:.3f}, ratio of means "
                f"{extra / ref if ref > 0 else float('nan'):.2f}x")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
