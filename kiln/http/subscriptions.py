"""Kiln's own webhook subscription routes: ``/v1/subscriptions`` (GET list, POST create) and
``/v1/subscriptions/ID`` (GET with delivery state, DELETE).

A subscription is sent every journal record (or those its filter keeps) from its start, POSTed to its
URL and signed like OME's admission webhooks. Reads come from the read model (durable part) and the
live delivery states (retrying now, last error); creating and deleting go through the actor.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.subscription_commands import NewSubscription, RemoveSubscription
from kiln.errors import ApiError
from kiln.events.redact import MASK, redact_url
from kiln.http.envelope import ok
from kiln.http.router import Call, Router
from kiln.metrics.deliveries import DeliveryState
from kiln.projections.subscriptions import SubscriptionView
from kiln.timefmt import format_time

ID = r"(?P<id>[^/:]*)"


class SubscriptionReads(Protocol):
    def get(self, ident: str) -> SubscriptionView | None: ...
    def all(self) -> list[SubscriptionView]: ...


class LiveDeliveries(Protocol):
    def get(self, ident: str) -> DeliveryState | None: ...


def _time(value: float) -> str | None:
    return format_time(value) if value else None


def subscription_json(view: SubscriptionView, live: DeliveryState | None, journal_seq: int) -> dict[str, Any]:
    """The subscription as set (secret masked, URL password masked) and its delivery: the journaled
    checkpoint, and, while it runs, what delivery knows now."""
    state, spec = view.state, view.state.spec
    acked = max(state.cursor, live.acked_seq) if live is not None else state.cursor
    delivery: dict[str, Any] = {
        "state": live.state if live is not None else "stopped",
        "cursor": acked,
        "checkpoint": state.cursor,
        "journalSeq": journal_seq,
        "behind": max(0, journal_seq - acked),
        "delivered": max(state.delivered, live.delivered) if live is not None else state.delivered,
    }
    if live is not None:
        delivery.update(posts=live.posts, failures=live.failures, attempt=live.attempt,
                        lastError=live.last_error or None, lastErrorTime=_time(live.last_error_time),
                        lastDeliveredTime=_time(live.last_delivered_time), nextRetryTime=_time(live.next_retry_time))
    out: dict[str, Any] = {
        "id": spec.id,
        "url": redact_url(spec.url),
        "filter": {"entity": spec.entity_prefix, "types": list(spec.types)},
        "from": state.from_seq,
        "signed": bool(spec.secret_key),
        "isConfig": state.source == "config",
        "createdTime": format_time(view.created_time),
        "delivery": delivery,
    }
    if spec.secret_key:
        out["secretKey"] = MASK
    return out


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    def reads() -> tuple[SubscriptionReads, LiveDeliveries | None, int]:
        found: SubscriptionReads | None = getattr(ctx, "subscriptions", None)
        if found is None:
            raise ApiError(404, "Controller not found")
        feed = getattr(ctx, "feed", None)
        return found, getattr(ctx, "deliveries", None), feed.last_seq if feed is not None else 0

    def actor() -> Any:
        ref = ctx.directory.get(("subscriptions",)) if hasattr(ctx.directory, "get") else None
        if ref is None:
            raise ApiError(404, "Controller not found")
        return ref

    def render(view: SubscriptionView, live: LiveDeliveries | None, seq: int) -> dict[str, Any]:
        return subscription_json(view, live.get(view.id) if live is not None else None, seq)

    async def list_all(call: Call) -> Response:
        found, live, seq = reads()
        return ok([render(v, live, seq) for v in found.all()])

    async def create(call: Call) -> Response:
        reads()
        ident = await ask(actor(), NewSubscription(call.body))
        found, live, seq = reads()
        view = found.get(ident)
        if view is None:  # deleted by a request that came right after: say so, never a half answer
            raise ApiError(404, f"Could not find the subscription: [{ident}]")
        return ok(render(view, live, seq))

    async def one(call: Call) -> Response:
        found, live, seq = reads()
        view = found.get(call.params["id"])
        if view is None:
            raise ApiError(404, f"Could not find the subscription: [{call.params['id']}]")
        return ok(render(view, live, seq))

    async def delete(call: Call) -> Response:
        reads()
        await ask(actor(), RemoveSubscription(call.params["id"]))
        return ok()

    router.add("GET", r"/v1/subscriptions", list_all)
    router.add("POST", r"/v1/subscriptions", create)
    router.add("GET", rf"/v1/subscriptions/{ID}", one)
    router.add("DELETE", rf"/v1/subscriptions/{ID}", delete)
