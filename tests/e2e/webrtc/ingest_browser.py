"""Browser publishers for WebRTC ingest e2e: headless Chromium's fake camera through OvenLiveKit (OME
signalling) or Eyevinn's WHIP client, driven by ingest_browser.js. ``start`` returns the running peer
so the test can watch Kiln while the browser publishes; ``finish`` waits for its JSON report."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, NODE_MODULES, browser_available, page_report
from tests.peers.process import Peer

SCRIPT = Path(__file__).with_name("ingest_browser.js")
OVENLIVEKIT = NODE_MODULES / "ovenlivekit" / "dist" / "OvenLiveKit.min.js"


def publishers_available() -> bool:
    return browser_available() and OVENLIVEKIT.exists() and (NODE_MODULES / "@eyevinn" / "whip-web-client").is_dir() \
        and (NODE_MODULES / ".bin" / "esbuild").exists()


def whip_bundle(workdir: Path) -> Path:
    """Eyevinn's WHIP client ships no browser bundle: esbuild makes one (global ``EyevinnWhip``)."""
    entry = workdir / "whip_entry.js"
    out = workdir / "whip_bundle.js"
    module = (NODE_MODULES / "@eyevinn" / "whip-web-client").resolve()
    entry.write_text(f"export * from {json.dumps(str(module))};\n")
    subprocess.run([str(NODE_MODULES / ".bin" / "esbuild"), str(entry), "--bundle", "--format=iife",
                    "--global-name=EyevinnWhip", "--platform=browser", f"--outfile={out}", "--log-level=warning"],
                   check=True, cwd=NODE_MODULES.parent, timeout=60)
    return out


class BrowserPublisher:
    def __init__(self, peer: Peer, user_data_dir: Path) -> None:
        self.peer = peer
        self.user_data_dir = user_data_dir

    def finish(self, timeout: float, *, now: bool = False) -> dict[str, Any]:
        """The page's report once it stopped publishing; ``now``: end its ``publish_s`` wait first (SIGUSR2 to
        node only, not its group, where Chromium would take it as a kill), for a test that has seen all it
        needed and would otherwise wait out a budget sized for a loaded machine."""
        popen = self.peer.popen
        if now and popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGUSR2)
        return page_report(self.peer, self.user_data_dir, timeout, "ingest_browser.js")


def start_publisher(mode: str, url: str, *, workdir: Path, page_origin: str, publish_s: float,
                    simulcast: bool = False, width: int = 320, height: int = 180,
                    netns: str | None = None) -> BrowserPublisher:
    """``netns``: run node and Chromium inside that network namespace (``ip netns exec``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = OVENLIVEKIT if mode == "ovenlivekit" else whip_bundle(workdir)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-publisher-", dir=workdir))
    options = {"mode": mode, "url": url, "page_origin": page_origin, "user_data_dir": str(user_data_dir),
               "chromium": CHROMIUM, "publish_s": publish_s, "timeout_ms": 30000, "script": str(script),
               "simulcast": simulcast, "width": width, "height": height}
    inside = ["ip", "netns", "exec", netns] if netns else []
    peer = Peer.spawn(f"chromium-{mode}", [*inside, NODE, str(SCRIPT), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
    return BrowserPublisher(peer, user_data_dir)


def round_trip(whip_url: str, play_url: str, ready_url: str, *, workdir: Path, page_origin: str,
               watch_s: float) -> dict[str, Any]:
    """Publish a canvas stamped with the time over WHIP and play it back with OvenPlayer (ingest_roundtrip.js)."""
    workdir.mkdir(parents=True, exist_ok=True)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-roundtrip-", dir=workdir))
    options = {"whip_url": whip_url, "play_url": play_url, "page_origin": page_origin,
               "user_data_dir": str(user_data_dir), "chromium": CHROMIUM, "whip_bundle": str(whip_bundle(workdir)),
               "watch_s": watch_s, "timeout_ms": 40000, "ready_url": ready_url}
    peer = Peer.spawn("chromium-roundtrip", [NODE, str(SCRIPT.with_name("ingest_roundtrip.js")), json.dumps(options)],
                      workdir, env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
    return BrowserPublisher(peer, user_data_dir).finish(watch_s + 120)
