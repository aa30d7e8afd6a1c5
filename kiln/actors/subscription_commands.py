"""Commands HTTP sends to the subscriptions actor (the domain's own commands need the journal position,
which only the actor has)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NewSubscription:
    body: Any


@dataclass(frozen=True)
class RemoveSubscription:
    id: str
