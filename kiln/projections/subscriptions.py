"""Webhook subscriptions as the API shows them: spec, source, and the journaled cursor, fed by events.

It folds events with the domain aggregate's own ``apply`` (one definition of what an event does) and
adds what only a reader needs (creation time). The live part of delivery (retrying now, last error,
next attempt) is runtime state in ``kiln.metrics.deliveries``; this read model holds what survives a
restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from kiln.domain.subscriptions import Subscriptions, SubscriptionSpec, SubscriptionState
from kiln.events import subscriptions as sub
from kiln.events.base import Event


@dataclass(frozen=True)
class SubscriptionView:
    state: SubscriptionState
    created_time: float

    @property
    def id(self) -> str:
        return self.state.spec.id


_TYPES = frozenset(cls.TYPE for cls in (sub.SubscriptionCreated, sub.SubscriptionDeleted, sub.SubscriptionDelivered,
                                        sub.SubscriptionStateChanged))


class SubscriptionsProjection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fold = Subscriptions()
        self._created: dict[str, float] = {}

    def apply(self, ev: Event) -> None:
        if not isinstance(ev, sub.SubscriptionCreated | sub.SubscriptionDeleted | sub.SubscriptionDelivered
                          | sub.SubscriptionStateChanged):
            return
        with self._lock:
            self._fold.apply(ev)
            if isinstance(ev, sub.SubscriptionCreated):
                self._created[ev.id] = ev.created_time
            elif isinstance(ev, sub.SubscriptionDeleted):
                self._created.pop(ev.id, None)

    def replay_handler(self, type_name: str) -> Callable[[Event], None] | None:
        """``apply`` for the subscription events; None for every other type (replay skips them here)."""
        return self.apply if type_name in _TYPES else None

    def get(self, ident: str) -> SubscriptionView | None:
        with self._lock:
            found = self._fold.items.get(ident)
            return SubscriptionView(found, self._created.get(ident, 0.0)) if found is not None else None

    def all(self) -> list[SubscriptionView]:
        with self._lock:
            return [SubscriptionView(self._fold.items[k], self._created.get(k, 0.0)) for k in sorted(self._fold.items)]

    def recovered(self) -> list[SubscriptionState]:
        """What the subscriptions actor starts from (read once at startup)."""
        return [view.state for view in self.all()]

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        return [{**asdict(v.state), "created_time": v.created_time} for v in self.all()]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        with self._lock:
            for item in saved:
                raw = dict(item)
                created = float(raw.pop("created_time", 0.0))
                spec_raw = raw.pop("spec")
                spec = SubscriptionSpec(**{**spec_raw, "types": tuple(spec_raw.get("types") or ())})
                self._fold.items[spec.id] = replace(SubscriptionState(spec=spec, **raw))
                self._created[spec.id] = created
