"""Real WebRTC players in Debian's headless Chromium (rtc_player.js, npm playwright-core): OvenPlayer with a
``webrtc`` source (OME's signalling) and Eyevinn's WHEP player, bundled here with npm esbuild."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, NODE_MODULES, page_report
from tests.peers.process import Peer

DRIVER = Path(__file__).with_name("rtc_player.js")


def rtc_browser_available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which(NODE) is not None and all(
        (NODE_MODULES / m).is_dir() for m in ("playwright-core", "ovenplayer", "@eyevinn/webrtc-player", "esbuild"))


def whep_bundle(workdir: Path) -> Path:
    """@eyevinn/webrtc-player ships no browser bundle: esbuild makes one (global ``EyevinnPlayer``)."""
    out = workdir / "eyevinn-bundle.js"
    if out.exists():
        return out
    # the entry comes on stdin, resolved from the project (where node_modules is)
    subprocess.run([str(NODE_MODULES / ".bin" / "esbuild"), "--bundle", "--format=iife", "--global-name=EyevinnPlayer",
                    "--platform=browser", f"--outfile={out}", "--log-level=error"],
                   input=b"export * from '@eyevinn/webrtc-player';\n", check=True, timeout=60, cwd=NODE_MODULES.parent)
    return out


@dataclass
class RtcWatch:
    """A running rtc_player.js: what the viewer has seen so far (with ``sample_ms``), then its report."""

    peer: Peer
    profile: Path
    timeout: float

    def samples(self) -> list[dict[str, Any]]:
        """The samples taken so far ([{frames, width, colour}])."""
        return [json.loads(line)["sample"] for line in self.peer.stdout_text().splitlines()
                if line.startswith('{"sample":')]

    def report(self) -> dict[str, Any]:
        return page_report(self.peer, self.profile, self.timeout, "rtc_player.js")


def start_rtc(player: str, url: str, *, origin: str, workdir: Path, timeout: float = 30, watch: float = 3,
              stop_whep: bool = False, chromium_args: tuple[str, ...] = (), sample_ms: int = 0,
              switch_every_ms: int = 0) -> RtcWatch:
    """Start playing ``url`` (see ``play_rtc``); the caller may act while it plays, then take its report."""
    workdir.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-rtc-", dir=workdir))
    options = {"player": player, "url": url, "origin": origin, "user_data_dir": str(profile),
               "timeout_ms": int(timeout * 1000), "watch_s": watch, "chromium": CHROMIUM,
               "whep_bundle": str(whep_bundle(workdir)) if player == "whep" else None, "stop_whep": stop_whep,
               "chromium_args": list(chromium_args), "sample_ms": sample_ms,
               "switch_every_ms": switch_every_ms}
    peer = Peer.spawn(f"chromium-{player}", [NODE, str(DRIVER), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
    return RtcWatch(peer, profile, timeout + watch + 60)


def play_rtc(player: str, url: str, *, origin: str, workdir: Path, timeout: float = 30, watch: float = 3,
             stop_whep: bool = False, chromium_args: tuple[str, ...] = (), sample_ms: int = 0,
             switch_every_ms: int = 0) -> dict[str, Any]:
    return start_rtc(player, url, origin=origin, workdir=workdir, timeout=timeout, watch=watch, stop_whep=stop_whep,
                     chromium_args=chromium_args, sample_ms=sample_ms, switch_every_ms=switch_every_ms).report()
