"""Events of push, record and HLS-dump tasks, and the specs their Created/Started events carry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from kiln.events.base import Event, event

_SPEC_FIELDS: dict[type, tuple[str, ...]] = {}


def spec_values(source: object, spec: type) -> dict[str, Any]:
    """The values of ``spec``'s fields read from ``source`` (field names cached per spec class: replay
    builds a spec for every Created event)."""
    names = _SPEC_FIELDS.get(spec)
    if names is None:
        names = _SPEC_FIELDS[spec] = tuple(f.name for f in fields(spec))
    return {name: getattr(source, name) for name in names}


SpecT = TypeVar("SpecT")


def spec_of(source: Event, spec: type[SpecT]) -> SpecT:
    """``spec(**spec_values(source, spec))`` for the event that carries the spec's fields, without the frozen
    dataclass ``__init__`` (one field at a time through ``object.__setattr__``): replay builds a spec for
    every Created event, and this was the largest part of applying one."""
    copier = _SPEC_COPIERS.get(spec)
    if copier is None:
        copier = _SPEC_COPIERS[spec] = _copier(spec)
    made: SpecT = copier(source.__dict__)
    return made


def _copier(spec: type) -> Callable[[dict[str, Any]], Any]:
    """``lambda values: <a spec whose __dict__ holds values[name] for each of its fields>``, compiled once per
    spec class (a store per field with constant keys, as ``base._fill_from_values``: cheaper than a dict
    comprehension and an update). Field names are identifiers."""
    names = tuple(f.name for f in fields(spec))
    if not all(name.isidentifier() for name in names):
        raise TypeError(f"{spec.__name__} has a field that is not an identifier")
    stores = "".join(f"    d[{name!r}] = values[{name!r}]\n" for name in names)
    source = f"def copy(values):\n    made = _new(spec)\n    d = made.__dict__\n{stores}    return made\n"
    scope: dict[str, Any] = {"_new": object.__new__, "spec": spec}
    exec(source, scope)  # noqa: S102 - source built from the spec's own field names, checked above
    copy: Callable[[dict[str, Any]], Any] = scope["copy"]
    return copy


# spec class -> what copies its fields from an event's __dict__ (spec_of)
_SPEC_COPIERS: dict[type, Callable[[dict[str, Any]], Any]] = {}


def push_entity(vhost: str, app: str, task_id: str) -> str:
    return f"push:{vhost}/{app}/{task_id}"


def record_entity(vhost: str, app: str, task_id: str) -> str:
    return f"record:{vhost}/{app}/{task_id}"


def dump_entity(vhost: str, app: str, output_stream: str, dump_id: str) -> str:
    return f"dump:{vhost}/{app}/{output_stream}/{dump_id}"


@dataclass(frozen=True)
class PushSpec:
    """What ``:startPush`` asked for, declared once: carried by PushCreated, held by the push
    aggregate and by the read model."""

    vhost: str
    app: str
    id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    protocol: str
    url: str
    stream_key: str

    @property
    def destination(self) -> str:
        return f"{self.url}/{self.stream_key}" if self.stream_key else self.url


@event
@dataclass(frozen=True)
class PushCreated(PushSpec, Event):
    created_time: float

    @property
    def spec(self) -> PushSpec:
        return spec_of(self, PushSpec)

    @property
    def entity(self) -> str:
        return push_entity(self.vhost, self.app, self.id)

    @classmethod
    def of(cls, spec: PushSpec, created_time: float) -> PushCreated:
        return cls(**spec_values(spec, PushSpec), created_time=created_time)


@event
@dataclass(frozen=True)
class PushStateChanged(Event):
    """A push session changed state; ``reason`` says why (the last error is shown to users)."""

    vhost: str
    app: str
    id: str
    state: str
    reason: str = ""
    start_time: float | None = None

    @property
    def entity(self) -> str:
        return push_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class PushSessionEnded(Event):
    """The stream went away: the session's counters are added to the totals, sequence + 1."""

    vhost: str
    app: str
    id: str
    sent_bytes: int
    sent_time_ms: int
    reason: str = ""

    @property
    def entity(self) -> str:
        return push_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class PushProgress(Event):
    """A checkpoint of the current session's counters so far (absolute, not a delta), journaled
    every few seconds while bytes move so that a crash loses at most those seconds. The session's
    ``PushSessionEnded`` carries the whole session again: a checkpoint is never added twice."""

    vhost: str
    app: str
    id: str
    sent_bytes: int
    sent_time_ms: int

    @property
    def entity(self) -> str:
        return push_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class PushRemoved(Event):
    vhost: str
    app: str
    id: str
    reason: str = "stopPush"

    @property
    def entity(self) -> str:
        return push_entity(self.vhost, self.app, self.id)


