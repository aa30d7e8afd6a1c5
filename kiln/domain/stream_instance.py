"""One live stream instance: described once, concluded at most once, ended exactly once.

The source going away, a DELETE, a replacing publisher and a server shutdown may all race to end
an instance; whichever comes first is journaled and the rest decide nothing. An instance that
ended cannot be concluded (its LL-HLS playlists are already closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiln.domain.errors import Failed
from kiln.events.base import Event
from kiln.events.streams import HlsLiveConcluded, StreamEnded, StreamStarted, StreamTracksDescribed


@dataclass(frozen=True)
class DescribeTracks:
    tracks: list[dict[str, Any]] = field(default_factory=list, hash=False)


@dataclass(frozen=True)
class ConcludeLive:
    """concludeHlsLive: end the instance's LL-HLS playlists while the stream goes on."""


@dataclass(frozen=True)
class EndInstance:
    reason: str
    bytes_in: int = 0


def conclude_failed_text(vhost: str, app: str, name: str) -> str:
    return f"Internal Server Error - Could not inject ConcludeLive event: [{vhost}/{app}/{name}]"


class StreamInstance:
    def __init__(self, started: StreamStarted) -> None:
        self.started = started
        self.described = False
        self.concluded = False
        self.ended = False

    def decide(self, command: DescribeTracks | ConcludeLive | EndInstance, now: float) -> list[Event]:
        s = self.started
        if self.ended:
            if isinstance(command, ConcludeLive):
                raise Failed(conclude_failed_text(s.vhost, s.app, s.name))
            return []
        if isinstance(command, DescribeTracks):
            if self.described:
                return []
            return [StreamTracksDescribed(s.vhost, s.app, s.name, s.instance, list(command.tracks))]
        if isinstance(command, ConcludeLive):
            return [] if self.concluded else [HlsLiveConcluded(s.vhost, s.app, s.name, s.instance)]
        return [StreamEnded(s.vhost, s.app, s.name, s.instance, command.reason, command.bytes_in)]

    def apply(self, event: Event) -> None:
        if getattr(event, "instance", None) != self.started.instance:
            return
        if isinstance(event, StreamTracksDescribed):
            self.described = True
        elif isinstance(event, HlsLiveConcluded):
            self.concluded = True
        elif isinstance(event, StreamEnded):
            self.ended = True
