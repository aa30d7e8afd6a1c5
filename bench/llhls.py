"""LL-HLS delivery: part availability delay, hls.js latency and blocking-reload viewer capacity.

One 720p30 3 Mbit/s H.264 + AAC stream is published to Kiln (ChunkDuration 0.5, SegmentDuration 2)
by a PyAV publisher inside this script: it paces the cached file in real time (looping) and logs,
for every video frame, the wall-clock time its FLV tag was written to the RTMP socket. Parts are
tied back to frames through their moof (tfdt + trun durations, timescale from the init segment).

(a) Part availability, one client, ``--parts`` (default 50) consecutive video parts: the client
    blocks on ``?_HLS_msn=<m>&_HLS_part=<p>`` for the part named by PRELOAD-HINT, then GETs it.
      avail  = blocking reload answered  - last frame of the part written to Kiln's socket
      ready  = part GET complete         - last frame of the part written
      dl     = part GET time; next frame written - last frame written is printed too: Kiln closes a
               part on its last frame without waiting for the next one (target: avail p99 <= 10 ms)
      pdt    = EXT-X-PROGRAM-DATE-TIME of a segment - wall time its first frame was written
(b) hls.js (npm, lowLatencyMode) in headless Chromium via playwright-core, ``--player-seconds``:
    every second it samples hls.latency (hls.js's own live-edge estimate), targetLatency, and
    Date.now() - hls.playingDate (PDT-based). ``g2g`` = wall clock now - wall time the frame now at
    video.currentTime was written to Kiln (needs currentTime == media timestamp; checked).
    The 1.5 s target is printed next to where it settles (second half of the samples). Runs with
    hls.js's defaults, then once per ``--hlsjs-config JSON``.
    Skipped when chromium/node/npm modules are missing or with --no-player.
(c) Ramp of concurrent viewers (``--viewers 10,50,100,200``, ``--step-seconds`` each): each viewer is
    an httpx.AsyncClient that blocks on the next part, then downloads every listed part it has not
    had. delivery = part GET complete - last frame of that part written to Kiln; "sustained" = p99
    <= 100 ms, no errors. Reference: nginx serving a static copy of the same playlist/init/parts,
    the same number of viewers each GETting the playlist then a part every part-duration (no
    blocking, nothing to wait for), GET times p50/p99. The viewers run in this one Python process:
    its CPU share is printed, because at high counts the client, not the server, can be the limit.

Usage:
  .venv/bin/python bench/llhls.py                                  # ~2.5 min
  .venv/bin/python bench/llhls.py --parts 20 --viewers 10,50 --step-seconds 8 --no-player
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import heapq
import json
import os
import random
import re
import shutil
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _llhls_load  # noqa: E402
import av  # noqa: E402
import httpx  # noqa: E402
from _media import (  # noqa: E402
    ROOT,
    BenchKiln,
    cpu_seconds,
    media_720p,
    out,
    pctl,
    rss_mb,
    run_dir,
    start_nginx_http,
    summary,
    table,
    wait_until,
)

from tests.peers.process import Peer  # noqa: E402

PART_RE = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"')
HINT_RE = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
NAME_RE = re.compile(r"part_(\d+)_(\d+)_(\d+)_")
PDT_RE = re.compile(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART:[^\n]*\n)*?#EXT-X-PART:[^\n]*URI=\"([^\"]+)\"")


# ---------------------------------------------------------------------------------------------- publisher


# FFmpeg's muxer interleaves by dts: a video frame handed to mux() stays queued until an audio packet
# with a later dts comes (up to 21 ms of AAC, 80 ms at the start), so the time mux() returned was not
# when the frame reached Kiln (p50 10 ms, p90 19 ms early, measured on a local socket). Audio sent this
# much ahead of real time keeps the queue non-empty and video leaves at once (p99 4 ms).
AUDIO_LEAD_MS = 40


class Publisher(threading.Thread):
    """Real-time RTMP publisher (PyAV, FLV) that logs when each video frame was written."""

    def __init__(self, url: str, media: Path) -> None:
        super().__init__(name="bench-publisher", daemon=True)
        self.url = url
        self.media = media
        self.stop_event = threading.Event()
        self.dts_ms: list[int] = []  # video frames, ascending
        self.sent_mono: list[float] = []
        self.sent_wall: list[float] = []
        self.error: str | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by the bench, never raised into the thread machinery
            self.error = repr(exc)

    def _run(self) -> None:
        output = av.open(self.url, "w", format="flv", options={"flvflags": "no_duration_filesize"},
                         container_options={"flush_packets": "1"})
        offset_ms = 0
        self.t0: float | None = None
        # (send ms, order, dts ms, is video, packet): audio is muxed AUDIO_LEAD_MS early, see AUDIO_LEAD_MS
        queue: list[tuple[int, int, int, bool, av.Packet]] = []
        order = 0
        try:
            while not self.stop_event.is_set():
                with av.open(str(self.media)) as inp:
                    vin, ain = inp.streams.video[0], inp.streams.audio[0]
                    if not output.streams:
                        self.vout = output.add_stream_from_template(vin)
                        self.aout = output.add_stream_from_template(ain)
                    end_ms = offset_ms
                    for pkt in inp.demux(vin, ain):
                        if pkt.dts is None or self.stop_event.is_set():
                            continue
                        ms = int(pkt.dts * pkt.time_base * 1000) + offset_ms
                        dur = int((pkt.duration or 0) * pkt.time_base * 1000)
                        end_ms = max(end_ms, ms + max(dur, 1))
                        is_video = pkt.stream is vin
                        pts = pkt.pts if pkt.pts is not None else pkt.dts
                        pkt.dts += offset_ms  # the FLV input's time base is 1/1000
                        pkt.pts = pts + offset_ms
                        pkt.stream = self.vout if is_video else self.aout
                        heapq.heappush(queue, (ms - (0 if is_video else AUDIO_LEAD_MS), order, ms, is_video, pkt))
                        order += 1
                        # a packet demuxed later is sent no earlier than its dts minus the lead
                        while queue and queue[0][0] <= ms - AUDIO_LEAD_MS:
                            self._send(output, heapq.heappop(queue))
                    offset_ms = end_ms + 1
        finally:
            output.close()

    def _send(self, output: Any, entry: tuple[int, int, int, bool, av.Packet]) -> None:
        """Mux one packet at its send time; log a video frame's write time."""
        send_ms, _order, ms, is_video, pkt = entry
        if self.t0 is None:
            self.t0 = time.perf_counter() - send_ms / 1000
        delay = self.t0 + send_ms / 1000 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        output.mux(pkt)
        if is_video:
            now_m, now_w = time.perf_counter(), time.time()
            with self.lock:
                self.dts_ms.append(ms)
                self.sent_mono.append(now_m)
                self.sent_wall.append(now_w)

    def frame(self, dts_ms: int) -> tuple[int, float, float, float | None]:
        """(index, mono, wall, next frame's mono) of the video frame nearest `dts_ms`."""
        with self.lock:
            i = bisect.bisect_left(self.dts_ms, dts_ms)
            if i >= len(self.dts_ms) or (i > 0 and dts_ms - self.dts_ms[i - 1] < self.dts_ms[i] - dts_ms):
                i -= 1
            i = max(0, i)
            nxt = self.sent_mono[i + 1] if i + 1 < len(self.sent_mono) else None
            return i, self.sent_mono[i], self.sent_wall[i], nxt


