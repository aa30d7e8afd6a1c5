"""(g) of bench/llhls.py (``--ab-tree DIR``): this checkout's Kiln and another's side by side, CPU per request.

Why: on the shared 2-core machine, (d) and (e) measure mostly what the other jobs leave the server (Kiln got
25-50 % of a core in the same hour, and a before/after of two runs an hour apart said nothing). Here both
Kilns run at once, each with its own publisher of the same stream, and take turns under the same h2load
(``-n`` requests, ``-c 100``, the order swapped every round): each figure is the server's CPU time per request
above its own idle rate (measured for a second just before), which the other jobs disturb far less than
req/s, and each kind's median over the rounds is printed next to the other checkout's.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any
from urllib.parse import urljoin

AB_KINDS = ("part", "audio segment", "segment", "chunklist")


def run_ab(args: Any, bench_kiln: Any, publisher: Any, media: Any, run_dir: Any) -> None:
    import httpx
    from _llhls_load import _MEDIA_URI, serve_url
    from _media import ROOT, cpu_seconds, out, table, wait_until

    trees = {"this": str(ROOT), "--ab-tree": args.ab_tree}
    running: dict[str, tuple[Any, Any]] = {}
    try:
        for name, tree in trees.items():
            kiln = bench_kiln(run_dir("llhls-ab") / "kiln", args.chunk_duration, tree)
            pub = publisher(kiln.rtmp_url("live"), media)
            pub.start()
            running[name] = (kiln, pub)
        urls: dict[str, tuple[str, str]] = {}
        for name, (kiln, pub) in running.items():
            master = f"http://127.0.0.1:{kiln.ports.llhls}/app/live/llhls.m3u8"
            with httpx.Client(timeout=15) as http:
                wait_until(lambda m=master, p=pub, h=http: (r := h.get(m)).status_code == 200 and "_video_" in r.text
                           or p.error, 60, "master playlist")
                text = http.get(master).text
                video = next(u for u in text.splitlines() if u and not u.startswith("#") and "_video_" in u)
                audio = _MEDIA_URI.search(text.encode())
                assert audio is not None, text
                urls[name] = (urljoin(master, video), urljoin(master, audio.group(1).decode()))
        time.sleep(2.0)  # a completed audio segment too
        figures: dict[tuple[str, str], list[float]] = {}
        turn = f"-D {args.ab_seconds:g}" if args.ab_seconds else f"-n {args.ab_requests} (segment: a quarter of it)"
        out(f"(g) this checkout and --ab-tree {args.ab_tree} side by side, h2load --h1 -c 100 {turn}, "
            f"{args.ab_rounds} rounds in turns; Kiln CPU us per request above idle (load {os.getloadavg()[0]:.1f})")
        for r in range(args.ab_rounds):
            for kind in AB_KINDS:
                for name in (tuple(running) if r % 2 == 0 else tuple(reversed(running))):
                    kiln, _pub = running[name]
                    url = serve_url(*urls[name], kind)
                    n = args.ab_requests // 4 if kind == "segment" else args.ab_requests
                    # a turn of -n requests lasted longer than the part stays listed (~10 s) at load 10 and failed
                    # with 404s: --ab-seconds bounds it by time instead
                    bound = ["-D", f"{args.ab_seconds:g}"] if args.ab_seconds else ["-n", str(n)]
                    c0 = cpu_seconds(kiln.pid)
                    time.sleep(1.0)
                    idle = cpu_seconds(kiln.pid) - c0
                    c0, t0 = cpu_seconds(kiln.pid), time.perf_counter()
                    proc = subprocess.run(["h2load", "--h1", "-c", "100", "-t", "1", *bound, "-H",
                                           "Accept-Encoding: gzip", url], capture_output=True, text=True, timeout=300)
                    wall = time.perf_counter() - t0
                    done = re.search(r"(\d+) succeeded, (\d+) failed", proc.stdout)
                    if done is None or int(done.group(2)) or not int(done.group(1)):
                        raise RuntimeError(f"h2load on {name} {kind}: {proc.stdout[-300:]} {proc.stderr[-300:]}")
                    n = int(done.group(1))
                    figures.setdefault((kind, name), []).append(1e6 * (cpu_seconds(kiln.pid) - c0 - idle * wall) / n)
        rows = []
        for kind in AB_KINDS:
            meds = {name: sorted(v)[len(v) // 2] for (k, name), v in figures.items() if k == kind}
            this, other = meds["this"], meds["--ab-tree"]
            rows.append([kind, f"{this:.1f}", f"{other:.1f}", f"{this / other:.2f}",
                         " ".join(f"{x:.0f}" for x in figures[kind, "this"]),
                         " ".join(f"{x:.0f}" for x in figures[kind, "--ab-tree"])])
        out(table(["file", "this us/req", "--ab-tree us/req", "this/other", "this, per round", "other, per round"],
                  rows))
    finally:
        for kiln, pub in running.values():
            pub.stop_event.set()
            kiln.stop()
