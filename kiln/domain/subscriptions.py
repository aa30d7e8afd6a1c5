"""Webhook subscriptions: which services are sent the journal, from where, and how far they have got.

Created through the API (``POST /v1/subscriptions``) or declared in Server.xml
(``Managers/Subscriptions``; read-only through the API, brought in line with the file at each start).
The cursor only moves forward: a checkpoint behind the current one is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from kiln.domain.errors import Conflict, Invalid, NotFound, ReadOnly
from kiln.events import subscriptions as sub
from kiln.events.base import Event, registered_types
from kiln.events.codec import storable_int

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
BODY_KEYS = frozenset({"id", "url", "secretKey", "filter", "from"})
FILTER_KEYS = frozenset({"entity", "types"})
RETRYING, DELIVERING = "retrying", "delivering"


@dataclass(frozen=True)
class SubscriptionSpec:
    """What a subscription asks for, as validated."""

    id: str
    url: str
    secret_key: str = ""
    entity_prefix: str = ""
    types: tuple[str, ...] = ()
    from_seq: int | None = None  # None: from the next record


@dataclass(frozen=True)
class SubscriptionState:
    spec: SubscriptionSpec
    from_seq: int
    source: str
    cursor: int                 # every record up to here was acknowledged or filtered out
    delivered: int = 0
    state: str = DELIVERING
    reason: str = ""


@dataclass(frozen=True)
class CreateSubscription:
    body: Any
    next_seq: int               # the journal's next sequence number, where a subscription without ``from`` starts


@dataclass(frozen=True)
class DeleteSubscription:
    id: str


@dataclass(frozen=True)
class ConfigureSubscriptions:
    """Server.xml's subscriptions at this start (already validated into specs)."""

    specs: tuple[SubscriptionSpec, ...]
    next_seq: int


@dataclass(frozen=True)
class Checkpoint:
    id: str
    cursor: int
    delivered: int


@dataclass(frozen=True)
class ReportState:
    id: str
    state: str
    reason: str = ""


Command = CreateSubscription | DeleteSubscription | ConfigureSubscriptions | Checkpoint | ReportState


def parse_spec(body: Any) -> SubscriptionSpec:
    """A subscription's JSON (``{"id","url","secretKey","filter":{"entity","types"},"from"}``) or Invalid."""
    if not isinstance(body, dict):
        raise Invalid("A subscription must be a JSON object")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise Invalid(f"Unknown subscription key: {unknown[0]}")
    ident = body.get("id")
    if not isinstance(ident, str) or not ID_PATTERN.match(ident):
        raise Invalid("Subscription id is required: 1 to 64 letters, digits, '.', '_' or '-'")
    url = body.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("Subscription url is required: an http:// or https:// URL")
    secret = body.get("secretKey", "")
    if not isinstance(secret, str):
        raise Invalid("Subscription secretKey must be a string")
    filt = body.get("filter") or {}
    if not isinstance(filt, dict) or set(filt) - FILTER_KEYS:
        raise Invalid("Subscription filter must be an object with 'entity' (a prefix) and 'types' (a list)")
    entity = filt.get("entity", "")
    types = filt.get("types", [])
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    if not isinstance(entity, str) or not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise Invalid("Subscription filter must be an object with 'entity' (a prefix) and 'types' (a list)")
    unknown = sorted(set(types) - set(registered_types()))
    if unknown:
        raise Invalid(f"Subscription filter names an unknown event type: {unknown[0][:60]}")
    start = body.get("from")
    if start is not None and (not storable_int(start) or start < 1):
        raise Invalid("Subscription from must be a journal sequence number (an integer >= 1)")
    return SubscriptionSpec(ident, str(url), secret, entity, tuple(types), start)


