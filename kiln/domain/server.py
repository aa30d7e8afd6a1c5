"""The server's set of virtual hosts: which exist, which come from Server.xml (read-only).

POST vhosts creates a vhost and the apps given inside it; DELETE removes an API-created vhost.
Configuration-file vhosts are part of the starting state and can never be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.config.hosts import host_names, shadowing
from kiln.domain.app_config import apps_of_vhost, valid_vhost
from kiln.domain.app_tasks import AppTasks
from kiln.domain.errors import Conflict, NotFound, ReadOnly
from kiln.events import catalog as ce
from kiln.events import streams as se
from kiln.events.base import Event


@dataclass(frozen=True)
class AppState:
    """An app as its vhost starts with it: its OME JSON, whether Server.xml defines it, and what
    recovery found for it (tasks, pull definitions to reconnect). An app created later starts empty."""

    name: str
    config: dict[str, Any]
    read_only: bool = False
    tasks: AppTasks = AppTasks()
    pulls: tuple[se.PullDefined, ...] = ()
    schedules: tuple[se.ScheduleDefined, ...] = ()  # scheduled channels (their schedules as last defined)
    multiplexes: tuple[se.MultiplexDefined, ...] = ()  # multiplex channels
    dynamic: bool = False  # made from its vhost's ``*`` template for a pulled stream


@dataclass(frozen=True)
class VhostState:
    """A vhost as the server starts with it (config without ``applications``) and its apps; ``template``: its
    Server.xml ``<Application>`` named ``*`` (OME's template for dynamic apps), which is not an app."""

    name: str
    config: dict[str, Any]
    read_only: bool = False
    apps: tuple[AppState, ...] = ()
    template: dict[str, Any] | None = None


TEMPLATE_NAME = "*"  # OME: an <Application> of this name is its vhost's template for dynamic apps


@dataclass(frozen=True)
class CreateVhost:
    """One element of POST vhosts, as sent."""

    body: Any


@dataclass(frozen=True)
class DeleteVhost:
    name: str


def vhost_not_found(name: str) -> NotFound:
    return NotFound(f"Could not find the virtual host: [{name}]")


def vhost_read_only(name: str) -> ReadOnly:
    return ReadOnly(f"The VirtualHost is read-only: [{name}]")


@dataclass
class Server:
    """The vhost set. ``vhosts`` maps a name to its state (apps are each vhost's own business)."""

    vhosts: dict[str, VhostState] = field(default_factory=dict)

    @classmethod
    def starting_with(cls, vhosts: list[VhostState]) -> Server:
        return cls({v.name: VhostState(v.name, v.config, v.read_only) for v in vhosts})

    def decide(self, command: CreateVhost | DeleteVhost, now: float) -> list[Event]:
        if isinstance(command, CreateVhost):
            return self._create(command, now)
        return self._delete(command)

    def _create(self, command: CreateVhost, now: float) -> list[Event]:
        config = valid_vhost(command.body)
        name = str(config["name"])
        if name in self.vhosts:
            raise Conflict(f"The virtual host already exists: [{name}]")
        body = {k: v for k, v in config.items() if k != "applications"}
        events: list[Event] = [ce.VhostCreated(name, body, now)]
        apps = apps_of_vhost(config)
        events += [ce.AppCreated(name, str(app["name"]), app, now) for app in apps if app["name"] != TEMPLATE_NAME]
        # an application named ``*`` is the vhost's template for dynamic apps (OME's CreateVirtualHost), no app
        events += [ce.VhostTemplateSet(name, app) for app in apps if app["name"] == TEMPLATE_NAME][:1]
        return events

    def _delete(self, command: DeleteVhost) -> list[Event]:
        found = self.vhost(command.name)
        if found.read_only:
            raise vhost_read_only(command.name)
        return [ce.VhostDeleted(command.name)]

    def vhost(self, name: str) -> VhostState:
        found = self.vhosts.get(name)
        if found is None:
            raise vhost_not_found(name)
        return found

    def shadowed(self, name: str) -> dict[str, str]:
        """``{host name: earlier vhost}`` when every host name of vhost ``name`` is matched first by a
        vhost before it (the first match wins, so it receives no stream by host name); else empty."""
        earlier: list[tuple[str, list[str]]] = []
        for vhost in self.vhosts.values():
            if vhost.name == name:
                break
            earlier.append((vhost.name, host_names(vhost.config)))
        return shadowing(earlier, host_names(self.vhost(name).config))

    def apply(self, event: Event) -> None:
        if isinstance(event, ce.VhostCreated):
            self.vhosts[event.name] = VhostState(event.name, event.config)
        elif isinstance(event, ce.VhostDeleted):
            self.vhosts.pop(event.name, None)


def created_vhost(events: list[Event]) -> VhostState:
    """The vhost (with its apps) that CreateVhost's events describe, to start its actor with."""
    vhost = next(ev for ev in events if isinstance(ev, ce.VhostCreated))
    apps = tuple(AppState(ev.name, ev.config) for ev in events if isinstance(ev, ce.AppCreated))
    template = next((ev.config for ev in events if isinstance(ev, ce.VhostTemplateSet)), None)
    return VhostState(vhost.name, vhost.config, False, apps, template)