# ---------------------------------------------------------------------------------------------- fMP4


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(type, payload start, box end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    found = []
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, start + 8)[0]
            header = 16
        elif size == 0:
            size = end - start
        if size < header:
            break
        found.append((kind.decode("latin-1"), start + header, start + size))
        start += size
    return found


def timescale(init: bytes) -> int:
    for kind, s, e in _boxes(init):
        if kind == "moov":
            for k2, s2, e2 in _boxes(init, s, e):
                if k2 == "trak":
                    for k3, s3, e3 in _boxes(init, s2, e2):
                        if k3 == "mdia":
                            for k4, s4, _e4 in _boxes(init, s3, e3):
                                if k4 == "mdhd":
                                    version = init[s4]
                                    return struct.unpack_from(">I", init, s4 + (20 if version == 1 else 12))[0]
    raise ValueError("no mdhd in init segment")


def part_samples(part: bytes) -> tuple[int, list[int]]:
    """(tfdt of the first moof, sample durations of all moofs) of a video part."""
    first_tfdt: int | None = None
    durations: list[int] = []
    for kind, s, e in _boxes(part):
        if kind != "moof":
            continue
        for k2, s2, e2 in _boxes(part, s, e):
            if k2 != "traf":
                continue
            default_dur = 0
            for k3, s3, _e3 in _boxes(part, s2, e2):
                flags = int.from_bytes(part[s3 + 1:s3 + 4], "big")
                if k3 == "tfhd":
                    pos = s3 + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
                    if flags & 0x8:
                        default_dur = struct.unpack_from(">I", part, pos)[0]
                elif k3 == "tfdt":
                    v = part[s3]
                    t = struct.unpack_from(">Q" if v == 1 else ">I", part, s3 + 4)[0]
                    first_tfdt = t if first_tfdt is None else first_tfdt
                elif k3 == "trun":
                    count = struct.unpack_from(">I", part, s3 + 4)[0]
                    pos = s3 + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
                    per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
                    for n in range(count):
                        durations.append(struct.unpack_from(">I", part, pos + n * per)[0] if flags & 0x100
                                         else default_dur)
    if first_tfdt is None:
        raise ValueError("no tfdt in part")
    return first_tfdt, durations


