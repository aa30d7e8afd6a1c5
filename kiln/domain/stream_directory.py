"""An app's stream directory: which names are live or being pulled, and who may take a name.

OME's rules: the provider a publisher comes through must be enabled for the app; a second
publisher of a live name is refused while ``blockDuplicateStreamName`` is on (the default), else
it replaces the first; a pull may not take a name that is live or already being pulled, and only
RTSP pulls through an enabled ``rtspPull`` provider and OVT pulls through an enabled ``ovt``
provider are tried. Live names are folded from the
journal's stream events, and freed as soon as the supervisor ends an instance. Names being
pulled are reservations of running pull workers: they die with the process, so they are held
here (``reserve_pull``/``release_pull``) and never journaled.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.domain.errors import Conflict, NotFound, Unreachable
from kiln.domain.settings import AppSettings
from kiln.events.base import Event
from kiln.events.streams import StreamEnded, StreamStarted

PULL_PROVIDERS = {"rtsp": "rtspPull", "rtspc": "rtspPull", "ovt": "ovt"}  # URL scheme -> app provider


@dataclass(frozen=True)
class OpenStream:
    """A publisher (or a pull that connected) asks for a live stream under ``name``."""

    name: str
    provider: str
    source_type: str
    source_url: str
    instance: str


@dataclass(frozen=True)
class DeleteStream:
    name: str


@dataclass(frozen=True)
class RequestPull:
    """POST streams: pull ``urls`` under ``name``; ``request_url`` is named in OME's 502 text."""

    name: str
    urls: tuple[str, ...]
    request_url: str


def stream_not_found_text(vhost: str, app: str, name: str) -> str:
    return f"Could not find the stream: [{vhost}/#{vhost}#{app}/{name}]"


class StreamDirectory:
    def __init__(self, vhost: str, app: str, settings: AppSettings) -> None:
        self.vhost = vhost
        self.app = app
        self.settings = settings  # replaced when the app is reconfigured
        self.live: dict[str, str] = {}  # name -> instance
        self.pulling: set[str] = set()

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.app}"

    def instance_of(self, name: str) -> str | None:
        return self.live.get(name)

    def decide(self, command: OpenStream | DeleteStream | RequestPull, now: float) -> list[Event]:
        if isinstance(command, OpenStream):
            return self._open(command, now)
        if isinstance(command, DeleteStream):
            if command.name not in self.live:
                raise NotFound(stream_not_found_text(self.vhost, self.app, command.name))
            return []  # the instance journals its own end
        return self._pull(command)

    def _open(self, cmd: OpenStream, now: float) -> list[Event]:
        if not self.settings.provider_enabled(cmd.provider):
            raise NotFound(f"Provider {cmd.provider} is not enabled for the application: [{self.where}]")
        if cmd.name in self.live and self.settings.block_duplicate_stream_name:
            raise Conflict(f"Stream already exists: [{self.where}/{cmd.name}]")
        return [StreamStarted(self.vhost, self.app, cmd.name, cmd.instance, cmd.source_type, cmd.source_url, now)]

    def _pull(self, cmd: RequestPull) -> list[Event]:
        if cmd.name in self.live or cmd.name in self.pulling:
            raise Conflict("Stream already exists")
        first = cmd.urls[0] if cmd.urls else ""
        scheme = first.split("://", 1)[0].lower() if "://" in first else ""
        if scheme not in PULL_PROVIDERS or not self.settings.provider_enabled(PULL_PROVIDERS[scheme]):
            raise Unreachable(f"Could not pull the stream : {cmd.request_url}")
        return []

    def reserve_pull(self, name: str) -> None:
        """A pull worker now runs under ``name`` (after ``RequestPull`` was accepted, or at a restart)."""
        self.pulling.add(name)

    def release_pull(self, name: str) -> None:
        self.pulling.discard(name)

    def release(self, name: str, instance: str) -> None:
        """The supervisor is ending this instance: its name is free at once (the instance journals
        its own StreamEnded, exactly once, a moment later)."""
        if self.live.get(name) == instance:
            del self.live[name]

    def apply(self, event: Event) -> None:
        if isinstance(event, StreamStarted):
            self.live[event.name] = event.instance
        elif isinstance(event, StreamEnded) and self.live.get(event.name) == event.instance:
            del self.live[event.name]
