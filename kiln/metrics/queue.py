"""Counters of one bounded packet queue (a hub subscriber), and OME's internal-queue view of them.

A subscriber owns its counters: the hub's producer writes ``dropped_packets``/``skips``/``peak`` under
the subscriber's own condition lock, its consumer writes ``delivered``; nothing else writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class QueueCounters:
    delivered: int = 0
    dropped_packets: int = 0
    skips: int = 0
    peak: int = 0


def queue_json(ident: int, urn: str, kind: str, size: int, threshold: int, counters: QueueCounters) -> dict[str, Any]:
    """One entry of ``GET /v1/stats/current/internals/queues`` (OME's shape; rates are not measured)."""
    return {"id": ident, "urn": urn, "type": kind, "size": size, "peak": counters.peak, "threshold": threshold,
            "avgWaitingTime": 0, "inputPerSecond": 0, "outputPerSecond": 0, "drop": counters.dropped_packets}
