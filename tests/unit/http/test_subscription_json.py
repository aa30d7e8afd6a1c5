"""What ``GET /v1/subscriptions/ID`` shows: the subscription as set, secrets masked, and its delivery, from
the journaled checkpoint or, while it runs, from what delivery knows now."""

from __future__ import annotations

from kiln.domain.subscriptions import SubscriptionSpec, SubscriptionState
from kiln.http.subscriptions import subscription_json
from kiln.metrics.deliveries import DeliveryState
from kiln.projections.subscriptions import SubscriptionView

SPEC = SubscriptionSpec("audit", "http://u:pw@hooks.test/k?token=abc", "s3cret", "push:", ("PushCreated",), None)
VIEW = SubscriptionView(SubscriptionState(SPEC, 10, "api", cursor=20, delivered=4), created_time=0.0)


def test_stopped_subscription_shows_its_checkpoint() -> None:
    out = subscription_json(VIEW, None, journal_seq=50)
    assert out["url"] == "http://u:***@hooks.test/k?token=***" and out["secretKey"] == "***" and out["signed"]
    assert out["filter"] == {"entity": "push:", "types": ["PushCreated"]} and out["from"] == 10
    assert out["delivery"] == {"state": "stopped", "cursor": 20, "checkpoint": 20, "journalSeq": 50, "behind": 30,
                               "delivered": 4}
    assert "s3cret" not in str(out) and "pw" not in out["url"]


def test_running_subscription_shows_live_progress_and_the_last_error() -> None:
    live = DeliveryState(state="retrying", acked_seq=30, delivered=9, posts=3, failures=2, attempt=2,
                         last_error="HTTP 503", last_error_time=1.0, next_retry_time=3.0)
    delivery = subscription_json(VIEW, live, journal_seq=50)["delivery"]
    assert (delivery["state"], delivery["cursor"], delivery["checkpoint"], delivery["behind"]) == \
        ("retrying", 30, 20, 20)
    assert (delivery["delivered"], delivery["failures"], delivery["attempt"], delivery["lastError"]) == \
        (9, 2, 2, "HTTP 503")
    assert delivery["nextRetryTime"] is not None and delivery["lastDeliveredTime"] is None
