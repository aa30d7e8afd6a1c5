"""An application's configuration and output profiles (rest-spec §6.4, §7).

PATCH merges into the OME JSON; output profiles are added, replaced whole (name kept) or deleted.
Every change is checked against the schema as a whole, so the app never holds a configuration
OME would refuse. An app of a Server.xml vhost is read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kiln.domain.app_config import (
    checked_profile,
    checked_profile_patch,
    merge_patch,
    profiles_of,
    require_array,
    require_object,
    valid_app,
    valid_app_after_profile_change,
    with_profile_deleted,
    with_profile_replaced,
    with_profiles_added,
)
from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.domain.server import vhost_read_only
from kiln.events import catalog as ce
from kiln.events.base import Event

# keys PATCH app may not carry, in the order OME checks them
_FORBIDDEN_PATCH_KEYS = ("name", "dynamic", "outputProfiles")


@dataclass(frozen=True)
class PatchApp:
    body: Any


@dataclass(frozen=True)
class AddOutputProfile:
    """One element of POST outputProfiles, its shape already checked (see ``profile_commands``)."""

    profile: dict[str, Any]


@dataclass(frozen=True)
class ReplaceOutputProfile:
    name: str
    body: Any


@dataclass(frozen=True)
class DeleteOutputProfile:
    name: str


AppCommand = PatchApp | AddOutputProfile | ReplaceOutputProfile | DeleteOutputProfile


def profile_commands(items: Any) -> list[AddOutputProfile]:
    """POST outputProfiles checks the array and every element's shape before deciding any element:
    one malformed element refuses the whole request."""
    return [AddOutputProfile(checked_profile(item)) for item in require_array(items)]


def one_addition(events: list[Event]) -> list[Event]:
    """The profiles a POST added, decided one by one, journaled as OME's request was: one
    ``OutputProfilesAdded`` in request order (applying it equals applying each in turn)."""
    added = [ev for ev in events if isinstance(ev, ce.OutputProfilesAdded)]
    if len(added) < 2 or len(added) != len(events):
        return events
    first = added[0]
    return [ce.OutputProfilesAdded(first.vhost, first.app, [p for ev in added for p in ev.profiles])]


@dataclass
class App:
    vhost: str
    name: str
    config: dict[str, Any]
    read_only: bool = False

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.name}"

    def trial(self) -> App:
        """A copy to decide a whole request on before any of it counts (configs are never mutated)."""
        return dataclasses.replace(self)

    def profile(self, name: str) -> dict[str, Any]:
        for profile in profiles_of(self.config):
            if profile.get("name") == name:
                return profile
        raise NotFound(f"Could not find the output profile: [{self.where}/{name}]")

    def writable(self) -> None:
        if self.read_only:
            raise vhost_read_only(self.vhost)

    def decide(self, command: AppCommand, now: float) -> list[Event]:
        self.writable()
        if isinstance(command, PatchApp):
            return self._patch(command)
        if isinstance(command, AddOutputProfile):
            return self._add_profile(command)
        if isinstance(command, ReplaceOutputProfile):
            return self._replace_profile(command)
        self.profile(command.name)
        return [ce.OutputProfileDeleted(self.vhost, self.name, command.name)]

    def _patch(self, command: PatchApp) -> list[Event]:
        body = require_object(command.body)
        for key in _FORBIDDEN_PATCH_KEYS:
            if key in body:
                raise Invalid(f"Cannot change [{key}] using this API")
        config = valid_app(merge_patch(self.config, body))
        return [ce.AppPatched(self.vhost, self.name, config, body)]

    def _add_profile(self, command: AddOutputProfile) -> list[Event]:
        name = command.profile["name"]
        if any(p.get("name") == name for p in profiles_of(self.config)):
            raise Conflict(f'The output profile "{name}" already exists')
        valid_app_after_profile_change(with_profiles_added(self.config, [command.profile]))
        return [ce.OutputProfilesAdded(self.vhost, self.name, [command.profile])]

    def _replace_profile(self, command: ReplaceOutputProfile) -> list[Event]:
        require_object(command.body)
        self.profile(command.name)
        profile = {"name": command.name, **checked_profile_patch(command.body)}
        valid_app_after_profile_change(with_profile_replaced(self.config, profile))
        return [ce.OutputProfileReplaced(self.vhost, self.name, profile)]

    def apply(self, event: Event) -> None:
        if isinstance(event, ce.AppCreated | ce.AppPatched):
            self.config = event.config
        elif isinstance(event, ce.OutputProfilesAdded):
            self.config = with_profiles_added(self.config, event.profiles)
        elif isinstance(event, ce.OutputProfileReplaced):
            self.config = with_profile_replaced(self.config, event.profile)
        elif isinstance(event, ce.OutputProfileDeleted):
            self.config = with_profile_deleted(self.config, event.name)
