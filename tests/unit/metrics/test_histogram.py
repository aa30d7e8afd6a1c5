"""The latency histogram's quantiles: the bucket's upper edge, never above the largest value seen."""

from __future__ import annotations

from kiln.metrics.histogram import Histogram


def test_quantiles_come_from_bucket_edges() -> None:
    h = Histogram()
    assert h.quantile(0.99) == 0.0
    for _ in range(98):
        h.observe(0.4)
    h.observe(9.5)
    h.observe(40.0)
    assert h.quantile(0.5) == 0.5 and h.quantile(0.99) == 10 and h.quantile(1.0) == 40.0
    assert h.count == 100 and abs(h.mean - (98 * 0.4 + 49.5) / 100) < 1e-9
    h.observe(9000.0)  # beyond the last edge: the peak
    assert h.quantile(1.0) == 9000.0
