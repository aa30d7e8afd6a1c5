"""hls.js in headless Chromium watching a live stream for a while, optionally forcing ABR level switches:
hlsjs_watch.js."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, page_report
from tests.peers.process import Peer

log = logging.getLogger(__name__)

WATCH_JS = Path(__file__).with_name("hlsjs_watch.js")


@dataclass
class HlsWatch:
    """A running hlsjs_watch.js: what the viewer has seen so far, then its report."""

    peer: Peer
    user_data_dir: Path
    timeout: float
    url: str

    def seen(self) -> list[dict[str, Any]]:
        """The picture's changes seen so far ([{at, width, colour}])."""
        found = []
        for line in self.peer.stdout_text().splitlines():
            if line.startswith('{"seen":'):
                found.append(json.loads(line)["seen"])
        return found

    def report(self) -> dict[str, Any]:
        """Wait for the watch to end; its report (see ``watch_hls``)."""
        report = page_report(self.peer, self.user_data_dir, self.timeout, "hlsjs_watch.js")
        log.info("hls.js watched=%.1f advanced=%.2f maxStall=%.2f switches=%d errors=%s url=%s",
                 report.get("watched") or 0.0, report.get("advanced") or 0.0, report.get("maxStall") or 0.0,
                 len(report.get("switches", [])), report.get("errors"), self.url)
        return report


def start_watch(url: str, *, workdir: Path, watch_seconds: float, switch_every: float = 0.0,
                switch_with: str = "nextLevel", timeout: float = 30, low_latency: bool = True) -> HlsWatch:
    """Start watching ``url`` (see ``watch_hls``); the caller may act while it plays, then take its report."""
    workdir.mkdir(parents=True, exist_ok=True)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir))
    options = {"url": url, "user_data_dir": str(user_data_dir), "timeout_ms": int(timeout * 1000),
               "watch_s": watch_seconds, "switch_every_s": switch_every, "switch_with": switch_with,
               "low_latency": low_latency, "chromium": CHROMIUM}
    peer = Peer.spawn("chromium-hlsjs-watch", [NODE, str(WATCH_JS), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    return HlsWatch(peer, user_data_dir, timeout + watch_seconds + 30, url)


def watch_hls(url: str, *, workdir: Path, watch_seconds: float, switch_every: float = 0.0,
              switch_with: str = "nextLevel", timeout: float = 30, low_latency: bool = True) -> dict[str, Any]:
    """Play ``url`` until it plays (bounded by ``timeout``), then watch it ``watch_seconds``, setting hls.js's
    ``switch_with`` (``nextLevel``: at the next fragment, or ``currentLevel``: at once) to the next level every
    ``switch_every`` s (0: never). Returns hlsjs_watch.js's report (keys: played, watched, startTime, currentTime,
    advanced, maxStall, stalls, levels, switches, levelsPlayed, seen, jumps, quality, errors, fatal)."""
    return start_watch(url, workdir=workdir, watch_seconds=watch_seconds, switch_every=switch_every,
                       switch_with=switch_with, timeout=timeout, low_latency=low_latency).report()
