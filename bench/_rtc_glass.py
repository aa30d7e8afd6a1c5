"""Glass-to-glass as OvenPlayer sees it, for bench/webrtc.py ``--glass`` (and standalone).

The stream is the bench's 720p30 2.5 Mbit/s H.264 + AAC, but encoded live by ffmpeg with the wall clock at
each frame's capture drawn on it (``_media.timecoded_publish``; tests/e2e/webrtc/timecode.py). One
OvenPlayer in headless Chromium (tests/e2e/webrtc/glass_player.js) plays it over OME's signalling and
reads the clock back from every shown frame (requestVideoFrameCallback + a canvas), on the same machine
clock. Per run it prints, next to the 500 ms target (issue 12):
  glass    = the frame's expected display time - its capture (the figure);
  received = its last RTP packet in the browser - capture: ffmpeg's capture hold + x264 + FLV/RTMP +
             Kiln (its own frame arrival -> first RTP share is bench/webrtc.py's frame->rtp column);
  browser  = glass - received: Chromium's jitter buffer, decode and render;
and Chromium's own jitter buffer delay and decode time per frame (getStats). bench/webrtc.py measures it
with no other viewer first, then during each step's measured window, while the farms' N viewers watch.

Standalone (no farm viewers; ``--hls`` adds hls.js over LL-HLS of the same stream, same reading):
  .venv/bin/python bench/_rtc_glass.py [--seconds 15] [--hls] [--size 1280x720 --bitrate 2500k --bufsize 2500k]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import pctl, run_dir, table  # noqa: E402

from tests.e2e.webrtc.glass import GlassReport, GlassViewer, glass_available, start_glass  # noqa: E402

TARGET_MS = 500
HEADERS = ["kiln", "viewers", "player", "frames", "glass p50/p90/p99 ms (<=500)", "received p50/p99 ms",
           "browser p50 ms", "jitter buffer ms", "decode ms", "unreadable", "dropped", "errors"]


def _pcts(values: list[float], ps: tuple[int, ...]) -> str:
    return "/".join(f"{pctl(values, p):.0f}" for p in ps) if values else "-"


def glass_row(label: str, viewers: int | str, player: str, report: GlassReport) -> list[object]:
    """One table row: glass-to-glass percentiles and where the time goes."""
    pairs = [(s[2], s[3]) for s in report.samples if s[3] is not None]
    browser = [d - r for d, r in pairs]
    stats = report.stats
    jitter, decode = stats.get("jitterBufferMs"), stats.get("decodeMs")
    return [label, viewers, player, len(report.samples), _pcts(report.display, (50, 90, 99)),
            _pcts(report.received, (50, 99)), f"{statistics.median(browser):.0f}" if browser else "-",
            "-" if jitter is None else f"{jitter:.0f}", "-" if decode is None else f"{decode:.1f}",
            report.unreadable, stats.get("framesDropped", "-"), len(report.errors)]


class GlassProbe:
    """One OvenPlayer watching the stream beside bench/webrtc.py's viewers (with ``hls``, hls.js once alone)."""

    def __init__(self, ws_url: str, master_url: str, workdir: Path, label: str, hls: bool = False) -> None:
        if not glass_available():
            raise SystemExit("--glass needs chromium, node and the npm modules playwright-core and ovenplayer")
        self.urls = {"ovenplayer": ws_url, **({"hlsjs": master_url} if hls and glass_available("hlsjs") else {})}
        self.origin = f"http://{urlsplit(ws_url).netloc}"  # the page's origin: Kiln's own port
        self.workdir = workdir / f"glass-{label}"
        self.label = label
        self.rows: list[list[object]] = []
        self._running: list[tuple[str, GlassViewer]] = []
        self._window = (0.0, 0.0)

    def start(self, total_s: float, measured_s: float, player: str = "ovenplayer") -> None:
        """Open the player now; it watches ``total_s``; the last ``measured_s`` of it count."""
        until = time.time() + total_s
        self._window = (1000 * (until - measured_s), 1000 * until)
        self._running = [(player, start_glass(self.urls[player], origin=self.origin, workdir=self.workdir,
                                              player=player, until_ms=1000 * until, timeout_s=max(40.0, total_s)))]

    def finish(self, viewers: int | str) -> list[list[object]]:
        """Wait for the players; print and keep one row each (samples of the measured window only)."""
        rows = []
        for player, running in self._running:
            try:
                report = running.finish(120).between(*self._window)
            except (RuntimeError, TimeoutError) as exc:  # a figure missing, said in the table, not the run's end
                report = GlassReport(False, [], 0, {}, [str(exc)])
            rows.append(glass_row(self.label, viewers, player, report))
            if report.stats:  # what Chromium received and asked for: tells a frozen picture from a slow one
                keys = ("framesReceived", "framesDecoded", "keyFramesDecoded", "packetsReceived", "packetsLost",
                        "nackCount", "pliCount", "firCount", "freezeCount", "pairPacketsReceived", "pairBytesReceived")
                counts = " ".join(f"{k}={report.stats.get(k)}" for k in keys)
                sys.stdout.write(f"  glass {player} at {viewers} viewers: {counts}\n")
            for error in report.errors[:3]:
                sys.stdout.write(f"  glass {player} error: {error}\n")
        self._running = []
        self.rows += rows
        sys.stdout.write(table(HEADERS, rows) + "\n")
        sys.stdout.flush()
        return rows

    def alone(self, seconds: float, settle: float = 6.0) -> None:
        """With no other viewer, each player in turn: its first ``settle`` seconds (connecting, jitter buffer filling)
        are left out."""
        for player in self.urls:  # one at a time: two 720p decodes at once would share the same 2 cores
            self.start(settle + seconds, seconds, player)
            self.finish(0)

    def summary(self) -> str:
        return (table(HEADERS, self.rows) + f"\nglass = a frame's display time - its capture in ffmpeg, as the player "
                f"saw it (target <= {TARGET_MS} ms); received = its last packet in the browser - capture")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--hls", action="store_true", help="also hls.js over LL-HLS of the same stream")
    ap.add_argument("--size", default="1280x720", help="the publisher's picture (the bench's is 1280x720)")
    ap.add_argument("--bitrate", default="2500k")
    ap.add_argument("--bufsize", help="x264's VBV (default one second of --bitrate): caps a keyframe's size")
    args = ap.parse_args()
    from _media import CpuWindow, out, stop_all, timecoded_publish
    from webrtc import RtcKiln

    wd = run_dir("rtc-glass")
    kiln = RtcKiln(wd / "kiln").start()
    width, height = (int(x) for x in args.size.split("x"))
    publisher = timecoded_publish(kiln.rtmp_url("cam"), wd, width=width, height=height, bitrate=args.bitrate,
                                  bufsize=args.bufsize)
    try:
        deadline = time.monotonic() + 30
        while "cam" not in kiln.stream_names() and time.monotonic() < deadline:
            time.sleep(0.2)
        port = kiln.ports.llhls
        probe = GlassProbe(f"ws://127.0.0.1:{port}/app/cam", f"http://127.0.0.1:{port}/app/cam/llhls.m3u8", wd,
                           "this", hls=args.hls)
        cpu = CpuWindow.measure({"kiln": [kiln.pid], "ffmpeg": [publisher.pid]}, 3)
        out(f"load {Path('/proc/loadavg').read_text().split()[:3]}; kiln {cpu.core_pct('kiln'):.0f} % of a core, "
            f"the live x264 publisher {cpu.core_pct('ffmpeg'):.0f} %")
        probe.alone(args.seconds)
        out(probe.summary())
        out(f"kiln log: {kiln.log_findings()}; run dir: {wd}")
    finally:
        stop_all([publisher])
        kiln.close()


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
