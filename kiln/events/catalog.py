"""Events of the configuration catalog: virtual hosts, applications, output profiles, pulls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.events.base import UPCASTERS, Event, event


def vhost_entity(vhost: str) -> str:
    return f"vhost:{vhost}"


def app_entity(vhost: str, app: str) -> str:
    return f"app:{vhost}/{app}"


@event
@dataclass(frozen=True)
class VhostCreated(Event):
    """An API-created virtual host; ``config`` is its OME JSON without applications."""

    name: str
    config: dict[str, Any]
    created_time: float

    @property
    def entity(self) -> str:
        return vhost_entity(self.name)


@event
@dataclass(frozen=True)
class VhostDeleted(Event):
    name: str

    @property
    def entity(self) -> str:
        return vhost_entity(self.name)


@event
@dataclass(frozen=True)
class AppCreated(Event):
    """An API-created application; ``config`` is its full OME JSON (defaults filled in). ``dynamic``: made from
    its vhost's ``*`` template for a pulled stream (v2; a v1 record is an API-made app, upcast with False)."""

    VERSION = 2

    vhost: str
    name: str
    config: dict[str, Any]
    created_time: float
    dynamic: bool = False

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.name)


@event
@dataclass(frozen=True)
class VhostTemplateSet(Event):
    """POST vhosts with an application named ``*``: the new vhost's template for dynamic apps (as OME's
    ``CreateApplicationTemplate``), which is not an app."""

    vhost: str
    config: dict[str, Any]

    @property
    def entity(self) -> str:
        return vhost_entity(self.vhost)


@event
@dataclass(frozen=True)
class AppPatched(Event):
    """PATCH app: ``config`` is the complete configuration after the merge."""

    vhost: str
    name: str
    config: dict[str, Any]
    patch: dict[str, Any] = field(default_factory=dict)

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.name)


@event
@dataclass(frozen=True)
class AppDeleted(Event):
    vhost: str
    name: str

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.name)


@event
@dataclass(frozen=True)
class OutputProfilesAdded(Event):
    """POST outputProfiles: the accepted profiles, appended in request order."""

    vhost: str
    app: str
    profiles: list[dict[str, Any]]

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.app)


@event
@dataclass(frozen=True)
class OutputProfileReplaced(Event):
    """PATCH outputProfile: a full replacement with ``name`` kept."""

    vhost: str
    app: str
    profile: dict[str, Any]

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.app)


@event
@dataclass(frozen=True)
class OutputProfileDeleted(Event):
    vhost: str
    app: str
    name: str

    @property
    def entity(self) -> str:
        return app_entity(self.vhost, self.app)


def _app_created_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Every app a v1 record made was made through the API (no template existed): not dynamic."""
    return {**payload, "dynamic": False}


UPCASTERS[("AppCreated", 1)] = _app_created_v1_to_v2
