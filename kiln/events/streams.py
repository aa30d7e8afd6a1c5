"""Events of streams: pull definitions and live stream lifecycles.

Live streams are journaled for auditing; replay never resurrects them. A stream that was live when
Kiln stopped is recorded as ended with reason ``server restart`` at the next startup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.events.base import Event, event


def stream_entity(vhost: str, app: str, stream: str) -> str:
    return f"stream:{vhost}/{app}/{stream}"


def pull_entity(vhost: str, app: str, stream: str) -> str:
    return f"pull:{vhost}/{app}/{stream}"


@event
@dataclass(frozen=True)
class PullDefined(Event):
    """POST streams: a pull definition (kept across restarts when persistent)."""

    vhost: str
    app: str
    name: str
    urls: list[str]
    properties: dict[str, Any]
    persistent: bool
    created_time: float
    cause: str = ""       # why it was pulled: the API, an Origins rule, an OriginMapStore lookup
    source_url: str = ""  # the URL its first connection came from

    @property
    def entity(self) -> str:
        return pull_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class PullSourceChanged(Event):
    """A defined pull now streams from another of its URLs: the one before failed (failover), or the first answers
    again (an Origin's Failback). ``cause`` is why the stream is pulled, as in PullDefined."""

    vhost: str
    app: str
    name: str
    source_url: str
    cause: str

    @property
    def entity(self) -> str:
        return pull_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class PullRemoved(Event):
    vhost: str
    app: str
    name: str
    reason: str

    @property
    def entity(self) -> str:
        return pull_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class PullFailed(Event):
    """A pull that never connected gave up (POST streams answered 502): ``reason`` says what the
    sources answered (refused, no answer, 401 …), which the 502's OME text does not."""

    vhost: str
    app: str
    name: str
    reason: str
    cause: str = ""

    @property
    def entity(self) -> str:
        return pull_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class StreamStarted(Event):
    vhost: str
    app: str
    name: str
    instance: str
    source_type: str
    source_url: str
    created_time: float

    @property
    def entity(self) -> str:
        return stream_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class StreamTracksDescribed(Event):
    vhost: str
    app: str
    name: str
    instance: str
    tracks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def entity(self) -> str:
        return stream_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class StreamEnded(Event):
    vhost: str
    app: str
    name: str
    instance: str
    reason: str
    bytes_in: int = 0

    @property
    def entity(self) -> str:
        return stream_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class StreamEventSent(Event):
    """An accepted sendEvent(s) call: what was injected into which stream (audit)."""

    vhost: str
    app: str
    name: str
    event_format: str
    event_type: str
    events: list[dict[str, Any]]
    urgent: bool = False

    @property
    def entity(self) -> str:
        return stream_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class HlsLiveConcluded(Event):
    """concludeHlsLive: the instance's LL-HLS playlists were ended (``#EXT-X-ENDLIST``) on request."""

    vhost: str
    app: str
    name: str
    instance: str

    @property
    def entity(self) -> str:
        return stream_entity(self.vhost, self.app, self.name)


def schedule_entity(vhost: str, app: str, stream: str) -> str:
    return f"schedule:{vhost}/{app}/{stream}"


@event
@dataclass(frozen=True)
class ScheduleDefined(Event):
    """A scheduled channel created or its schedule replaced (POST/PATCH scheduledChannels, or a ``.sch``
    file found at start or written while Kiln runs): ``schedule`` is ``kiln.events.schedules.Schedule.to_stored()``."""

    vhost: str
    app: str
    name: str
    schedule: dict[str, Any]
    created_time: float
    source: str  # "api" or "file"

    @property
    def entity(self) -> str:
        return schedule_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class ScheduleRemoved(Event):
    vhost: str
    app: str
    name: str
    reason: str

    @property
    def entity(self) -> str:
        return schedule_entity(self.vhost, self.app, self.name)


def multiplex_entity(vhost: str, app: str, stream: str) -> str:
    return f"multiplex:{vhost}/{app}/{stream}"


@event
@dataclass(frozen=True)
class MultiplexDefined(Event):
    """A multiplex channel created or replaced (POST multiplexChannels, a ``.mux`` file found at start or written
    while Kiln runs): ``multiplex`` is ``kiln.events.multiplex.Multiplex.to_stored()``."""

    vhost: str
    app: str
    name: str
    multiplex: dict[str, Any]
    created_time: float
    source: str  # "api" or "file"

    @property
    def entity(self) -> str:
        return multiplex_entity(self.vhost, self.app, self.name)


@event
@dataclass(frozen=True)
class MultiplexRemoved(Event):
    vhost: str
    app: str
    name: str
    reason: str

    @property
    def entity(self) -> str:
        return multiplex_entity(self.vhost, self.app, self.name)