# ---------------------------------------------------------------------------------------------- playlists


def part_key(uri: str) -> tuple[int, int]:
    m = NAME_RE.search(uri)
    if not m:
        raise ValueError(f"not a part name: {uri}")
    return int(m.group(2)), int(m.group(3))


def parts_in(text: str) -> list[tuple[tuple[int, int], str, float]]:
    return [(part_key(uri), uri, float(d)) for d, uri in PART_RE.findall(text)]


def hint_in(text: str) -> str | None:
    m = HINT_RE.search(text)
    return m.group(1) if m else None


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@dataclass
class PartInfo:
    """What the prober learned about one video part."""

    key: tuple[int, int]
    last_sent: float  # perf_counter when the part's last frame was written to Kiln
    close_wait: float  # next frame written - last frame written
    answered: float  # perf_counter of the blocking reload answer that listed it (prober)
    done: float
    size: int
    last_ms: int = 0  # dts of the part's last frame (the next frame's write time is looked up afterwards)


@dataclass
class Prober:
    """One client: blocking reload + part download, tying each part to the publisher's frame log."""

    chunklist: str
    pub: Publisher
    ts: int
    parts: dict[tuple[int, int], PartInfo] = field(default_factory=dict)
    pdt_offsets: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(self, http: httpx.AsyncClient, stop: asyncio.Event, limit: int | None = None) -> None:
        text = (await http.get(self.chunklist)).text
        hint = hint_in(text)
        while not stop.is_set() and (limit is None or len(self.parts) < limit):
            if hint is None:
                self.errors.append("no PRELOAD-HINT")
                await asyncio.sleep(0.1)
                text = (await http.get(self.chunklist)).text
                hint = hint_in(text)
                continue
            msn, p = part_key(hint)
            r = await http.get(with_query(self.chunklist, f"_HLS_msn={msn}&_HLS_part={p}"))
            answered = time.perf_counter()
            if r.status_code != 200:
                self.errors.append(f"reload HTTP {r.status_code}")
                await asyncio.sleep(0.1)
                continue
            text = r.text
            listed = {k: u for k, u, _d in parts_in(text)}
            if (msn, p) not in listed:  # the hint named a part of a segment that ended earlier
                hint = hint_in(text)
                continue
            part = await http.get(urljoin(self.chunklist, listed[(msn, p)]))
            done = time.perf_counter()
            hint = hint_in(text)
            if part.status_code != 200:
                self.errors.append(f"part HTTP {part.status_code}")
                continue
            tfdt, durs = part_samples(part.content)
            last_ms = (tfdt + sum(durs[:-1])) * 1000 / self.ts
            _i, mono, _wall, nxt = self.pub.frame(round(last_ms))
            self.parts[(msn, p)] = PartInfo((msn, p), mono, (nxt - mono) if nxt else float("nan"), answered, done,
                                            len(part.content), round(last_ms))
            if p == 0:
                self._pdt(text, msn, tfdt)

    def _pdt(self, text: str, msn: int, tfdt: int) -> None:
        """PROGRAM-DATE-TIME of segment `msn` minus the wall time its first frame was written."""
        from datetime import datetime

        for stamp, uri in PDT_RE.findall(text):
            if part_key(uri) == (msn, 0):
                pdt = datetime.fromisoformat(stamp).timestamp()
                _i, _mono, wall, _n = self.pub.frame(round(tfdt * 1000 / self.ts))
                self.pdt_offsets.append((pdt - wall) * 1000)


# ---------------------------------------------------------------------------------------------- viewers


@dataclass
class Tally:
    delivery_ms: list[float] = field(default_factory=list)  # part GET done - last frame sent
    get_ms: list[float] = field(default_factory=list)
    requests: int = 0
    bytes: int = 0
    errors: int = 0
    unknown: int = 0  # parts the prober never saw (cannot be tied to a frame)


