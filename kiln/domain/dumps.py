"""HLS dumps of one app (rest-spec §12): start, stop, and forgetting stopped dumps.

A dump is keyed by its output stream and id. A stopped dump keeps its id taken until its output
stream ends (as in OME), then it is forgotten. The refusals are OME's 500 texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from kiln.domain.errors import Failed
from kiln.domain.task_keys import SpecKeys
from kiln.events.base import Event
from kiln.events.tasks import DumpFileWritten, DumpRemoved, DumpSpec, DumpStarted, DumpStopped


@dataclass
class DumpStatus(SpecKeys):
    """What the journal says of one dump; the read model holds these too."""

    spec: DumpSpec
    created_time: float = 0.0
    enabled: bool = True
    files_written: int = 0

    # the spec's fields, read where a dump is resumed or shown
    @property
    def stream(self) -> str:
        return self.spec.stream

    @property
    def output_stream(self) -> str:
        return self.spec.output_stream

    @property
    def output_path(self) -> str:
        return self.spec.output_path

    @property
    def playlists(self) -> list[str]:
        return self.spec.playlists

    @property
    def info_file(self) -> str:
        return self.spec.info_file

    @property
    def user_data(self) -> str:
        return self.spec.user_data

    @classmethod
    def started(cls, ev: DumpStarted) -> DumpStatus:
        return cls(ev.spec, ev.created_time)

    def fold(self, event: Event) -> None:
        if isinstance(event, DumpStopped):
            self.enabled = False
        elif isinstance(event, DumpFileWritten):
            self.files_written = max(self.files_written, event.seq + 1)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def restore(cls, saved: dict[str, Any]) -> DumpStatus:
        """From ``snapshot()``, or from the flat shape older snapshots hold."""
        saved = dict(saved)
        spec_names = {f.name for f in fields(DumpSpec)}
        spec = saved.pop("spec", None)
        if spec is None:
            spec = {k: saved.pop(k) for k in list(saved) if k in spec_names}
        return cls(DumpSpec(**spec), **saved)


@dataclass(frozen=True)
class StartDump:
    """``:startHlsDump`` once its output stream is known to be published as LL-HLS."""

    spec: DumpSpec


@dataclass(frozen=True)
class StopDumps:
    """``:stopHlsDump``: one id, or every running dump of the output stream (``id`` None)."""

    output_stream: str
    id: str | None


@dataclass(frozen=True)
class ForgetStoppedDumps:
    """These output streams ended: their stopped dumps free their ids."""

    output_streams: tuple[str, ...]


DumpCommand = StartDump | StopDumps | ForgetStoppedDumps


class AppDumps:
    def __init__(self, vhost: str, app: str, dumps: Iterable[DumpStatus] = ()) -> None:
        self.vhost = vhost
        self.app = app
        self.dumps: dict[tuple[str, str], DumpStatus] = {(d.output_stream, d.id): d for d in dumps}

    def on(self, output_stream: str) -> list[DumpStatus]:
        return [d for (output, _), d in self.dumps.items() if output == output_stream]

    def decide(self, command: DumpCommand, now: float) -> list[Event]:
        if isinstance(command, StartDump):
            return self._start(command, now)
        if isinstance(command, StopDumps):
            return self._stop(command)
        return [DumpRemoved(self.vhost, self.app, d.output_stream, d.id)
                for name in command.output_streams for d in self.on(name) if not d.enabled]

    def _start(self, c: StartDump, now: float) -> list[Event]:
        spec = c.spec
        where = f"[{self.vhost}/{self.app}/{spec.output_stream}]"
        existing = self.on(spec.output_stream)
        if any(d.id == spec.id for d in existing):
            raise Failed(f"Could not start dump: {where} (Duplicate ID)")
        if spec.info_file and any(d.info_file == spec.info_file for d in existing):
            raise Failed(f"Could not start dump: {where} (Duplicate info file)")
        return [DumpStarted.of(spec, now)]

    def _stop(self, c: StopDumps) -> list[Event]:
        chosen = [d for d in self.on(c.output_stream) if d.enabled and (c.id is None or d.id == c.id)]
        if c.id is not None and not chosen:
            raise Failed(f"Could not stop dump: [{self.vhost}/{self.app}/{c.output_stream}] "
                         "(Could not find dump info)")
        return [DumpStopped(self.vhost, self.app, c.output_stream, d.id) for d in chosen]

    def apply(self, event: Event) -> None:
        if isinstance(event, DumpStarted):
            self.dumps[(event.output_stream, event.id)] = DumpStatus.started(event)
        elif isinstance(event, DumpRemoved):
            self.dumps.pop((event.output_stream, event.id), None)
        elif isinstance(event, DumpStopped | DumpFileWritten):
            found = self.dumps.get((event.output_stream, event.id))
            if found is not None:
                found.fold(event)
