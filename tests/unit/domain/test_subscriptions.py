"""Webhook subscriptions decided without I/O: what a body may say, who may delete, what Server.xml
changes at a start, and a cursor that only moves forward."""

from __future__ import annotations

import pytest

from kiln.domain.aggregate import decide_and_apply
from kiln.domain.errors import Conflict, Invalid, NotFound, ReadOnly
from kiln.domain.subscriptions import (
    Checkpoint,
    ConfigureSubscriptions,
    CreateSubscription,
    DeleteSubscription,
    ReportState,
    Subscriptions,
    parse_spec,
)
from kiln.events import subscriptions as sub

BODY = {"id": "audit", "url": "http://hooks.test/kiln", "secretKey": "s3", "filter": {"entity": "push:",
                                                                                     "types": ["PushStateChanged"]}}


@pytest.mark.parametrize("body, text", [
    ([], "must be a JSON object"),
    ({"url": "http://h/"}, "id is required"),
    ({"id": "a/b", "url": "http://h/"}, "id is required"),
    ({"id": "a", "url": "ftp://h/"}, "url is required"),
    ({"id": "a", "url": "http:///x"}, "url is required"),
    ({"id": "a", "url": "http://h/", "secretKey": 5}, "secretKey must be a string"),
    ({"id": "a", "url": "http://h/", "filter": {"stream": "x"}}, "filter must be an object"),
    ({"id": "a", "url": "http://h/", "filter": {"types": [1]}}, "filter must be an object"),
    ({"id": "a", "url": "http://h/", "from": 0}, "from must be a journal sequence number"),
    ({"id": "a", "url": "http://h/", "from": True}, "from must be a journal sequence number"),
    ({"id": "a", "url": "http://h/", "from": 2**64}, "from must be a journal sequence number"),  # no journal keeps it
    ({"id": "a", "url": "http://h/", "extra": 1}, "Unknown subscription key: extra"),
    ({"id": "a", "url": "http://h/", "filter": {"types": ["PushStarted"]}}, "unknown event type: PushStarted"),
])
def test_bad_bodies_are_refused_with_the_reason(body: object, text: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_spec(body)
    assert text in caught.value.text


def test_created_from_the_next_record_unless_from_is_given() -> None:
    subs = Subscriptions()
    [created] = decide_and_apply(subs, CreateSubscription(BODY, next_seq=42), 1000.0, list)
    assert isinstance(created, sub.SubscriptionCreated)
    assert (created.id, created.from_seq, created.entity_prefix, created.types, created.source) == \
        ("audit", 42, "push:", ["PushStateChanged"], "api")
    assert subs.items["audit"].cursor == 41
    [again] = Subscriptions().decide(CreateSubscription({**BODY, "from": 1}, next_seq=42), 0.0)
    assert isinstance(again, sub.SubscriptionCreated) and again.from_seq == 1 and again.declared_from == 1
    with pytest.raises(Conflict):
        subs.decide(CreateSubscription(BODY, next_seq=50), 0.0)


def test_delete_needs_an_api_subscription() -> None:
    subs = Subscriptions()
    with pytest.raises(NotFound):
        subs.decide(DeleteSubscription("audit"), 0.0)
    decide_and_apply(subs, ConfigureSubscriptions((parse_spec(BODY),), next_seq=1), 0.0, list)
    with pytest.raises(ReadOnly):
        subs.decide(DeleteSubscription("audit"), 0.0)


def test_server_xml_creates_changes_and_drops_configured_ones_keeping_their_place() -> None:
    subs = Subscriptions()
    decide_and_apply(subs, ConfigureSubscriptions((parse_spec(BODY),), next_seq=10), 0.0, list)
    decide_and_apply(subs, Checkpoint("audit", 25, 7), 0.0, list)
    assert subs.decide(ConfigureSubscriptions((parse_spec(BODY),), next_seq=90), 0.0) == []  # unchanged
    moved = {**BODY, "url": "http://other.test/"}
    events = decide_and_apply(subs, ConfigureSubscriptions((parse_spec(moved),), next_seq=90), 0.0, list)
    assert [type(e).__name__ for e in events] == ["SubscriptionDeleted", "SubscriptionCreated", "SubscriptionDelivered"]
    assert subs.items["audit"].cursor == 25 and subs.items["audit"].delivered == 7
    assert subs.items["audit"].spec.url == "http://other.test/"
    [dropped] = decide_and_apply(subs, ConfigureSubscriptions((), next_seq=90), 0.0, list)
    assert isinstance(dropped, sub.SubscriptionDeleted) and dropped.reason == "no longer in Server.xml"
    decide_and_apply(subs, CreateSubscription(BODY, next_seq=91), 0.0, list)
    with pytest.raises(Conflict):
        subs.decide(ConfigureSubscriptions((parse_spec(BODY),), next_seq=92), 0.0)


def test_cursor_only_moves_forward_and_states_are_journaled_on_change() -> None:
    subs = Subscriptions()
    decide_and_apply(subs, CreateSubscription(BODY, next_seq=5), 0.0, list)
    assert decide_and_apply(subs, Checkpoint("audit", 9, 3), 0.0, list) == [sub.SubscriptionDelivered("audit", 9, 3)]
    assert subs.decide(Checkpoint("audit", 8, 3), 0.0) == []
    assert subs.decide(Checkpoint("gone", 100, 1), 0.0) == []
    assert subs.decide(ReportState("audit", "delivering"), 0.0) == []
    [failing] = decide_and_apply(subs, ReportState("audit", "retrying", "HTTP 500"), 0.0, list)
    assert failing == sub.SubscriptionStateChanged("audit", "retrying", "HTTP 500")
    assert subs.items["audit"].state == "retrying"