async def kiln_viewer(chunklist: str, prober: Prober, tally: Tally, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        try:
            text = (await http.get(chunklist)).text
            tally.requests += 1
            have = {k for k, _u, _d in parts_in(text)}
            hint = hint_in(text)
            while not stop.is_set():
                if hint is None:
                    await asyncio.sleep(0.1)
                    text = (await http.get(chunklist)).text
                    hint = hint_in(text)
                    continue
                msn, p = part_key(hint)
                r = await http.get(with_query(chunklist, f"_HLS_msn={msn}&_HLS_part={p}"))
                tally.requests += 1
                if r.status_code != 200:
                    tally.errors += 1
                    await asyncio.sleep(0.1)
                    continue
                text = r.text
                hint = hint_in(text)
                for key, uri, _d in parts_in(text):
                    if key in have:
                        continue
                    have.add(key)
                    t0 = time.perf_counter()
                    part = await http.get(urljoin(chunklist, uri))
                    done = time.perf_counter()
                    tally.requests += 1
                    if part.status_code != 200:
                        tally.errors += 1
                        continue
                    tally.bytes += len(part.content)
                    tally.get_ms.append((done - t0) * 1000)
                    info = prober.parts.get(key)
                    if info is None:
                        await asyncio.sleep(0.3)  # the prober may still be downloading it
                        info = prober.parts.get(key)
                    if info is None:
                        tally.unknown += 1
                    else:
                        tally.delivery_ms.append((done - info.last_sent) * 1000)
        except (httpx.HTTPError, ValueError):
            tally.errors += 1


async def static_viewer(base: str, playlist: str, parts: list[str], period: float, tally: Tally,
                        stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        i = random.randrange(len(parts))
        await asyncio.sleep(random.random() * period)
        nxt = time.perf_counter()
        while not stop.is_set():
            try:
                t0 = time.perf_counter()
                r1 = await http.get(f"{base}/{playlist}")
                part = await http.get(f"{base}/{parts[i % len(parts)]}")
                done = time.perf_counter()
                tally.requests += 2
                if r1.status_code != 200 or part.status_code != 200:
                    tally.errors += 1
                else:
                    tally.bytes += len(part.content)
                    tally.get_ms.append((done - t0) * 1000)
            except httpx.HTTPError:
                tally.errors += 1
            i += 1
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))


async def run_step(n: int, seconds: float, make: Any, server_pid: int) -> tuple[Tally, float, float, float]:
    """Run `n` viewers for `seconds` (after 2 s ramp-up); (tally, server %core, client %core, wall)."""
    tally = Tally()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(make(tally, stop)) for _ in range(n)]
    await asyncio.sleep(2.0)
    tally.delivery_ms.clear()
    tally.get_ms.clear()
    tally.requests = tally.bytes = tally.errors = tally.unknown = 0
    s0, c0, w0 = cpu_seconds(server_pid), cpu_seconds(os.getpid()), time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - w0
    s1, c1 = cpu_seconds(server_pid), cpu_seconds(os.getpid())
    snapshot = Tally(list(tally.delivery_ms), list(tally.get_ms), tally.requests, tally.bytes, tally.errors,
                     tally.unknown)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return snapshot, 100 * (s1 - s0) / wall, 100 * (c1 - c0) / wall, wall


# ---------------------------------------------------------------------------------------------- hls.js

PLAYER_JS = r"""
'use strict';
const { chromium } = require('playwright-core');
const opts = JSON.parse(process.argv[2]);
const origin = new URL(opts.url).origin;
const page_html = `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/__bench/hls.min.js"></script><script>
const s = window.__b = {samples: [], errors: [], playing: false};
const v = document.getElementById('v');
v.addEventListener('playing', () => { s.playing = true; });
const hls = new Hls(Object.assign({lowLatencyMode: true}, ${JSON.stringify(opts.config || {})})); window.__hls = hls;
hls.on(Hls.Events.ERROR, (e, d) => s.errors.push((d.fatal ? 'fatal:' : '') + d.details));
hls.loadSource(${JSON.stringify(opts.url)}); hls.attachMedia(v);
setInterval(() => { if (!s.playing) return; const pd = hls.playingDate;
  s.samples.push({now: Date.now(), currentTime: v.currentTime, latency: hls.latency,
    targetLatency: hls.targetLatency, drift: hls.drift, pdtLatency: pd ? (Date.now() - pd.getTime()) / 1000 : null,
    rate: v.playbackRate, buffered: v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : 0});
}, 1000);
</script></body></html>`;
(async () => {
  const result = {samples: [], errors: []};
  let browser;
  try {
    browser = await chromium.launchPersistentContext(opts.user_data_dir, {executablePath: opts.chromium,
      headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
        '--autoplay-policy=no-user-gesture-required', '--disable-features=LocalNetworkAccessChecks']});
    const page = browser.pages()[0] || await browser.newPage();
    await page.route(u => u.origin === origin && u.pathname === '/__bench/index.html',
      r => r.fulfill({status: 200, contentType: 'text/html', body: page_html}));
    await page.route(u => u.origin === origin && u.pathname === '/__bench/hls.min.js',
      r => r.fulfill({status: 200, contentType: 'application/javascript', path: opts.hlsjs}));
    await page.goto(origin + '/__bench/index.html');
    await page.waitForFunction(() => window.__b.playing, null, {timeout: 30000, polling: 100});
    await page.waitForTimeout(opts.seconds * 1000);
    const s = await page.evaluate(() => window.__b);
    result.samples = s.samples; result.errors = s.errors;
  } catch (e) { result.errors.push('browser:' + e.message.split('\n')[0]); }
  finally { if (browser) await browser.close().catch(() => {}); }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
"""


