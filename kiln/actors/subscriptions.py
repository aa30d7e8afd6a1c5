"""The subscriptions actor: owns the webhook subscriptions aggregate (``kiln.domain.subscriptions``),
journals what it decides, then starts or stops their deliveries. Delivery reports its progress back
here as commands, so checkpoints and state changes are journaled by the owner like every other event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.catalog_deps import EventSink
from kiln.actors.subscription_commands import NewSubscription, RemoveSubscription
from kiln.domain import subscriptions as domain
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.errors import NotJournaled
from kiln.eventlog import Encoded
from kiln.events import subscriptions as sub
from kiln.timefmt import now

log = logging.getLogger(__name__)


class DeliveryControl(Protocol):
    """What the actor asks of delivery (``kiln.delivery.webhooks.Deliveries``)."""

    def report_to(self, progress: Any) -> None: ...
    def start(self, target: Any) -> None: ...
    def stop(self, ident: str) -> None: ...
    def close(self) -> dict[str, Any]: ...


TargetOf = Callable[[domain.SubscriptionState], Any]  # what ``DeliveryControl.start`` takes for a subscription


class _Reports:
    """Delivery's reports, turned into commands to the actor (never a blocking call from the loop)."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def checkpoint(self, ident: str, cursor: int, delivered: int) -> None:
        tell_quietly(self.ref, domain.Checkpoint(ident, cursor, delivered))

    def state_changed(self, ident: str, state: str, reason: str) -> None:
        tell_quietly(self.ref, domain.ReportState(ident, state, reason))


class SubscriptionsActor(CommandActor):
    def __init__(self, events: EventSink, deliveries: DeliveryControl, target_of: TargetOf,
                 next_seq: Callable[[], int], recovered: list[domain.SubscriptionState],
                 configured: tuple[domain.SubscriptionSpec, ...]) -> None:
        """Runs in the creator's thread: Server.xml's subscriptions are journaled (or refused, failing the
        start) before the first request."""
        super().__init__()
        self.events = events
        self.deliveries = deliveries
        self.target_of = target_of
        self.next_seq = next_seq
        self.subs = domain.Subscriptions.starting_with(recovered)
        changes = decide_and_apply(self.subs, domain.ConfigureSubscriptions(configured, next_seq()), now(),
                                   events.encode)
        if changes.records:
            self.events.emit(changes).result(30)
        deliveries.report_to(_Reports(self.actor_ref))
        for state in self.subs.items.values():
            deliveries.start(target_of(state))

    def on_stop(self) -> None:
        """A last checkpoint for each delivery, so a clean restart sends nothing twice."""
        final: list[Encoded] = []
        try:
            for ident, state in self.deliveries.close().items():
                final.append(decide_and_apply(self.subs, domain.Checkpoint(ident, state.acked_seq, state.delivered),
                                              now(), self.events.encode))
        except NotJournaled as exc:
            log.warning("subscription checkpoints not journaled at shutdown error=%s", exc)
        if final:
            try:
                self.events.emit(Encoded.joined(final)).result(10)
            except Exception as exc:  # noqa: BLE001 - shutting down: the next start resends from the last one
                log.warning("subscription checkpoints not journaled at shutdown error=%s", exc)

    def handle_NewSubscription(self, cmd: NewSubscription) -> Outcome:
        events = decide_and_apply(self.subs, domain.CreateSubscription(cmd.body, self.next_seq()), now(),
                                  self.events.encode)
        durable = self.events.emit(events)
        created = next(ev for ev in events.events if isinstance(ev, sub.SubscriptionCreated))
        self.deliveries.start(self.target_of(self.subs.items[created.id]))
        log.info("subscription created id=%s from_seq=%d", created.id, created.from_seq)
        return Outcome(created.id, [durable])

    def handle_RemoveSubscription(self, cmd: RemoveSubscription) -> Outcome:
        durable = self.events.emit(decide_and_apply(self.subs, domain.DeleteSubscription(cmd.id), now(),
                                                    self.events.encode))
        self.deliveries.stop(cmd.id)
        log.info("subscription deleted id=%s", cmd.id)
        return Outcome(None, [durable])

    def handle_Checkpoint(self, cmd: domain.Checkpoint) -> Outcome:
        events = decide_and_apply(self.subs, cmd, now(), self.events.encode)
        return Outcome(None, [self.events.emit(events)] if events.records else [])

    def handle_ReportState(self, cmd: domain.ReportState) -> Outcome:
        events = decide_and_apply(self.subs, cmd, now(), self.events.encode)
        return Outcome(None, [self.events.emit(events)] if events.records else [])
