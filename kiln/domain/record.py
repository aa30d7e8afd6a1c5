"""Record tasks (rest-spec §10, media-spec §8): the app's set of them, and one task's recording.

``RecordTasks`` decides ``:startRecord`` / ``:stopRecord`` for one app. ``RecordTask`` decides what
its recording session reports mean: states ready (no stream), recording, error (and ``stopping``
in the answer to ``:stopRecord``). Every finished file is journaled and moves the sequence past
it. A write error is not retried while that stream instance lives (as in OME); the next instance
tries again. While a file is written its counters are checkpointed (``RecordProgress``) at most
every CHECKPOINT_EVERY_S; the totals shown never fall below the checkpoint of the file in flight,
and a file recovered after a crash counts at least what its checkpoint said.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from kiln.domain.effects import Effect
from kiln.domain.record_request import file_app_missing, parse_start_record, parse_stop_record
from kiln.domain.settings import AppSettings
from kiln.domain.task_keys import SpecKeys
from kiln.events.base import Event
from kiln.events.tasks import (
    RecordCreated,
    RecordFileFinished,
    RecordFileLost,
    RecordProgress,
    RecordRemoved,
    RecordSpec,
    RecordStateChanged,
)

CHECKPOINT_EVERY_S = 2.0  # at most one RecordProgress per task per this many seconds


# -- the app's record tasks --
@dataclass(frozen=True)
class CreateRecord:
    body: Any
    transaction_id: str


@dataclass(frozen=True)
class RemoveRecord:
    body: Any


class RecordTasks:
    """Which record task ids an app has, and whether its file publisher is on."""

    def __init__(self, vhost: str, app: str, settings: AppSettings, ids: Iterable[str] = ()) -> None:
        self.vhost = vhost
        self.app = app
        self.settings = settings
        self.ids: set[str] = set(ids)

    def decide(self, command: CreateRecord | RemoveRecord, now: float) -> list[Event]:
        if not self.settings.publisher_enabled("file"):
            raise file_app_missing(self.vhost, self.app)
        if isinstance(command, CreateRecord):
            spec = parse_start_record(command.body, self.vhost, self.app, command.transaction_id, self.ids)
            return [RecordCreated.of(spec, now)]
        return [RecordRemoved(self.vhost, self.app, parse_stop_record(command.body, self.ids))]

    def apply(self, event: Event) -> None:
        if isinstance(event, RecordCreated):
            self.ids.add(event.id)
        elif isinstance(event, RecordRemoved):
            self.ids.discard(event.id)


# -- one task --
@dataclass
class RecordStatus(SpecKeys):
    """What the journal says of one record task; the read model holds these too."""

    spec: RecordSpec
    created_time: float
    state: str = "ready"
    reason: str = ""
    start_time: float = 0.0
    finish_time: float = 0.0
    sequence: int = 0
    total_record_bytes: int = 0  # of the finished files
    total_record_time_ms: int = 0
    output_file_path: str = ""
    output_info_path: str = ""
    file_sequence: int = 0  # the file in flight's last checkpoint (not yet in the totals)
    file_record_bytes: int = 0
    file_record_time_ms: int = 0

    @classmethod
    def created(cls, event: RecordCreated) -> RecordStatus:
        return cls(event.spec, event.created_time)

    def fold(self, event: Event) -> None:
        if isinstance(event, RecordStateChanged):
            self.state, self.reason = event.state, event.reason
            if event.start_time is not None:
                self.start_time = event.start_time
            if event.output_file_path:
                self.output_file_path = event.output_file_path
            if event.output_info_path:
                self.output_info_path = event.output_info_path
        elif isinstance(event, RecordProgress):
            if event.sequence != self.file_sequence or not self.file_record_bytes:
                self.file_sequence, self.file_record_bytes, self.file_record_time_ms = event.sequence, 0, 0
            self.file_record_bytes = max(self.file_record_bytes, event.record_bytes)
            self.file_record_time_ms = max(self.file_record_time_ms, event.record_time_ms)
        elif isinstance(event, RecordFileFinished):
            checkpointed = self.file_record_bytes > 0 and self.file_sequence == event.sequence
            self.sequence = max(self.sequence, event.sequence + 1)
            # a file recovered after a crash may hold less than was counted: never below its checkpoint
            self.total_record_bytes += max(event.record_bytes, self.file_record_bytes if checkpointed else 0)
            self.total_record_time_ms += max(event.record_time_ms, self.file_record_time_ms if checkpointed else 0)
            self.finish_time = event.finish_time
            if checkpointed:
                self.file_record_bytes = self.file_record_time_ms = 0
        elif isinstance(event, RecordFileLost):
            self.total_record_bytes += event.record_bytes
            self.total_record_time_ms += event.record_time_ms
            if self.file_sequence == event.sequence:
                self.file_record_bytes = self.file_record_time_ms = 0

    def shown_totals(self, live_bytes: int, live_time_ms: int,
                     finished: tuple[int, int, int] | None = None) -> tuple[int, int]:
        """The totals the API shows: finished files plus the file in flight, counted from its live
        counters or its last checkpoint, whichever is further. ``finished`` is the last file the
        recording session closed, (sequence, bytes, ms): while its ``RecordFileFinished`` is still on
        its way to the journal it is counted here as that event will count it, so a total never goes
        back when a file is split off."""
        total_bytes, total_ms = self.total_record_bytes, self.total_record_time_ms
        in_flight = self.file_record_bytes > 0 and self.file_sequence == self.sequence
        if finished is not None and finished[0] >= self.sequence:
            sequence, done_bytes, done_ms = finished
            checkpointed = self.file_record_bytes > 0 and self.file_sequence == sequence
            total_bytes += max(done_bytes, self.file_record_bytes if checkpointed else 0)
            total_ms += max(done_ms, self.file_record_time_ms if checkpointed else 0)
            in_flight = False  # the checkpoint was the finished file's
        return (total_bytes + max(live_bytes, self.file_record_bytes if in_flight else 0),
                total_ms + max(live_time_ms, self.file_record_time_ms if in_flight else 0))

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def restore(cls, saved: dict[str, Any]) -> RecordStatus:
        """From ``snapshot()``, or from the flat shape older snapshots hold."""
        saved = dict(saved)
        spec_names = {f.name for f in fields(RecordSpec)}
        spec = saved.pop("spec", None)
        if spec is None:
            spec = {k: saved.pop(k) for k in list(saved) if k in spec_names}
        return cls(RecordSpec(**spec), **saved)


def lost_after_restart(status: RecordStatus, sequence: int, problem: str) -> list[Event]:
    """Recovery: the file in flight (``sequence``) could not be finished. Its checkpoint goes to
    the totals, so they do not fall and the next file (same sequence) starts its own count."""
    if status.file_sequence != sequence or not status.file_record_bytes:
        return []
    s = status.spec
    return [RecordFileLost(s.vhost, s.app, s.id, sequence, status.file_record_bytes, status.file_record_time_ms,
                           problem)]


@dataclass(frozen=True)
class RetryBlocked(Effect):
    """Recording failed on this stream instance: do not start again until another instance
    (``None``: nothing blocked)."""

    instance: str | None


@dataclass(frozen=True)
class Checkpointed(Effect):
    """When the last ``RecordProgress`` was decided (not journaled: a restart checkpoints afresh)."""

    at: float


@dataclass(frozen=True)
class CountersSampled:
    """The file in flight (``sequence``) and its counters as they are now."""

    sequence: int
    record_bytes: int
    record_time_ms: int


@dataclass(frozen=True)
class Recording:
    """The session prepared its files and started; ``skipped`` says which tracks it left out."""

    skipped: tuple[str, ...]
    output_file_path: str
    output_info_path: str


@dataclass(frozen=True)
class RecordingFailed:
    """Preparing or writing failed (the OS reason) on this stream instance."""

    reason: str
    instance: str | None


@dataclass(frozen=True)
class FileDone:
    """A file was closed and renamed to its final name."""

    sequence: int
    file_path: str
    info_path: str
    record_bytes: int
    record_time_ms: int
    start_time: float
    finish_time: float
    last_sequence: bool


@dataclass(frozen=True)
class OutputDetached:
    reason: str


RecordTaskCommand = Recording | RecordingFailed | FileDone | OutputDetached | CountersSampled


class RecordTask:
    def __init__(self, status: RecordStatus) -> None:
        self.status = status
        self.blocked_instance: str | None = None
        self.checkpointed_at: float | None = None

    def may_record(self, instance: str) -> bool:
        return self.blocked_instance is None or self.blocked_instance != instance

    def stopping_view(self) -> RecordStatus:
        """``:stopRecord`` answers the task as it was, ``stopping``, without output paths."""
        return replace(self.status, state="stopping", output_file_path="", output_info_path="")

    def decide(self, command: RecordTaskCommand, now: float) -> list[Event]:
        s = self.status.spec
        if isinstance(command, Recording):
            return [RecordStateChanged(s.vhost, s.app, s.id, "recording", "; ".join(command.skipped), now,
                                       command.output_file_path, command.output_info_path)]
        if isinstance(command, RecordingFailed):
            return [RecordStateChanged(s.vhost, s.app, s.id, "error", command.reason),
                    RetryBlocked(command.instance)]
        if isinstance(command, CountersSampled):
            return self._checkpoint(command, now)
        if isinstance(command, FileDone):
            f = command
            return [RecordFileFinished(s.vhost, s.app, s.id, f.sequence, f.file_path, f.info_path, f.record_bytes,
                                       f.record_time_ms, f.start_time, f.finish_time, f.last_sequence)]
        return [RecordStateChanged(s.vhost, s.app, s.id, "ready", command.reason), RetryBlocked(None)]

    def _checkpoint(self, command: CountersSampled, now: float) -> list[Event]:
        """Due when the file in flight grew past its last checkpoint and CHECKPOINT_EVERY_S passed."""
        status = self.status
        known = status.file_record_bytes if status.file_sequence == command.sequence else 0
        if command.sequence < status.sequence or command.record_bytes <= known:
            return []  # a file already finished, or nothing new
        if self.checkpointed_at is not None and now - self.checkpointed_at < CHECKPOINT_EVERY_S:
            return []
        s = status.spec
        return [RecordProgress(s.vhost, s.app, s.id, command.sequence, command.record_bytes, command.record_time_ms),
                Checkpointed(now)]

    def apply(self, event: Event) -> None:
        if isinstance(event, RetryBlocked):
            self.blocked_instance = event.instance
        elif isinstance(event, Checkpointed):
            self.checkpointed_at = event.at
        else:
            self.status.fold(event)
