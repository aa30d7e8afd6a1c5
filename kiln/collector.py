"""The cyclic garbage collector, set for serving: what startup built is frozen.

What startup built (modules, configuration, projections replayed from the journal: millions of objects
after a long journal without a snapshot) goes to the permanent generation: no full collection walks it
again, so none stalls the event loop for the size of the history. Frozen objects are still freed by
reference counting; only a cycle among them would stay, and startup leaves none worth a pause.

The young generation keeps CPython's threshold (700). A threshold of 10,000 took the collector out of
start/stop pairs (bench/api.py, about 7 % of Kiln's CPU there), but cycles that outlive a young collection
(a WebRTC session's objects: aiortc's peer connection, transports, RTP senders) then waited ten times longer
in the older generations: 250 abandoned sessions raised the high-water mark by 85-90 MB a round instead of
30-40 (tests/e2e/webrtc/test_play_faults.py), and 2,000 was not enough either. Memory that comes back wins.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune_for_serving() -> None:
    """Call once, after startup and before serving: collect what startup let go, freeze the rest."""
    gc.collect()
    gc.freeze()
    log.info("garbage collector tuned frozen=%d thresholds=%s", gc.get_freeze_count(), gc.get_threshold())
