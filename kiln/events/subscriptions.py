"""Events of webhook subscriptions: a service asked (by the API or Server.xml) to be sent Kiln's journal.

The cursor is journaled as ``SubscriptionDelivered`` checkpoints (at most every few seconds while records
move, and at shutdown), so delivery resumes after a restart or a crash from the last checkpoint: records
after it may be sent twice, never skipped (at-least-once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln.events.base import Event, event


def subscription_entity(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


@event
@dataclass(frozen=True)
class SubscriptionCreated(Event):
    id: str
    url: str
    secret_key: str            # HMAC key of X-OME-Signature ("" = unsigned)
    from_seq: int              # the first journal record it is sent
    entity_prefix: str = ""    # entity filter, a prefix as ``kiln journal show --entity`` ("" = every entity)
    types: list[str] = field(default_factory=list)  # event types sent ([] = every type)
    source: str = "api"        # api | config (Server.xml: read-only through the API)
    created_time: float = 0.0
    declared_from: int = 0     # the ``from`` as asked (0: not given, started at the next record)

    @property
    def entity(self) -> str:
        return subscription_entity(self.id)


@event
@dataclass(frozen=True)
class SubscriptionDeleted(Event):
    id: str
    reason: str = "deleted"

    @property
    def entity(self) -> str:
        return subscription_entity(self.id)


@event
@dataclass(frozen=True)
class SubscriptionDelivered(Event):
    """A checkpoint: every record up to ``cursor`` was acknowledged (or skipped by the filter)."""

    id: str
    cursor: int
    delivered: int             # records acknowledged since the subscription was created

    @property
    def entity(self) -> str:
        return subscription_entity(self.id)


@event
@dataclass(frozen=True)
class SubscriptionStateChanged(Event):
    """Delivery began failing (``retrying``, with the error) or recovered (``delivering``)."""

    id: str
    state: str
    reason: str = ""

    @property
    def entity(self) -> str:
        return subscription_entity(self.id)
