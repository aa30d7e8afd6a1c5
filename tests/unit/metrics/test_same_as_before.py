"""The metrics tree answers exactly what the global-lock StatsProjection it replaced answered.

Random histories of lifecycle calls, input, output, connections and clock ticks are played into
both (the old class is kept verbatim in ``bench/_stats_reference.py``); after every step every
vhost, app and stream shows the same JSON in both.
"""

from __future__ import annotations

from typing import Any

from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench._stats_reference import StatsProjection
from kiln.metrics import CONNECTION_TYPES, MetricsTree
from kiln.metrics.connections import connections_json
from kiln.timefmt import now

VHOSTS, APPS, STREAMS = ("v", "w"), ("a", "b"), ("s", "t")

vhost = st.sampled_from(VHOSTS)
app = st.sampled_from(APPS)
stream = st.sampled_from(STREAMS)
size = st.integers(1, 5000)
step = st.one_of(
    st.tuples(st.just("vhost_created"), vhost),
    st.tuples(st.just("vhost_deleted"), vhost),
    st.tuples(st.just("app_created"), vhost, app),
    st.tuples(st.just("app_deleted"), vhost, app),
    st.tuples(st.just("stream_created"), vhost, app, stream),
    st.tuples(st.just("stream_deleted"), vhost, app, stream),
    st.tuples(st.just("in"), vhost, app, stream, size),
    st.tuples(st.just("in"), vhost, app, stream, size),
    st.tuples(st.just("out"), vhost, app, st.one_of(st.none(), stream), size),
    st.tuples(st.just("connection"), vhost, app, st.one_of(st.none(), stream), st.sampled_from(CONNECTION_TYPES),
              st.sampled_from((1, 1, -1))),
    st.tuples(st.just("tick"), st.sampled_from((0.2, 0.45, 0.9, 1.3, 4.0, 12.0))),
)


def apply(old: StatsProjection, new: MetricsTree, op: tuple[Any, ...], clock: Any) -> None:
    kind, *args = op
    if kind == "tick":
        clock.tick(args[0])
    elif kind == "in":
        if new.stream_json(*args[:3]) is not None:  # a live stream feeds the node it was given
            old.bytes_in(*args)
            new.ingest_meter(*args[:3]).add_in(args[3], now())
    elif kind == "out":
        old.bytes_out(*args)
        new.bytes_out(*args)
    else:
        getattr(old, kind)(*args)
        getattr(new, kind)(*args)


def with_older_keys(figures: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reference's JSON with the older connection keys added (issue 19 item 5): its histories count
    pushes under ``push`` only, so no push has a protocol kind."""
    if figures is None:
        return None
    return {**figures, "connections": connections_json(figures["connections"], {})}


def same(old: StatsProjection, new: MetricsTree) -> None:
    assert new.server_json() == with_older_keys(old.server_json())
    for v in VHOSTS:
        assert new.vhost_json(v) == with_older_keys(old.vhost_json(v)), v
        for a in APPS:
            assert new.app_json(v, a) == with_older_keys(old.app_json(v, a)), (v, a)
            for s in STREAMS:
                assert new.stream_json(v, a, s) == with_older_keys(old.stream_json(v, a, s)), (v, a, s)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=60))
def test_every_history_shows_the_same_figures(history: list[tuple[Any, ...]]) -> None:
    with freeze_time("2030-01-02 03:04:05") as clock:
        old, new = StatsProjection(), MetricsTree()
        for op in history:
            apply(old, new, op, clock)
            same(old, new)