@dataclass(frozen=True)
class RecordSpec:
    """What ``:startRecord`` asked for, declared once: carried by RecordCreated, held by the record
    aggregate and by the read model."""

    vhost: str
    app: str
    id: str
    transaction_id: str
    stream_name: str
    variant_names: list[str]
    track_ids: list[int]
    file_path: str
    info_path: str
    interval: int
    schedule: str
    segmentation_rule: str
    metadata: str


@event
@dataclass(frozen=True)
class RecordCreated(RecordSpec, Event):
    created_time: float

    @property
    def spec(self) -> RecordSpec:
        return spec_of(self, RecordSpec)

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)

    @classmethod
    def of(cls, spec: RecordSpec, created_time: float) -> RecordCreated:
        return cls(**spec_values(spec, RecordSpec), created_time=created_time)


@event
@dataclass(frozen=True)
class RecordStateChanged(Event):
    vhost: str
    app: str
    id: str
    state: str
    reason: str = ""
    start_time: float | None = None
    output_file_path: str = ""
    output_info_path: str = ""

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class RecordFileFinished(Event):
    """A recorded file was closed and renamed to its final name (crash recovery included)."""

    vhost: str
    app: str
    id: str
    sequence: int
    file_path: str
    info_path: str
    record_bytes: int
    record_time_ms: int
    start_time: float
    finish_time: float
    last_sequence: bool
    recovered: bool = False

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class RecordProgress(Event):
    """A checkpoint of the file in flight (``sequence``): its counters so far (absolute, not a
    delta), journaled every few seconds while bytes move. Its ``RecordFileFinished`` counts the file
    once, never less than this checkpoint."""

    vhost: str
    app: str
    id: str
    sequence: int
    record_bytes: int
    record_time_ms: int

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class RecordFileLost(Event):
    """Recovery could not finish the file a crash left in flight: what its last checkpoint counted
    goes to the totals (it was recorded and shown), and the next file reuses its sequence."""

    vhost: str
    app: str
    id: str
    sequence: int
    record_bytes: int
    record_time_ms: int
    reason: str = ""

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)


@event
@dataclass(frozen=True)
class RecordRemoved(Event):
    vhost: str
    app: str
    id: str
    reason: str = "stopRecord"

    @property
    def entity(self) -> str:
        return record_entity(self.vhost, self.app, self.id)


@dataclass(frozen=True)
class DumpSpec:
    """What ``:startHlsDump`` asked for, declared once: carried by DumpStarted, held by the app's
    dumps aggregate and by the read model."""

    vhost: str
    app: str
    stream: str
    output_stream: str
    id: str
    output_path: str
    playlists: list[str] = field(default_factory=list)
    info_file: str = ""
    user_data: str = ""


@event
@dataclass(frozen=True)
class DumpStarted(DumpSpec, Event):
    created_time: float = 0.0

    @property
    def spec(self) -> DumpSpec:
        return spec_of(self, DumpSpec)

    @property
    def entity(self) -> str:
        return dump_entity(self.vhost, self.app, self.output_stream, self.id)

    @classmethod
    def of(cls, spec: DumpSpec, created_time: float) -> DumpStarted:
        return cls(**spec_values(spec, DumpSpec), created_time=created_time)


@event
@dataclass(frozen=True)
class DumpStopped(Event):
    vhost: str
    app: str
    output_stream: str
    id: str
    reason: str = "stopHlsDump"

    @property
    def entity(self) -> str:
        return dump_entity(self.vhost, self.app, self.output_stream, self.id)


@event
@dataclass(frozen=True)
class DumpFileWritten(Event):
    """One file written by a dump (for resuming into the same directory after a restart)."""

    vhost: str
    app: str
    output_stream: str
    id: str
    path: str
    seq: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def entity(self) -> str:
        return dump_entity(self.vhost, self.app, self.output_stream, self.id)


@event
@dataclass(frozen=True)
class DumpRemoved(Event):
    """A stopped dump is forgotten (its output stream ended, so its id is free again)."""

    vhost: str
    app: str
    output_stream: str
    id: str

    @property
    def entity(self) -> str:
        return dump_entity(self.vhost, self.app, self.output_stream, self.id)
