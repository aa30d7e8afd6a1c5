"""A latency histogram in fixed buckets: p50/p99 of millions of samples in constant memory.

The WebRTC send path records one value per frame (arrival in Kiln → first RTP packet out); keeping
samples would grow with the stream's life, so values are counted per bucket and a quantile is the
upper bound of the bucket it falls in (bucket edges are close enough below 20 ms for the 10 ms target).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

LATENCY_MS_BOUNDS: tuple[float, ...] = (
    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12.5, 15, 20, 30, 50, 75, 100, 150, 250, 500,
    1000, 2500)


@dataclass
class Histogram:
    bounds: tuple[float, ...] = LATENCY_MS_BOUNDS
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0
    peak: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        if value > self.peak:
            self.peak = value

    def quantile(self, q: float) -> float:
        """The upper bound of the bucket holding the ``q`` quantile (the peak for the open last bucket); 0 when
        empty."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return min(self.bounds[i], self.peak) if i < len(self.bounds) else self.peak
        return self.peak

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
