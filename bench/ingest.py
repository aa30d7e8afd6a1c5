"""RTMP ingest cost: Kiln's CPU per stream-minute next to nginx-rtmp's for the same load, in one run.

N ffmpeg publishers (``-re -stream_loop -1 -c copy``) send a 720p30 H.264 3 Mbit/s + AAC 128k FLV
(generated once, cached under $KILN_BENCH_DIR, default /tmp/kiln-bench) to:

1. ``kiln``       Kiln with the e2e application config (LL-HLS, Push, FILE, Thumbnail publishers
                  declared: every stream is also packaged as LL-HLS, nobody watches);
2. ``kiln-bare``  Kiln with an application that declares no publishers (ingest + stream actors only);
3. ``nginx``      nginx-rtmp (Debian libnginx-mod-rtmp, ``live on``, no record, one worker);
4. ``nginx-hls``  the same nginx-rtmp with ``hls on`` (2 s fragments, 10 s playlist, written to the work dir):
                  the reference for Kiln with LL-HLS.

For each: wait until all N streams are up (Kiln: listed by the API), ``--warmup`` seconds, then a
steady window of ``--seconds`` in which the server's utime+stime is read from /proc/<pid>/stat.
Prints CPU seconds per stream-minute, the share of one core, the machine's busy share, RSS before /
after the window / after the publishers left, and the ratios with issue 16's targets next to them:
kiln-bare / nginx (ingest alone, <= 2.0x) and kiln / nginx-hls (ingest + LL-HLS, <= 2.0x). Also counts warnings and
errors in Kiln's log and publishers that died. The SRT mode runs only if Kiln has an SRT provider
(``--protocol srt``: Kiln gets MPEG-TS over SRT, nginx still RTMP as it has no SRT).

Usage:
  .venv/bin/python bench/ingest.py                     # 20 streams, 30 s windows (~2.5 min)
  .venv/bin/python bench/ingest.py --streams 5 --seconds 15 --only kiln,nginx
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import (  # noqa: E402
    ROOT,
    RTMP_MODULE,
    BenchKiln,
    CpuWindow,
    Peer,
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

# nginx-rtmp packaging HLS: the reference for Kiln with LL-HLS (issue 16: "with LL-HLS <= 2.0x nginx `hls on`")
NGINX_HLS_CONF = nginx_rtmp_conf("""application app {{
            live on;
            hls on;
            hls_path {workdir}/hls;
            hls_fragment 2s;
            hls_playlist_length 10s;
        }}""", stat=False)

# issue 16, target 1: (Kiln run, nginx run it is compared with, what is promised)
TARGETS = (("kiln-bare", "nginx", "ingest alone <= 2.0x nginx-rtmp `live on`"),
           ("kiln", "nginx-hls", "ingest + LL-HLS <= 2.0x nginx-rtmp `hls on`"),
           ("kiln", "nginx", "for information: ingest + LL-HLS next to nginx `live on`"))
TARGET_RATIO = 2.0


@dataclass
class Result:
    server: str
    streams: int
    window: CpuWindow
    rss_before: float
    rss_during: float
    rss_after: float
    threads: int
    pub_cpu_per_min: float
    notes: list[str] = field(default_factory=list)


def srt_ingest_available() -> bool:
    """True when some Kiln module outside kiln/media/net/srt/ starts an SRT listener for publishers."""
    for path in (ROOT / "kiln").rglob("*.py"):
        if "media/net/srt/" in path.as_posix():
            continue
        if re.search(r"SrtListener\(", path.read_text(errors="replace")):
            return True
    return False


def bare_xml(xml: str) -> str:
    """The e2e Server.xml with every application's <Publishers> emptied (Bind/Publishers, the ports, stay:
    an earlier regex emptied those instead, so "kiln-bare" still packaged every stream as LL-HLS)."""
    root = ET.fromstring(xml)
    apps = root.findall(".//Application")
    for publishers in (app.find("Publishers") for app in apps):
        if publishers is not None:
            for child in list(publishers):
                publishers.remove(child)
    if not apps:
        raise ValueError("the bench's Server.xml has no <Application>")
    return ET.tostring(root, encoding="unicode")


def run_kiln(args: argparse.Namespace, media: Path, wd: Path, *, bare: bool) -> Result:
    name = "kiln-bare" if bare else "kiln"
    kiln = BenchKiln(wd / name)
    if bare:
        kiln.config_path.write_text(bare_xml(kiln.config_path.read_text()))
    kiln.start()
    pubs = []
    notes: list[str] = []
    try:
        time.sleep(1)
        rss_before = rss_mb(kiln.pid)
        pubs = [publish_to_kiln(args.protocol, kiln, f"s{i}", media, wd / name / "peers") for i in range(args.streams)]
        t0 = time.monotonic()
        wait_until(lambda: len(kiln.stream_names()) >= args.streams, 60, f"{args.streams} streams listed")
        notes.append(f"all {args.streams} streams listed after {time.monotonic() - t0:.1f}s")
        time.sleep(args.warmup)
        peak = [0.0]
        win = CpuWindow.measure({"server": [kiln.pid], "pubs": [p.pid for p in pubs]}, args.seconds,
                                on_sample=lambda: peak.__setitem__(0, max(peak[0], rss_mb(kiln.pid))))
        threads = thread_count(kiln.pid)
        listed = len(kiln.stream_names())
        if listed != args.streams:
            notes.append(f"after the window the API lists {listed} streams, not {args.streams}")
        notes += [f"publisher died: {d}" for d in dead(pubs)]
        notes += stats_check(kiln, args.streams)
        if not bare:
            notes.append(llhls_check(kiln, args.streams))
        stop_all(pubs)
        pubs = []
        try:
            wait_until(lambda: not kiln.stream_names(), 20, "streams gone")
        except TimeoutError:
            notes.append(f"streams still listed 20 s after the publishers stopped: {kiln.stream_names()}")
        time.sleep(2)
        rss_after = rss_mb(kiln.pid)
        counts = kiln.log_findings()
        notes.append("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        notes += ["  " + line for line in kiln.log_lines(" WARNING ", " ERROR ", "Traceback")]
        return Result(name, args.streams, win, rss_before, peak[0], rss_after, threads,
                      win.per_minute("pubs", args.streams), notes)
    finally:
        stop_all(pubs)
        kiln.close()


def publish_to_kiln(protocol: str, kiln: BenchKiln, stream: str, media: Path, log_dir: Path) -> Peer:
    if protocol == "rtmp":
        return ffmpeg_publish(kiln.rtmp_url(stream), media, log_dir)
    port = kiln.ports.srt
    streamid = quote(f"srt://127.0.0.1:{port}/app/{stream}", safe="")
    url = f"srt://127.0.0.1:{port}?mode=caller&latency=200000&pkt_size=1316&streamid={streamid}"
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-stream_loop", "-1",
            "-i", str(media), "-c", "copy", "-f", "mpegts", url]
    return Peer.spawn("ffmpeg-srt-pub", argv, log_dir)


def stats_check(kiln: BenchKiln, streams: int) -> list[str]:
    """Compare the bytes Kiln counted for the app with what the file's bitrate implies (a sanity check)."""
    r = kiln.api.get("/v1/stats/current/vhosts/default/apps/app", timeout=10)
    if r.status_code != 200:
        return [f"app stats: HTTP {r.status_code}"]
    resp = r.json().get("response") or {}
    return [f"app stats: totalBytesIn={resp.get('totalBytesIn')} connections={resp.get('connections')}"]


