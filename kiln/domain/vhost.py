"""A virtual host's set of applications: POST apps creates them, DELETE removes them.

A vhost from Server.xml is read-only: its apps can be neither created nor deleted through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.domain.app_config import valid_new_app
from kiln.domain.errors import Conflict, NotFound
from kiln.domain.server import AppState, vhost_read_only
from kiln.events import catalog as ce
from kiln.events.base import Event


@dataclass(frozen=True)
class CreateApp:
    """One element of POST apps, as sent."""

    body: Any


@dataclass(frozen=True)
class DeleteApp:
    name: str


def app_not_found(vhost: str, app: str) -> NotFound:
    return NotFound(f"Could not find the application: [{vhost}/{app}]")


@dataclass
class Vhost:
    name: str
    read_only: bool = False
    apps: dict[str, AppState] = field(default_factory=dict)

    @classmethod
    def starting_with(cls, name: str, read_only: bool, apps: tuple[AppState, ...] | list[AppState]) -> Vhost:
        return cls(name, read_only, {a.name: a for a in apps})

    def decide(self, command: CreateApp | DeleteApp, now: float) -> list[Event]:
        if isinstance(command, CreateApp):
            return self._create(command, now)
        return self._delete(command)

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
            self.apps[event.name] = AppState(event.name, event.config)
        elif isinstance(event, ce.AppDeleted) and event.vhost == self.name:
            self.apps.pop(event.name, None)
