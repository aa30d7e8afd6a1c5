"""A real LL-HLS client: hls.js in Debian's headless Chromium, driven by npm playwright-core (browser.js).

`play_hls(url)` loads a test page with hls.js (lowLatencyMode on), waits for the video's `playing`
event and for currentTime to advance, and returns what happened, including whether hls.js made a
blocking playlist reload (`_HLS_msn`) and how many LL-HLS parts it loaded.

The page is served by request interception on the HLS URL's own origin unless `origin` is given,
in which case every HLS request is cross-origin and needs Kiln's CORS headers. (An OvenPlayer page is
not provided; the `ovenplayer` npm package is installed for one.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from tests.peers.process import Peer

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
NODE = "node"
BROWSER_JS = Path(__file__).with_name("browser.js")
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


def browser_available() -> bool:
    """Chromium, node and the npm modules browser.js needs are all installed."""
    return (
        Path(CHROMIUM).exists()
        and shutil.which(NODE) is not None
        and (NODE_MODULES / "playwright-core").is_dir()
        and (NODE_MODULES / "hls.js").is_dir()
    )


def _kill_processes_using(marker: str) -> None:
    """SIGKILL every process whose command line contains `marker` (chromium's unique user-data-dir)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
                log.warning("chromium left behind pid=%s, killed", proc.name)


def page_report(peer: Peer, user_data_dir: Path, timeout: float, script: str) -> dict[str, Any]:
    """Wait up to ``timeout`` for a node page driver, stop it and its Chromium (by profile), remove the
    profile, and return the JSON line the driver printed last (its report)."""
    try:
        peer.wait(timeout)
    finally:
        peer.stop()
        _kill_processes_using(f"--user-data-dir={user_data_dir}")
        shutil.rmtree(user_data_dir, ignore_errors=True)
    lines = peer.stdout_text().strip().splitlines()
    if not lines:
        raise RuntimeError(f"{script} printed nothing (rc={peer.returncode}); stderr:\n{peer.stderr_tail(30)}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def play_hls(
    url: str,
    *,
    timeout: float = 30,
    workdir: Path,
    origin: str | None = None,
    advance: float = 1.0,
    low_latency: bool = True,
    ignore_https_errors: bool = False,
    hls_config: dict[str, Any] | None = None,
    sample_seconds: float = 0.0,
) -> dict[str, Any]:
    """Play `url` with hls.js; return the JSON report of browser.js.

    Keys: played (playing event seen and currentTime advanced by >= `advance` s), currentTime,
    lowLatencyMode, blockingReloadSeen, partsLoaded (hls.js part loads), partRequests (requests with
    "part" in the path), fragsLoaded, live, canBlockReload, requests, errors, protocols (hls.js's
    requests counted by resource-timing nextHopProtocol, e.g. {"h2": 32}). `ignore_https_errors` accepts a
    certificate Chromium does not trust (a test CA). `hls_config` adds hls.js settings; with
    `sample_seconds`, once played, `samples` holds hls.js's latency and the PDT-based one every 0.5 s.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir))
    options = {
        "url": url,
        "user_data_dir": str(user_data_dir),
        "timeout_ms": int(timeout * 1000),
        "advance_s": advance,
        "origin": origin,
        "chromium": CHROMIUM,
        "low_latency": low_latency,
        "ignore_https_errors": ignore_https_errors,
        "hls_config": hls_config or {},
        "sample_s": sample_seconds,
    }
    peer = Peer.spawn("chromium-hlsjs", [NODE, str(BROWSER_JS), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    # browser.js waits up to `timeout` twice (playing, then advance), plus browser start-up.
    report = page_report(peer, user_data_dir, 2 * timeout + sample_seconds + 30, "browser.js")
    log.info("hls.js played=%s currentTime=%.2f parts=%d blocking=%s errors=%d url=%s", report.get("played"),
             report.get("currentTime") or 0.0, report.get("partsLoaded", 0), report.get("blockingReloadSeen"),
             len(report.get("errors", [])), url)
    return report