def run_player(master: str, seconds: float, wd: Path, config: dict[str, Any] | None = None) -> dict[str, Any] | None:
    node_modules = ROOT / "node_modules"
    if not (Path("/usr/bin/chromium").exists() and shutil.which("node") and (node_modules / "hls.js").is_dir()
            and (node_modules / "playwright-core").is_dir()):
        return None
    wd.mkdir(parents=True, exist_ok=True)
    script = wd / "player.js"
    script.write_text(PLAYER_JS)
    profile = wd / "chromium-profile"
    opts = {"url": master, "seconds": seconds, "user_data_dir": str(profile), "chromium": "/usr/bin/chromium",
            "hlsjs": str(node_modules / "hls.js" / "dist" / "hls.min.js"), "config": config or {}}
    peer = Peer.spawn("chromium-bench", ["node", str(script), json.dumps(opts)], wd,
                      env={"NODE_PATH": str(node_modules), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    try:
        peer.wait(seconds + 90)
    finally:
        peer.stop()
        # playwright starts chromium in its own process group: find leftovers by the unique profile path
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if str(profile).encode() in (proc / "cmdline").read_bytes():
                        os.kill(int(proc.name), 9)
    lines = peer.stdout_text().strip().splitlines()
    return json.loads(lines[-1]) if lines else {"samples": [], "errors": [peer.stderr_tail(5)]}


# ---------------------------------------------------------------------------------------------- main


def static_copy(http: httpx.Client, chunklist: str, dest: Path) -> tuple[str, list[str]]:
    """Copy the chunklist (queries stripped), its init and its listed parts to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    text = http.get(chunklist).text
    names = re.findall(r'URI="([^"]+)"', text) + [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    parts = []
    for uri in names:
        name = urlsplit(uri).path.rsplit("/", 1)[-1]
        if "PRELOAD-HINT" in text and uri == hint_in(text):
            continue
        r = http.get(urljoin(chunklist, uri))
        if r.status_code == 200:
            (dest / name).write_bytes(r.content)
            if name.startswith("part_"):
                parts.append(name)
    playlist = "chunklist.m3u8"
    (dest / playlist).write_text(re.sub(r"\?session=[^\"\n]*", "", text))
    return playlist, parts


async def viewers_ramp(args: argparse.Namespace, kiln: BenchKiln, chunklist: str, prober: Prober,
                       nginx_base: str, playlist: str, parts: list[str], nginx_pid: int) -> list[list[Any]]:
    rows = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=15) as http:
        probe_task = asyncio.create_task(prober.run(http, stop))
        for n in args.viewers:
            tally, srv, cli, wall = await run_step(
                n, args.step_seconds, lambda t, s: kiln_viewer(chunklist, prober, t, s), kiln.pid)
            d = tally.delivery_ms
            ok = bool(d) and pctl(d, 99) <= 100 and tally.errors == 0
            rows.append(["kiln", n, round(tally.requests / wall), round(tally.bytes * 8 / wall / 1e6, 1),
                         f"{pctl(d, 50):.0f}/{pctl(d, 99):.0f}", f"{pctl(tally.get_ms, 50):.1f}/"
                         f"{pctl(tally.get_ms, 99):.1f}", tally.errors, tally.unknown, round(srv), round(cli),
                         round(rss_mb(kiln.pid)), "yes" if ok else "NO"])
            out("  " + "  ".join(str(c) for c in rows[-1]))
        stop.set()
        probe_task.cancel()
        await asyncio.gather(probe_task, return_exceptions=True)
    period = 0.5
    for n in args.viewers:
        tally, srv, cli, wall = await run_step(
            n, args.step_seconds,
            lambda t, s: static_viewer(nginx_base, playlist, parts, period, t, s), nginx_pid)
        rows.append(["nginx-static", n, round(tally.requests / wall), round(tally.bytes * 8 / wall / 1e6, 1), "-",
                     f"{pctl(tally.get_ms, 50):.1f}/{pctl(tally.get_ms, 99):.1f}", tally.errors, "-", round(srv),
                     round(cli), "-", "-"])
        out("  " + "  ".join(str(c) for c in rows[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", type=int, default=50, help="(a) consecutive parts measured")
    ap.add_argument("--player-seconds", type=float, default=20.0, help="(b) hls.js sampling time")
    ap.add_argument("--no-player", action="store_true", help="skip (b)")
    ap.add_argument("--chunk-duration", type=float, default=0.5,
                    help="the app's LLHLS ChunkDuration (OME's default 0.5)")
    ap.add_argument("--hlsjs-config", action="append", default=[], metavar="JSON",
                    help="(b) an hls.js config to play with too, e.g. '{\"maxLiveSyncPlaybackRate\": 1.5}' "
                         "(repeatable; the default config always runs first)")
    ap.add_argument("--viewers", default="10,50,100,200", help="(c) viewer counts")
    ap.add_argument("--step-seconds", type=float, default=12.0, help="(c) measurement time per step")
    ap.add_argument("--kiln-tree", help="run Kiln from this checkout (e.g. main's, for a before/after)")
    ap.add_argument("--cost-only", action="store_true", help="only (f): CPU per answer of the fast lane, in-process")
    ap.add_argument("--cost-viewers", type=int, default=500, help="(f) connections (blocked reloads per wake)")
    ap.add_argument("--ab-tree", help="only (g): this checkout's Kiln and this one's side by side, CPU per request")
    ap.add_argument("--ab-requests", type=int, default=20000, help="(g) h2load -n per turn")
    ap.add_argument("--ab-rounds", type=int, default=4, help="(g) turns per file kind and checkout")
    ap.add_argument("--ab-seconds", type=float, default=0.0,
                    help="(g) h2load -D per turn instead of -n (a long turn outlives the part it asks for)")
    _llhls_load.add_arguments(ap)
    args = ap.parse_args()
    args.viewers = [int(v) for v in args.viewers.split(",") if v.strip()]
    if args.ab_tree:
        from _llhls_ab import run_ab

        run_ab(args, bench_kiln, Publisher, media_720p(60), run_dir)
        return
    if args.cost_only or args.serve_only:
        answer_costs(args)
        if args.cost_only:
            return
    media = media_720p(60)
    wd = run_dir("llhls")
    out(f"llhls bench: one 720p30 3 Mbit/s H.264 + AAC stream (PyAV real-time publisher), ChunkDuration "
        f"{args.chunk_duration:g}, "
        f"SegmentDuration 2; work dir {wd}")
    kiln = bench_kiln(wd / "kiln", args.chunk_duration, args.kiln_tree)
    pub = Publisher(kiln.rtmp_url("live"), media)
    pub.start()
    nginx = None
    try:
        master = f"http://127.0.0.1:{kiln.ports.llhls}/app/live/llhls.m3u8"
        with httpx.Client(timeout=15) as http:
            wait_until(lambda: http.get(master).status_code == 200 or pub.error, 30, "master playlist")
            if pub.error:
                raise RuntimeError(f"publisher failed: {pub.error}")
            text = http.get(master).text
            uris = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
            chunklist = urljoin(master, next(u for u in uris if "_video_" in u))
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', http.get(chunklist).text).group(1)  # type: ignore[union-attr]
            ts = timescale(http.get(urljoin(chunklist, init_uri)).content)

        if args.serve_only:
            serving(args, kiln, pub, master, chunklist, ts, wd)
            return
        # (a)
        prober = Prober(chunklist, pub, ts)

        async def run_a() -> None:
            async with httpx.AsyncClient(timeout=15) as http:
                await prober.run(http, asyncio.Event(), limit=args.parts + 1)

        asyncio.run(run_a())
        report_part_timing(prober, pub)

        # (b)
        out()
        if args.no_player:
            out("(b) hls.js: skipped (--no-player)")
        else:
            player_runs(args, master, wd, pctl(prober.pdt_offsets, 50))

        # (c)
        with httpx.Client(timeout=15) as http:
            playlist, parts = static_copy(http, chunklist, wd / "static")
        nginx = start_nginx_http(wd / "nginx", wd / "static")
        out()
        out(f"(c) viewers: kiln = blocking reload + download every new video part (delivery = part downloaded - "
            f"its last frame written); nginx-static = GET playlist + GET part every 0.5 s ({len(parts)} parts "
            f"copied from Kiln). {args.step_seconds:g}s per step.")
        headers = ["server", "viewers", "req/s", "Mbit/s", "delivery p50/p99 ms", "GET p50/p99 ms", "errors",
                   "untied", "server %core", "client %core", "kiln rss MB", "<=100ms"]
        out("  " + "  ".join(headers))
        rows = asyncio.run(viewers_ramp(args, kiln, chunklist, prober, f"http://127.0.0.1:{nginx.port}",
                                        playlist, parts, nginx.pid))
        out()
        out(table(headers, rows))
        sustained = [r[1] for r in rows if r[0] == "kiln" and r[-1] == "yes"]
        out(f"kiln sustains {max(sustained) if sustained else 0} blocking-reload viewers with p99 delivery <= 100 ms "
            f"(largest step tried {max(args.viewers)}; client and server share 2 cores)")
        if not args.no_serve:
            serving(args, kiln, pub, master, chunklist, ts, wd)
        counts = kiln.log_findings()
        out("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
        for line in kiln.log_lines(" WARNING ", " ERROR ", "Traceback"):
            out("  " + line)
        if pub.error:
            out(f"publisher error: {pub.error}")
    finally:
        pub.stop_event.set()
        pub.join(5)
        if nginx is not None:
            nginx.stop()
        kiln.close()


def serving(args: argparse.Namespace, kiln: BenchKiln, pub: Publisher, master: str, chunklist: str, ts: int,
            wd: Path) -> None:
    """(d) and (e), bench/_llhls_load.py: request rates under h2load and blocking-reload viewers from
    several processes, next to nginx static; a part can be had once its last frame is written (Kiln predicts
    that frame's duration instead of waiting for the next one)."""

    def closing_frame(last_ms: int) -> float | None:
        return pub.frame(last_ms)[1]

    _llhls_load.run_serving(args, kiln.pid, master, chunklist, ts, closing_frame, wd, kiln.log_path)
    counts = kiln.log_findings()
    out("kiln log: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    for line in kiln.log_lines(" WARNING ", " ERROR ", "Traceback"):
        out("  " + line)


PART_TARGET_MS = 10.0  # issue 16: frame arrival -> part downloadable, p99, beyond the frame that closes it
LATENCY_TARGET_S = 1.5  # issue 16: hls.js in Chromium behind live


def report_part_timing(prober: Prober, pub: Publisher) -> None:
    """(a): when each part could be had, against the write time of the frame that closes it."""
    infos = sorted(prober.parts.values(), key=lambda i: i.key)[1:]  # the first one was already listed
    avail = [(i.answered - i.last_sent) * 1000 for i in infos]
    ready = [(i.done - i.last_sent) * 1000 for i in infos]
    dl = [(i.done - i.answered) * 1000 for i in infos]
    close = []
    for i in infos:  # looked up now: a part is listed before the frame after it is even sent
        _n, mono, _wall, nxt = pub.frame(i.last_ms)
        close.append((nxt - mono) * 1000 if nxt else float("nan"))
    before_next = sum(1 for a, c in zip(avail, close, strict=True) if a < c)
    out()
    out(f"(a) part availability, {len(infos)} consecutive video parts (ms; 'last frame' = the part's last "
        f"video frame, the one that closes it, written to Kiln's RTMP socket):")
    out(f"  avail  (reload answered - last frame written)  {summary(avail)}")
    met = "met" if avail and pctl(avail, 99) <= PART_TARGET_MS else "NOT met"
    out(f"         target p99 <= {PART_TARGET_MS:g} ms: {met} (p99 {pctl(avail, 99):.1f} ms); "
        f"{before_next}/{len(infos)} answered before the next frame was written")
    out(f"  ready  (part downloaded - last frame written)  {summary(ready)}")
    out(f"  dl     (part GET time)                         {summary(dl)}")
    out(f"  next frame written - last frame (not waited for) {summary([c for c in close if c == c])}")  # not NaN
    out(f"  part sizes KB: p50={pctl([i.size / 1000 for i in infos], 50):.0f}; "
        f"PDT - first frame's write time (ms): {summary(prober.pdt_offsets)}")
    if prober.errors:
        out(f"  prober errors: {prober.errors[:5]}")


ANSWER_COST_KINDS = ("chunklist", "part", "segment", "blocked reload")


def answer_costs(args: argparse.Namespace, repeats: int = 3) -> None:
    """(f) bench/_llhls_cost.py in a child per checkout (this one, and --kiln-tree's), taking turns; the best
    of ``repeats`` per figure (the least disturbed by the other jobs on the machine)."""
    import subprocess

    trees = [("this", ROOT)] + ([("--kiln-tree", Path(args.kiln_tree))] if args.kiln_tree else [])
    best: dict[str, dict[str, float]] = {name: {} for name, _t in trees}
    for _ in range(repeats):
        for name, tree in trees:
            proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_llhls_cost.py")),
                                   str(args.cost_viewers), "10"], cwd=tree, capture_output=True, text=True,
                                  timeout=300)
            if proc.returncode != 0:
                out(f"(f) {name} ({tree}): failed: {proc.stderr.strip().splitlines()[-1:]}")
                return
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            for kind in ANSWER_COST_KINDS:
                best[name][kind] = min(best[name].get(kind, float("inf")), got[kind])
    out()
    out(f"(f) CPU per answer through the player port's protocol and fast lane, in one process (uvicorn httptools + "
        f"LlhlsServer, a counting transport: no kernel), {args.cost_viewers} connections, best of {repeats}; "
        f"a blocked reload is counted from its arrival to its answer written when its part appears (load "
        f"{os.getloadavg()[0]:.1f})")
    headers = ["checkout", *(f"{k} us" for k in ANSWER_COST_KINDS)]
    out(table(headers, [[f"{name} ({tree})", *(f"{best[name][k]:.1f}" for k in ANSWER_COST_KINDS)]
                        for name, tree in trees]))


def bench_kiln(workdir: Path, chunk_duration: float, tree: str | None = None) -> BenchKiln:
    """Kiln with the e2e app config, its LLHLS ChunkDuration set to `chunk_duration`, run from `tree` (another
    checkout, for a before/after under the same load) or this one."""
    kiln = BenchKiln(workdir)
    if tree:
        kiln.tree = Path(tree)
    xml = kiln.config_path.read_text()
    kiln.config_path.write_text(xml.replace("<ChunkDuration>0.5</ChunkDuration>",
                                            f"<ChunkDuration>{chunk_duration:g}</ChunkDuration>"))
    return kiln.start()


def player_runs(args: argparse.Namespace, master: str, wd: Path, pdt_offset_ms: float) -> None:
    """(b): hls.js with its default config, then with each --hlsjs-config, the 1.5 s target beside each."""
    configs: list[dict[str, Any]] = [{}] + [json.loads(c) for c in args.hlsjs_config]
    for n, config in enumerate(configs):
        report = run_player(master, args.player_seconds, wd / f"player{n}", config)
        if report is None:
            out("(b) hls.js: skipped (chromium, node or the npm modules hls.js/playwright-core are missing)")
            return
        print_player(report, pdt_offset_ms, config)


def print_player(report: dict[str, Any], pdt_offset_ms: float, config: dict[str, Any] | None = None) -> None:
    samples = report.get("samples") or []
    errors = report.get("errors") or []
    name = f"config {json.dumps(config)}" if config else "default config"
    if not samples:
        out(f"(b) hls.js ({name}): no samples; errors: {errors[:5]}")
        return
    lat = [s["latency"] for s in samples if s.get("latency") is not None]
    pdt = [s["pdtLatency"] for s in samples if s.get("pdtLatency") is not None]
    out(f"(b) hls.js ({name}, lowLatencyMode), hls.js target {samples[0].get('targetLatency')} s, "
        f"{len(samples)} samples at 1 s once playing (seconds):")
    out(f"  hls.latency (playlist live edge - currentTime)   {summary(lat)}")
    out(f"  now - hls.playingDate (PDT based)                {summary(pdt)}")
    settled = lat[len(lat) // 2:]
    if pdt_offset_ms == pdt_offset_ms:  # not NaN
        g2g = [x + pdt_offset_ms / 1000 for x in pdt]
        out(f"  g2g = PDT based + (PDT - frame write time) {pdt_offset_ms:.0f} ms  {summary(g2g)}")
        settled = g2g[len(g2g) // 2:]
    if settled:
        verdict = "met" if pctl(settled, 50) <= LATENCY_TARGET_S else "NOT met"
        out(f"  behind live once settled (second half, g2g if known): p50 {pctl(settled, 50):.2f} s, "
            f"target <= {LATENCY_TARGET_S:g} s: {verdict}")
    out(f"  playbackRate last {samples[-1].get('rate')}, buffer ahead of currentTime p50 "
        f"{pctl([s['buffered'] for s in samples], 50):.2f}s; hls.js errors: {errors[:5] or 'none'}")


if __name__ == "__main__":
    main()
