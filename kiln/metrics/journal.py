"""The journal's own counters: records appended, group commits, and how long each fsync took.

The journal's writer thread is the only writer; an exporter reads them at scrape time. Buckets are
fixed (seconds), so recording an fsync is a short loop and nothing is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class JournalCounters:
    records: int = 0
    commits: int = 0
    fsyncs: int = 0
    fsync_seconds: float = 0.0
    fsync_buckets: list[int] = field(default_factory=lambda: [0] * len(FSYNC_BUCKETS))  # per bucket, not cumulative

    def committed(self, records: int) -> None:
        self.records += records
        self.commits += 1

    def fsynced(self, seconds: float) -> None:
        for index, bound in enumerate(FSYNC_BUCKETS):
            if seconds <= bound:
                self.fsync_buckets[index] += 1
                break
        self.fsync_seconds += seconds
        self.fsyncs += 1

    def histogram(self) -> tuple[list[tuple[str, int]], int, float]:
        """(cumulative ``le`` buckets with ``+Inf``, count, sum), as Prometheus shows a histogram."""
        counts, total_count, total = list(self.fsync_buckets), self.fsyncs, self.fsync_seconds
        out, running = [], 0
        for bound, count in zip(FSYNC_BUCKETS, counts, strict=True):
            running += count
            out.append((repr(bound), running))
        out.append(("+Inf", max(running, total_count)))
        return out, max(running, total_count), total
