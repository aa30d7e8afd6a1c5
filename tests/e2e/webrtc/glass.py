"""Glass-to-glass in a real player: ``glass_player.js`` (headless Chromium, OvenPlayer over OME's signalling or
hls.js) reads the publisher's clock (timecode.py) back from every shown frame. ``start`` returns the running
browser so a caller can do other things (start viewers, measure CPU) while it watches; ``finish`` waits for
its report."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, NODE_MODULES, page_report
from tests.peers.process import Peer

DRIVER = Path(__file__).with_name("glass_player.js")


def glass_available(player: str = "ovenplayer") -> bool:
    module = "hls.js" if player == "hlsjs" else "ovenplayer"
    return Path(CHROMIUM).exists() and shutil.which(NODE) is not None and all(
        (NODE_MODULES / m).is_dir() for m in ("playwright-core", module))


@dataclass
class GlassReport:
    """What the player saw. Each sample: (seen epoch ms, callback - stamp, expected display - stamp,
    last packet received - stamp or None), all in ms."""

    playing: bool
    samples: list[tuple[float, float, float, float | None]]
    unreadable: int
    stats: dict[str, Any]
    errors: list[str] = field(default_factory=list)

    def between(self, start_ms: float, end_ms: float) -> GlassReport:
        """The samples of frames shown in [start_ms, end_ms] (epoch ms): a measured window."""
        return GlassReport(self.playing, [s for s in self.samples if start_ms <= s[0] <= end_ms], self.unreadable,
                           self.stats, self.errors)

    def column(self, index: int) -> list[float]:
        return [float(value) for s in self.samples if (value := s[index]) is not None]

    @property
    def display(self) -> list[float]:
        """Glass-to-glass: the frame's display time behind its capture."""
        return self.column(2)

    @property
    def received(self) -> list[float]:
        """Capture to the frame's last packet in the browser: publisher + encoder + Kiln + network."""
        return self.column(3)


class GlassViewer:
    def __init__(self, peer: Peer, user_data_dir: Path) -> None:
        self.peer = peer
        self.user_data_dir = user_data_dir

    def finish(self, timeout: float) -> GlassReport:
        raw = page_report(self.peer, self.user_data_dir, timeout, "glass_player.js")
        samples = [(s[0], s[1], s[2], s[3]) for s in raw["samples"]]
        return GlassReport(raw["playing"], samples, raw["unreadable"], raw["stats"], raw["errors"])


def start_glass(url: str, *, origin: str, workdir: Path, player: str = "ovenplayer", until_ms: float | None = None,
                watch_s: float = 5.0, timeout_s: float = 40.0) -> GlassViewer:
    """Play ``url`` (``ws://…/app/stream`` for OvenPlayer, an LL-HLS playlist for hls.js) until ``until_ms``
    (epoch ms) or for ``watch_s`` after the first stamped frame."""
    workdir.mkdir(parents=True, exist_ok=True)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-glass-", dir=workdir))
    options = {"player": player, "url": url, "origin": origin, "user_data_dir": str(user_data_dir),
               "chromium": CHROMIUM, "timeout_ms": int(timeout_s * 1000), "until_ms": until_ms, "watch_s": watch_s}
    peer = Peer.spawn(f"chromium-glass-{player}", [NODE, str(DRIVER), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
    return GlassViewer(peer, user_data_dir)