def llhls_check(kiln: BenchKiln, streams: int) -> str:
    """After the window (outside it): how many streams a player could follow, i.e. whose LL-HLS chunklist
    (reached from llhls.m3u8) lists parts and at least one whole segment."""
    packaged, problems = 0, []
    with httpx.Client(base_url=f"http://127.0.0.1:{kiln.ports.llhls}", timeout=10) as client:
        for i in range(streams):
            try:
                master = client.get(f"/app/s{i}/llhls.m3u8")
                uri = next((line for line in master.text.splitlines() if line and not line.startswith("#")), None)
                if master.status_code != 200 or uri is None:
                    problems.append(f"s{i}: master HTTP {master.status_code}")
                    continue
                chunklist = client.get(uri if uri.startswith("/") else f"/app/s{i}/{uri}").text
            except httpx.HTTPError as exc:
                problems.append(f"s{i}: {exc!r}")
                continue
            if "#EXT-X-PART:" in chunklist and "#EXTINF:" in chunklist:
                packaged += 1
            else:
                problems.append(f"s{i}: chunklist without parts or segments")
    return f"llhls: {packaged} of {streams} streams packaged (parts and segments listed)" + (
        f"; {len(problems)} not: {'; '.join(problems[:3])}" if problems else "")


def run_nginx(args: argparse.Namespace, media: Path, wd: Path, *, hls: bool = False) -> Result:
    name = "nginx-hls" if hls else "nginx"
    nginx = (_start_nginx(wd / name, NGINX_HLS_CONF, name, module=RTMP_MODULE) if hls
             else start_nginx_rtmp(wd / name))
    pubs = []
    notes: list[str] = []
    try:
        time.sleep(1)
        rss_before = rss_mb(nginx.pid)
        pubs = [ffmpeg_publish(f"rtmp://127.0.0.1:{nginx.port}/app/s{i}", media, wd / name / "peers")
                for i in range(args.streams)]
        time.sleep(args.warmup + 2)  # nginx-rtmp has no API listing; publishers still alive = streams up
        notes += [f"publisher died before the window: {d}" for d in dead(pubs)]
        peak = [0.0]
        win = CpuWindow.measure({"server": [nginx.pid], "pubs": [p.pid for p in pubs]}, args.seconds,
                                on_sample=lambda: peak.__setitem__(0, max(peak[0], rss_mb(nginx.pid))))
        notes += [f"publisher died: {d}" for d in dead(pubs)]
        if hls:
            playlists = sorted((wd / name / "hls").glob("*.m3u8"))
            notes.append(f"hls playlists written: {len(playlists)} of {args.streams}")
        stop_all(pubs)
        pubs = []
        time.sleep(2)
        rss_after = rss_mb(nginx.pid)
        tail = nginx.error_log_tail(3)
        if tail:
            notes.append("nginx error.log tail: " + tail.replace("\n", " | ")[:300])
        return Result(name, args.streams, win, rss_before, peak[0], rss_after, thread_count(nginx.pid),
                      win.per_minute("pubs", args.streams), notes)
    finally:
        stop_all(pubs)
        nginx.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0, help="steady measurement window per server")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after all streams are up")
    ap.add_argument("--only", default="kiln,kiln-bare,nginx,nginx-hls",
                    help="comma list of kiln, kiln-bare, nginx, nginx-hls")
    ap.add_argument("--protocol", choices=("rtmp", "srt"), default="rtmp")
    args = ap.parse_args()
    if args.protocol == "srt" and not srt_ingest_available():
        out("SRT ingest: Kiln has no SRT provider wired to a listener (kiln/media/net/srt/ holds the libsrt binding "
            "and SrtListener, but nothing starts it for publishers); SRT mode skipped.")
        return
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    media = media_720p()
    wd = run_dir("ingest")
    if args.protocol == "srt":
        out("SRT mode: Kiln is fed MPEG-TS over SRT (ffmpeg caller, latency 200 ms); nginx-rtmp, which has no "
            "SRT, is fed the same load over RTMP as the reference.")
    out(f"ingest bench ({args.protocol}): {args.streams} x 720p30 3 Mbit/s H.264 + AAC, ffmpeg -re -c copy, "
        f"window {args.seconds:g}s after {args.warmup:g}s warm-up; work dir {wd}")
    results: list[Result] = []
    for name in ("kiln", "kiln-bare", "nginx", "nginx-hls"):
        if name not in only:
            continue
        started = time.monotonic()
        if name.startswith("nginx"):
            res = run_nginx(args, media, wd, hls=name == "nginx-hls")
        else:
            res = run_kiln(args, media, wd, bare=name == "kiln-bare")
        results.append(res)
        out(f"[{name}] done in {time.monotonic() - started:.0f}s")
        for note in res.notes:
            out(f"  {note}")
    out()
    rows = []
    for r in results:
        w = r.window
        rows.append([r.server, r.streams, round(w.wall, 1), round(w.used["server"], 2),  # type: ignore[index]
                     round(w.per_minute("server", r.streams), 3), round(w.core_pct("server"), 1),
                     round(w.machine_busy_pct, 1), round(r.pub_cpu_per_min, 3), round(r.rss_before, 1),
                     round(r.rss_during, 1), round(r.rss_after, 1), r.threads])
    out(table(["server", "streams", "wall_s", "cpu_s", "cpu_s/stream-min", "%core", "machine%",
               "ffmpeg_pub cpu_s/stream-min", "rss_MB idle", "rss_MB peak", "rss_MB after", "threads"], rows))
    by = {r.server: r for r in results}
    for mine, ref, target in TARGETS:
        if mine not in by or ref not in by:
            continue
        a = by[mine].window.per_minute("server", by[mine].streams)
        b = by[ref].window.per_minute("server", by[ref].streams)
        if not b:
            out(f"ratio {mine}/{ref}: {ref} used no measurable CPU")
            continue
        verdict = "" if target.startswith("for information") else (
            "; met" if a / b <= TARGET_RATIO else "; NOT met")
        out(f"ratio {mine}/{ref} CPU per stream-minute: {a / b:.2f}x (target: {target}{verdict})")


if __name__ == "__main__":
    main()
