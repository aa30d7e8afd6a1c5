"""Events of the server process itself (audit of starts, stops and recoveries)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiln.events.base import Event, event


@event
@dataclass(frozen=True)
class ServerStarted(Event):
    version: str
    pid: int
    config: str
    recovered_events: int = 0
    snapshot_seq: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def entity(self) -> str:
        return "server"


@event
@dataclass(frozen=True)
class ServerStopped(Event):
    reason: str

    @property
    def entity(self) -> str:
        return "server"
