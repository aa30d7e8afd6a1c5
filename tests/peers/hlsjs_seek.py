"""hls.js in headless Chromium seeking back in a live stream (the DVR window): hlsjs_seek.js."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tests.peers.browser import CHROMIUM, NODE, page_report
from tests.peers.process import Peer

SEEK_JS = Path(__file__).with_name("hlsjs_seek.js")


def seek_back_hls(url: str, *, workdir: Path, timeout: float = 30, advance: float = 1.0) -> dict[str, Any]:
    """Play ``url``, seek to the start of its seekable range, return hlsjs_seek.js's report (keys:
    played, liveEdge, seekTo, seekedAt, currentTime, playedAfterSeek, fragsAfterSeek, errors)."""
    workdir.mkdir(parents=True, exist_ok=True)
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir))
    options = {"url": url, "user_data_dir": str(user_data_dir), "timeout_ms": int(timeout * 1000),
               "advance_s": advance, "chromium": CHROMIUM}
    peer = Peer.spawn("chromium-hlsjs-seek", [NODE, str(SEEK_JS), json.dumps(options)], workdir,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    # playing, seeked, advanced: each bounded by `timeout`
    return page_report(peer, user_data_dir, 3 * timeout + 30, "hlsjs_seek.js")