@dataclass
class Subscriptions:
    items: dict[str, SubscriptionState] = field(default_factory=dict)

    @classmethod
    def starting_with(cls, states: list[SubscriptionState] | tuple[SubscriptionState, ...]) -> Subscriptions:
        return cls({s.spec.id: s for s in states})

    def decide(self, command: Command, now: float) -> list[Event]:
        if isinstance(command, CreateSubscription):
            spec = parse_spec(command.body)
            if spec.id in self.items:
                raise Conflict(f"Could not create the subscription: [{spec.id}] already exists")
            start = spec.from_seq if spec.from_seq is not None else command.next_seq
            return [_created(spec, start, "api", now)]
        if isinstance(command, DeleteSubscription):
            found = self._need(command.id)
            if found.source == "config":
                raise ReadOnly(f"The subscription [{command.id}] is configured in Server.xml and cannot be deleted")
            return [sub.SubscriptionDeleted(command.id)]
        if isinstance(command, ConfigureSubscriptions):
            return self._configure(command, now)
        if isinstance(command, Checkpoint):
            known = self.items.get(command.id)
            if known is None or command.cursor <= known.cursor:
                return []
            return [sub.SubscriptionDelivered(command.id, command.cursor, command.delivered)]
        reported = self.items.get(command.id)
        if reported is None or reported.state == command.state:
            return []
        return [sub.SubscriptionStateChanged(command.id, command.state, command.reason)]

    def _configure(self, command: ConfigureSubscriptions, now: float) -> list[Event]:
        """Server.xml wins over what an earlier start declared: new ones are created, changed ones
        re-created (keeping their cursor unless ``from`` changed), dropped ones deleted. An API-made
        subscription with a configured id is an error: the file cannot silently take it over."""
        events: list[Event] = []
        wanted = {spec.id: spec for spec in command.specs}
        for spec in command.specs:
            old = self.items.get(spec.id)
            if old is not None and old.source != "config":
                raise Conflict(f"Server.xml declares the subscription [{spec.id}], which the API created")
            if old is not None and old.spec == spec:
                continue
            if old is not None:
                events.append(sub.SubscriptionDeleted(spec.id, "changed in Server.xml"))
            start = spec.from_seq if spec.from_seq is not None else (
                old.cursor + 1 if old is not None else command.next_seq)
            events.append(_created(spec, start, "config", now))
            if old is not None and spec.from_seq == old.spec.from_seq:  # keep its place and count
                events.append(sub.SubscriptionDelivered(spec.id, old.cursor, old.delivered))
        for ident, old in self.items.items():
            if old.source == "config" and ident not in wanted:
                events.append(sub.SubscriptionDeleted(ident, "no longer in Server.xml"))
        return events

    def _need(self, ident: str) -> SubscriptionState:
        found = self.items.get(ident)
        if found is None:
            raise NotFound(f"Could not find the subscription: [{ident}]")
        return found

    def apply(self, event: Event) -> None:
        if isinstance(event, sub.SubscriptionCreated):
            spec = SubscriptionSpec(event.id, event.url, event.secret_key, event.entity_prefix, tuple(event.types),
                                    event.declared_from or None)
            self.items[event.id] = SubscriptionState(spec, event.from_seq, event.source, event.from_seq - 1)
        elif isinstance(event, sub.SubscriptionDeleted):
            self.items.pop(event.id, None)
        elif isinstance(event, sub.SubscriptionDelivered) and event.id in self.items:
            found = self.items[event.id]
            self.items[event.id] = replace(found, cursor=max(found.cursor, event.cursor), delivered=event.delivered)
        elif isinstance(event, sub.SubscriptionStateChanged) and event.id in self.items:
            self.items[event.id] = replace(self.items[event.id], state=event.state, reason=event.reason)


def _created(spec: SubscriptionSpec, from_seq: int, source: str, now: float) -> sub.SubscriptionCreated:
    return sub.SubscriptionCreated(spec.id, spec.url, spec.secret_key, from_seq, spec.entity_prefix,
                                   list(spec.types), source, now, spec.from_seq or 0)
