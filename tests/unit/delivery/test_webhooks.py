"""What a webhook delivery sends and when it gives up waiting: pure parts (the socket parts are e2e)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from kiln.admission.webhooks import signature
from kiln.delivery.webhooks import BACKOFF_S, Target, backoff, body_of
from kiln.journal.records import Record

TARGET = Target("audit", "http://hooks.test/", "s3cret", "stream:", ("StreamCreated",), 0, 0)


def rec(entity: str, type_: str) -> Record:
    return Record(1, 0.0, entity, type_, 1, {})


def test_filter_and_own_bookkeeping_are_not_sent() -> None:
    assert TARGET.wants(rec("stream:default/app/a", "StreamCreated"))
    assert not TARGET.wants(rec("stream:default/app/a", "StreamEnded"))
    assert not TARGET.wants(rec("push:default/app/a", "StreamCreated"))
    every = Target("audit", "http://hooks.test/", "", "", (), 0, 0)
    assert every.wants(rec("subscription:other", "SubscriptionStateChanged"))
    assert not every.wants(rec("subscription:other", "SubscriptionDelivered"))
    assert not every.wants(rec("subscription:audit", "SubscriptionStateChanged"))


def test_backoff_grows_then_stays_at_its_ceiling() -> None:
    assert [backoff(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert BACKOFF_S[-1] == 10.0


def test_body_is_signed_as_ome_signs_admission_webhooks() -> None:
    body = body_of(TARGET, [{"seq": 7, "type": "StreamCreated"}])
    assert json.loads(body) == {"subscription": "audit", "events": [{"seq": 7, "type": "StreamCreated"}]}
    expected = base64.urlsafe_b64encode(hmac.new(b"s3cret", body, hashlib.sha1).digest()).rstrip(b"=").decode()
    assert signature("s3cret", body) == expected


def test_a_delivery_knows_the_secrets_held_when_it_starts() -> None:
    from kiln.delivery.webhooks import Deliveries, _Run
    from kiln.metrics.deliveries import DeliveryStates

    deliveries = Deliveries(feed=None, states=DeliveryStates(),  # type: ignore[arg-type]
                            secrets=lambda: [{"stream_key": "k3y"}, {"llhls": {"passphrase": "pp-1"}}])
    try:
        run = _Run(deliveries, TARGET)
        assert run.redactor.payload({"reason": "rtmp://h/app/k3y refused, pp-1 too"}) == \
            {"reason": "rtmp://h/app/*** refused, *** too"}
    finally:
        deliveries.close()
