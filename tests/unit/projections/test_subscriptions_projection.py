"""The subscriptions read model: fed by events only, and the same after a snapshot round trip (msgpack)."""

from __future__ import annotations

import msgpack

from kiln.events import subscriptions as sub
from kiln.projections.subscriptions import SubscriptionsProjection


def fed() -> SubscriptionsProjection:
    projection = SubscriptionsProjection()
    for ev in (sub.SubscriptionCreated("a", "http://h/a", "k", 5, "push:", ["PushCreated"], "api", 100.0, 0),
               sub.SubscriptionCreated("b", "http://h/b", "", 1, "", [], "config", 101.0, 1),
               sub.SubscriptionDelivered("a", 9, 3),
               sub.SubscriptionStateChanged("a", "retrying", "HTTP 503"),
               sub.SubscriptionCreated("c", "http://h/c", "", 1, "", [], "api", 102.0, 0),
               sub.SubscriptionDeleted("c")):
        projection.apply(ev)
    return projection


def test_events_make_the_view() -> None:
    projection = fed()
    assert [v.id for v in projection.all()] == ["a", "b"]
    a = projection.get("a")
    assert a is not None and a.created_time == 100.0
    assert (a.state.cursor, a.state.delivered, a.state.state, a.state.reason) == (9, 3, "retrying", "HTTP 503")
    assert a.state.spec.types == ("PushCreated",) and a.state.spec.from_seq is None and a.state.from_seq == 5
    b = projection.get("b")
    assert b is not None and b.state.cursor == 0 and b.state.spec.from_seq == 1 and b.state.source == "config"


def test_snapshot_round_trip() -> None:
    projection = fed()
    saved = msgpack.unpackb(msgpack.packb(projection.snapshot()))
    restored = SubscriptionsProjection()
    restored.restore(saved)
    assert restored.all() == projection.all()
    assert restored.recovered() == projection.recovered()
