"""Commands the HTTP layer (and media code) send to actors. Bodies arrive as parsed JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CreateVhosts:
    items: Any


@dataclass(frozen=True)
class DeleteVhost:
    name: str


@dataclass(frozen=True)
class ReloadCertificates:
    vhost: str | None = None  # None = every vhost


@dataclass(frozen=True)
class CreateApps:
    items: Any


@dataclass(frozen=True)
class DeleteApp:
    name: str


@dataclass(frozen=True)
class Teardown:
    """Stop children and release media; sent by the parent before it stops this actor."""

    reason: str


@dataclass(frozen=True)
class PatchApp:
    body: Any


@dataclass(frozen=True)
class AddOutputProfiles:
    items: Any


@dataclass(frozen=True)
class ReplaceOutputProfile:
    name: str
    body: Any


@dataclass(frozen=True)
class DeleteOutputProfile:
    name: str


@dataclass(frozen=True)
class StartPush:
    body: Any


@dataclass(frozen=True)
class StopPush:
    body: Any


@dataclass(frozen=True)
class StartRecord:
    body: Any


@dataclass(frozen=True)
class StopRecord:
    body: Any
