"""The cyclic garbage collector, set for a server that keeps many requests in flight.

CPython 3.11 runs a young collection each time tracked objects allocated minus those freed passes 700.
With tens of API requests in flight (bench/api.py, start/stop pairs at 48 clients) each request's objects
(its task, coroutine frames, headers, futures) outlive several of those, so they were promoted, and the
older generations' passes ran every few seconds over everything the process holds: with the API's own
reference cycles gone, still about 1 s of collection per 15 s window of pairs, a tenth of Kiln's CPU there.
At 10,000 the in-flight objects are freed by reference counting before any collection sees them, and the
collector runs on real growth only (a few collections per minute under pairs).

What startup built (modules, configuration, projections replayed from the journal: millions of objects
after a long journal without a snapshot) is frozen: no full collection walks it again, so none stalls
the event loop for the size of the history. Frozen objects are still freed by reference counting; only
a cycle among them would stay, and startup leaves none worth a pause.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Call once, after startup and before serving: collect what startup let go, freeze the rest, and
    raise the young generation's threshold (the older two keep CPython's ratios)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    log.info("garbage collector tuned frozen=%d thresholds=%s", gc.get_freeze_count(), gc.get_threshold())
