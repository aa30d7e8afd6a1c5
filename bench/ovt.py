"""OVT relay cost: a Kiln edge pulling N streams from a Kiln origin, next to nginx-rtmp ``pull``, in one run.

1. Kiln: ``--streams`` (default 6) ffmpeg publishers send the cached 720p30 3 Mbit/s file to a Kiln
   origin (app ``app``, streams s<i>; OVT publisher on). A Kiln edge pulls each one with
   ``POST /streams`` ``ovt://origin/app/s<i>`` (relay: no transcoding; the edge packages LL-HLS for
   every pulled stream whether or not anyone watches). After ``--warmup`` s, the edge's CPU over
   ``--seconds``: CPU seconds per stream-minute. The origin's ``ovt`` connections are printed.
2. Reference: the same N files published to an nginx-rtmp origin; an nginx-rtmp edge with
   ``pull rtmp://origin/live`` (nginx pulls when a player asks), one ``ffmpeg -c copy -f null``
   player per stream to make it pull; the edge nginx's CPU over a window of the same length.
3. Fan-out (``--edges`` 3, ``--viewers`` 50 each): one origin stream, each edge pulls it on demand
   through ``Origins`` when its first LL-HLS viewer asks; every viewer polls its chunklist and
   downloads each new part. Printed: origin ovt connections (one per edge, whatever the viewers),
   each edge's CPU, parts served per viewer and errors.

Usage:
  .venv/bin/python bench/ovt.py                               # ~3 min
  .venv/bin/python bench/ovt.py --streams 3 --seconds 10 --viewers 10
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _media import (  # noqa: E402
    RTMP_MODULE,
    BenchKiln,
    CpuWindow,
    Nginx,
    _start_nginx,
    dead,
    ffmpeg_publish,
    media_720p,
    nginx_rtmp_conf,
    out,
    rss_mb,
    run_dir,
    start_nginx_rtmp,
    stop_all,
    table,
    thread_count,
    wait_until,
)

from tests.e2e.ovt_cluster import cluster_xml  # noqa: E402
from tests.peers.process import Peer  # noqa: E402

APP = "/v1/vhosts/default/apps/app"

_NGINX_EDGE_CONF = nginx_rtmp_conf("application live {{ live on; pull rtmp://127.0.0.1:{origin}/live; }}")


def cluster_kiln(wd: Path, vhost_extra: str = "") -> BenchKiln:
    kiln = BenchKiln(wd)
    kiln.config_path.write_text(cluster_xml(kiln.ports, wd / "records", vhost_extra=vhost_extra))
    return kiln.start()


def ovt_connections(kiln: BenchKiln, stream: str) -> int:
    r = kiln.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{stream}", timeout=10)
    body = r.json().get("response") or {} if r.status_code == 200 else {}
    return int(body.get("connections", {}).get("ovt", 0))


def bytes_in(kiln: BenchKiln, stream: str) -> int:
    r = kiln.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{stream}", timeout=10)
    body = r.json().get("response") or {} if r.status_code == 200 else {}
    return int(body.get("totalBytesIn", 0))


def null_player(url: str, log_dir: Path) -> Peer:
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-rw_timeout", "10000000", "-i", url,
            "-c", "copy", "-f", "null", "-"]
    return Peer.spawn("ffmpeg-null-player", argv, log_dir)


def run_kiln(args: argparse.Namespace, media: Path, wd: Path) -> dict[str, Any]:
    n = args.streams
    origin = cluster_kiln(wd / "origin")
    edge = cluster_kiln(wd / "edge")
    pubs: list[Peer] = []
    res: dict[str, Any] = {"notes": []}
    try:
        pubs = [ffmpeg_publish(origin.rtmp_url(f"s{i}"), media, wd / "peers-kiln") for i in range(n)]
        wait_until(lambda: len(origin.stream_names()) >= n, 60, f"{n} origin streams")
        t0 = time.monotonic()
        for i in range(n):
            body = {"name": f"s{i}", "urls": [f"ovt://127.0.0.1:{origin.ports.ovt}/app/s{i}"]}
            r = edge.api.post(f"{APP}/streams", json=body, timeout=60)
            if r.status_code != 201:
                res["notes"].append(f"pull s{i}: HTTP {r.status_code} {r.text[:200]}")
        wait_until(lambda: len(edge.stream_names()) >= n, 60, f"{n} edge streams")
        res["notes"].append(f"{n} pulls connected in {time.monotonic() - t0:.1f}s")
        time.sleep(args.warmup)
        bytes_before = [bytes_in(edge, f"s{i}") for i in range(n)]
        res["w"] = CpuWindow.measure({"edge": [edge.pid], "origin": [origin.pid]}, args.seconds)
        res["mbps"] = [(bytes_in(edge, f"s{i}") - b) * 8 / res["w"].wall / 1e6 for i, b in enumerate(bytes_before)]
        res["ovt"] = [ovt_connections(origin, f"s{i}") for i in range(n)]
        res["rss"], res["threads"] = rss_mb(edge.pid), thread_count(edge.pid)
        res["notes"] += [f"publisher died: {d}" for d in dead(pubs)]
        for k, name in ((origin, "origin"), (edge, "edge")):
            counts = k.log_findings()
            res["notes"].append(f"{name} log: " + " ".join(f"{key}={v}" for key, v in counts.items()))
            res["notes"] += ["  " + line for line in k.log_lines(" WARNING ", " ERROR ", "Traceback", limit=4)]
        return res
    finally:
        stop_all(pubs)
        edge.close()
        origin.close()


def run_nginx(args: argparse.Namespace, media: Path, wd: Path) -> dict[str, Any]:
    n = args.streams
    origin = start_nginx_rtmp(wd / "nginx-origin")
    edge: Nginx = _start_nginx(wd / "nginx-edge", _NGINX_EDGE_CONF, "nginx-edge", module=RTMP_MODULE,
                               origin=origin.port)
    pubs: list[Peer] = []
    players: list[Peer] = []
    res: dict[str, Any] = {"notes": []}
    try:
        pubs = [ffmpeg_publish(f"rtmp://127.0.0.1:{origin.port}/live/s{i}", media, wd / "peers-ref")
                for i in range(n)]
        names = [f"s{i}" for i in range(n)]
        wait_until(lambda: all(origin.rtmp_streams("live").get(s, {}).get("publishing") for s in names), 30,
                   "sources published")
        players = [null_player(f"rtmp://127.0.0.1:{edge.port}/live/s{i}", wd / "peers-ref") for i in range(n)]
        wait_until(lambda: all(edge.rtmp_streams("live").get(s, {}).get("bytes_in", 0) > 0 for s in names), 30,
                   "edge pulling every stream")
        time.sleep(args.warmup)
        res["w"] = CpuWindow.measure({"edge": [edge.pid], "origin": [origin.pid]}, args.seconds)
        res["notes"] += [f"died: {d}" for d in dead(pubs + players)]
        return res
    finally:
        stop_all(players + pubs)
        edge.stop()
        origin.stop()


async def viewer(http: httpx.AsyncClient, base: str, seconds: float, stats: dict[str, int]) -> None:
    """An LL-HLS viewer: master, then its chunklist every 0.5 s, downloading each part not seen yet."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    # one client per edge is shared by its viewers (a client per viewer costs the bench more CPU than the edges)
    try:
        master = await http.get(f"{base}/llhls.m3u8")
        chunklist = next(ln for ln in master.text.splitlines() if ln and not ln.startswith("#"))
    except (httpx.HTTPError, StopIteration):
        stats["errors"] += 1
        return
    url = chunklist if chunklist.startswith("http") else f"{base}/{chunklist.rsplit('/', 1)[-1]}"
    while time.monotonic() < deadline:
        try:
            text = (await http.get(url)).text
            for uri in re.findall(r'URI="([^"]*part_[^"]+)"', text)[-3:]:
                if uri not in seen:
                    seen.add(uri)
                    part = await http.get(f"{base}/{uri.rsplit('/', 1)[-1]}")
                    stats["parts" if part.status_code == 200 else "errors"] += 1
        except httpx.HTTPError:
            stats["errors"] += 1
        await asyncio.sleep(0.5)


