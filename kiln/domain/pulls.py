"""An app's pull definitions: defined on a pull's first connection, removed when it gives up.

A definition is journaled only once the source answered, and kept when the server stops, so every
defined pull reconnects at the next start (a non-persistent one still gives up by its own retry and
unused-stream rules). A pull that never connects defines nothing; its failure is journaled with
the sources' answers (the API's 502 keeps OME's text, which names only the request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.events.base import Event
from kiln.events.streams import PullDefined, PullFailed, PullRemoved, PullSourceChanged

SERVER_STOPPING = "server stopping"


@dataclass(frozen=True)
class PullConnected:
    name: str
    urls: tuple[str, ...]
    properties: dict[str, Any] = field(default_factory=dict, hash=False)
    persistent: bool = False
    url: str = ""    # the URL this connection came from
    cause: str = ""  # why the stream is pulled (API, Origins rule, OriginMapStore)


@dataclass(frozen=True)
class PullGaveUp:
    """The pull's worker stopped for good (retries exhausted, unused, deleted, or server stopping)."""

    name: str
    reason: str
    cause: str = ""


class AppPulls:
    def __init__(self, vhost: str, app: str) -> None:
        self.vhost = vhost
        self.app = app
        self.defined: dict[str, PullDefined] = {}
        self.sources: dict[str, str] = {}  # name -> the URL it streams from now (journaled)

    def decide(self, command: PullConnected | PullGaveUp, now: float) -> list[Event]:
        if isinstance(command, PullConnected):
            if command.name in self.defined:  # a reconnection, or a pull resumed after a restart
                if not command.url or self.sources.get(command.name) == command.url:
                    return []
                return [PullSourceChanged(self.vhost, self.app, command.name, command.url, command.cause)]
            return [PullDefined(self.vhost, self.app, command.name, list(command.urls), dict(command.properties),
                                command.persistent, now, command.cause, command.url)]
        if command.reason == SERVER_STOPPING:
            return []
        if command.name not in self.defined:
            return [PullFailed(self.vhost, self.app, command.name, command.reason, command.cause)]
        return [PullRemoved(self.vhost, self.app, command.name, command.reason)]

    def apply(self, event: Event) -> None:
        if not isinstance(event, PullDefined | PullRemoved | PullSourceChanged) \
                or (event.vhost, event.app) != (self.vhost, self.app):
            return
        if isinstance(event, PullDefined):
            self.defined[event.name] = event
            self.sources[event.name] = event.source_url
        elif isinstance(event, PullSourceChanged):
            self.sources[event.name] = event.source_url
        else:
            self.defined.pop(event.name, None)
            self.sources.pop(event.name, None)

    def to_resume(self) -> list[PullDefined]:
        """The definitions whose pulls reconnect when the app's supervisor starts."""
        return list(self.defined.values())
