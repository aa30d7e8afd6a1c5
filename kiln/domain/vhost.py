"""A virtual host's set of applications: POST apps creates them, DELETE removes them.

A vhost from Server.xml is read-only: its apps can be neither created nor deleted through the API.
Its ``<Application>`` named ``*`` is not an app but OME's template for dynamic apps: a pull on demand
for an app the vhost does not have makes a copy of it named after that app (``CreateDynamicApp``),
and DynamicAppRemoval removes such an app once it has had no stream for a while (``RemoveDynamicApp``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kiln.domain.app_config import valid_app, valid_new_app
from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.domain.server import TEMPLATE_NAME, AppState, vhost_read_only
from kiln.events import catalog as ce
from kiln.events.base import Event


@dataclass(frozen=True)
class CreateApp:
    """One element of POST apps, as sent."""

    body: Any


@dataclass(frozen=True)
class DeleteApp:
    name: str


@dataclass(frozen=True)
class CreateDynamicApp:
    """A pull on demand of ``stream`` in app ``name``, which this vhost does not have (OME's
    ``RequestPullStreamWithUrls``): a copy of the ``*`` template named ``name``."""

    name: str
    stream: str


@dataclass(frozen=True)
class RemoveDynamicApp:
    """DynamicAppRemoval: a dynamic app that has had no stream for its idle time."""

    name: str


MAX_DYNAMIC_NAME = 255


def no_template(vhost: str, app: str, stream: str) -> NotFound:
    return NotFound(f"Could not find application template for the stream: [{vhost}/{app}/{stream}]")


def dynamic_name_refusal(name: str) -> str | None:
    """Why a requested app name cannot name a dynamic app (a player chose it), or None."""
    if not name or name == TEMPLATE_NAME:
        return "empty or the template's name"
    if len(name) > MAX_DYNAMIC_NAME:
        return f"longer than {MAX_DYNAMIC_NAME} characters"
    if "/" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "a slash or a control character"
    return None


def app_not_found(vhost: str, app: str) -> NotFound:
    return NotFound(f"Could not find the application: [{vhost}/{app}]")


VhostCommand = CreateApp | DeleteApp | CreateDynamicApp | RemoveDynamicApp


@dataclass
class Vhost:
    name: str
    read_only: bool = False
    apps: dict[str, AppState] = field(default_factory=dict)
    template: dict[str, Any] | None = None  # the ``*`` application of Server.xml

    @classmethod
    def starting_with(cls, name: str, read_only: bool, apps: tuple[AppState, ...] | list[AppState],
                      template: dict[str, Any] | None = None) -> Vhost:
        return cls(name, read_only, {a.name: a for a in apps}, template)

    def decide(self, command: VhostCommand, now: float) -> list[Event]:
        if isinstance(command, CreateApp):
            return self._create(command, now)
        if isinstance(command, CreateDynamicApp):
            return self._create_dynamic(command, now)
        if isinstance(command, RemoveDynamicApp):
            return self._remove_dynamic(command)
        return self._delete(command)

    def _create_dynamic(self, command: CreateDynamicApp, now: float) -> list[Event]:
        """OME copies the template whole and renames it; the vhost's read-only state does not matter (the
        template is its configuration too). An app of that name already made (a concurrent first viewer's
        pull won): a Conflict, which the caller takes as "the app is there"."""
        if command.name in self.apps:
            raise Conflict(f"Could not create the application: [{self.name}/{command.name}] already exists")
        if self.template is None:
            raise no_template(self.name, command.name, command.stream)
        refusal = dynamic_name_refusal(command.name)
        if refusal is not None:
            raise Invalid(f"Could not create dynamic application [{self.name}/{command.name}]: the name is {refusal}")
        config = valid_app({**copy.deepcopy(self.template), "name": command.name})
        return [ce.AppCreated(self.name, command.name, config, now, dynamic=True)]

    def _remove_dynamic(self, command: RemoveDynamicApp) -> list[Event]:
        found = self.apps.get(command.name)
        if found is None:
            raise app_not_found(self.name, command.name)
        if not found.dynamic:
            raise Invalid(f"The application is not dynamic: [{self.name}/{command.name}]")
        return [ce.AppDeleted(self.name, command.name)]

    def dynamic_apps(self) -> list[str]:
        return [name for name, app in self.apps.items() if app.dynamic]

    def writable(self) -> None:
        """Raise unless the API may change this vhost's apps."""
        if self.read_only:
            raise vhost_read_only(self.name)

    def _create(self, command: CreateApp, now: float) -> list[Event]:
        self.writable()
        config = valid_new_app(command.body)
        name = str(config["name"])
        if name in self.apps:
            raise Conflict(f"Could not create the application: [{self.name}/{name}] already exists")
        return [ce.AppCreated(self.name, name, config, now)]

    def _delete(self, command: DeleteApp) -> list[Event]:
        if command.name not in self.apps:
            raise app_not_found(self.name, command.name)
        self.writable()
        return [ce.AppDeleted(self.name, command.name)]

    def apply(self, event: Event) -> None:
        if isinstance(event, ce.AppCreated) and event.vhost == self.name:
            self.apps[event.name] = AppState(event.name, event.config, read_only=event.dynamic and self.read_only,
                                             dynamic=event.dynamic)
        elif isinstance(event, ce.AppDeleted) and event.vhost == self.name:
            self.apps.pop(event.name, None)