def run_fanout(args: argparse.Namespace, media: Path, wd: Path) -> dict[str, Any]:
    origin = cluster_kiln(wd / "fan-origin")
    rule = (f"<Origins><Origin><Location>/app/</Location><Pass><Scheme>ovt</Scheme><Urls>"
            f"<Url>127.0.0.1:{origin.ports.ovt}/app/</Url></Urls></Pass></Origin></Origins>")
    edges = [cluster_kiln(wd / f"fan-edge{i}", rule) for i in range(args.edges)]
    pub = ffmpeg_publish(origin.rtmp_url("live"), media, wd / "peers-fan")
    res: dict[str, Any] = {"notes": []}
    try:
        wait_until(lambda: "live" in origin.stream_names(), 60, "origin stream")
        wait_until(lambda: bool((origin.api.get(f"{APP}/streams/live", timeout=10).json().get("response") or {})
                                .get("outputs")), 60, "origin stream started")
        stats = [{"parts": 0, "errors": 0} for _ in edges]

        async def all_viewers() -> None:
            limits = httpx.Limits(max_connections=args.viewers, max_keepalive_connections=args.viewers)
            clients = [httpx.AsyncClient(timeout=30, limits=limits) for _ in edges]
            try:
                await asyncio.gather(*(viewer(clients[i], f"http://127.0.0.1:{e.ports.llhls}/app/live",
                                              args.seconds + args.warmup, stats[i])
                                       for i, e in enumerate(edges) for _ in range(args.viewers)))
            finally:
                for c in clients:
                    await c.aclose()

        started = time.monotonic()
        measure: dict[str, Any] = {}

        def window() -> None:
            time.sleep(args.warmup)
            measure["w"] = CpuWindow.measure({f"edge{i}": [e.pid] for i, e in enumerate(edges)} |
                                             {"origin": [origin.pid]}, args.seconds)

        async def main() -> None:
            await asyncio.gather(all_viewers(), asyncio.to_thread(window))

        asyncio.run(main())
        res["w"] = measure["w"]
        res["stats"] = stats
        res["ovt"] = ovt_connections(origin, "live")
        res["notes"].append(f"fan-out ran {time.monotonic() - started:.1f}s")
        res["notes"] += [f"publisher died: {d}" for d in dead([pub])]
        return res
    finally:
        stop_all([pub])
        for e in edges:
            e.close()
        origin.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=6, help="streams relayed origin -> edge")
    ap.add_argument("--seconds", type=float, default=20.0, help="each measurement window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--edges", type=int, default=3, help="fan-out: edges pulling one origin stream")
    ap.add_argument("--viewers", type=int, default=50, help="fan-out: LL-HLS viewers per edge (0: skip)")
    args = ap.parse_args()
    n = args.streams
    media = media_720p()
    wd = run_dir("ovt")
    out(f"ovt bench: {n} x 720p30 3 Mbit/s streams relayed origin -> edge; windows of {args.seconds:g}s; "
        f"work dir {wd}")
    k = run_kiln(args, media, wd)
    out("[kiln origin -> kiln edge over OVT] done")
    for note in k["notes"]:
        out(f"  {note}")
    r = run_nginx(args, media, wd)
    out("[nginx-rtmp origin -> nginx-rtmp edge with pull] done")
    for note in r["notes"]:
        out(f"  {note}")
    kw, rw = k["w"], r["w"]
    out()
    out(table(["run", "wall_s", "edge cpu_s", "edge %core", "origin %core", "machine%", "edge s/stream-min"], [
        [f"kiln edge, {n} OVT pulls", round(kw.wall, 1), round(kw.used["edge"], 2), round(kw.core_pct("edge"), 1),
         round(kw.core_pct("origin"), 1), round(kw.machine_busy_pct, 1), round(kw.per_minute("edge", n), 3)],
        [f"nginx edge, {n} rtmp pulls", round(rw.wall, 1), round(rw.used["edge"], 2), round(rw.core_pct("edge"), 1),
         round(rw.core_pct("origin"), 1), round(rw.machine_busy_pct, 1), round(rw.per_minute("edge", n), 3)],
    ]))
    out(f"kiln origin ovt connections per stream: {k['ovt']}; kiln edge rss {k['rss']:.1f} MB, "
        f"threads {k['threads']}; edge input per stream {min(k['mbps']):.2f}..{max(k['mbps']):.2f} Mbit/s")
    ref = rw.per_minute("edge", n)
    if ref > 0:
        out(f"ratio kiln edge / nginx edge (CPU per stream-minute): {kw.per_minute('edge', n) / ref:.1f}x")
    if args.viewers <= 0:
        return
    f = run_fanout(args, media, wd)
    out(f"[fan-out: 1 origin stream -> {args.edges} kiln edges x {args.viewers} LL-HLS viewers] done")
    for note in f["notes"]:
        out(f"  {note}")
    fw = f["w"]
    out(table(["edge", "%core", "parts/viewer", "errors"], [
        [f"edge{i}", round(fw.core_pct(f"edge{i}"), 1), round(s["parts"] / max(args.viewers, 1), 1), s["errors"]]
        for i, s in enumerate(f["stats"])]))
    out(f"origin: {round(fw.core_pct('origin'), 1)} %core, ovt connections {f['ovt']} "
        f"(one per edge for {args.edges * args.viewers} viewers); machine {round(fw.machine_busy_pct, 1)}% busy")


if __name__ == "__main__":
    main()
