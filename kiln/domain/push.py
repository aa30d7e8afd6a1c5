"""Push tasks (rest-spec §9, media-spec §7): the app's set of them, and one task's sessions.

``PushTasks`` decides ``:startPush`` / ``:stopPush`` for one app. ``PushTask`` decides what a
task's media session reports mean: states ready (no stream), connecting, pushing, error. A task
in error is retried with backoff (first retry within a second, then up to a few seconds) for as
long as its stream exists; a session that fails soon after it started pushing counts as a flap
and backs off like a refusal. To keep the journal readable, a destination that keeps failing the
same way is journaled for its first attempts only (the API still shows ``error`` and the reason).
Stream gone: the session's counters go to the totals, sequence + 1, state ready. While a session
sends, its counters are checkpointed (``PushProgress``) at most every CHECKPOINT_EVERY_S, so that
after a crash the totals shown lose at most those seconds and never go back below a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from kiln.domain.effects import Effect
from kiln.domain.push_request import parse_start_push, parse_stop_push
from kiln.domain.settings import AppSettings
from kiln.domain.task_keys import SpecKeys
from kiln.events.base import Event
from kiln.events.tasks import (
    PushCreated,
    PushProgress,
    PushRemoved,
    PushSessionEnded,
    PushSpec,
    PushStateChanged,
)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 4.0
QUIET_AFTER_FAILURES = 3
STABLE_PUSH_S = 5.0  # a session that fails sooner than this after pushing counts as a flap
CHECKPOINT_EVERY_S = 2.0  # at most one PushProgress per task per this many seconds


# -- the app's push tasks --
@dataclass(frozen=True)
class CreatePush:
    body: Any


@dataclass(frozen=True)
class RemovePush:
    body: Any


class PushTasks:
    """Which push task ids an app has, and whether its push publisher is on."""

    def __init__(self, vhost: str, app: str, settings: AppSettings, ids: Iterable[str] = ()) -> None:
        self.vhost = vhost
        self.app = app
        self.settings = settings
        self.ids: set[str] = set(ids)

    def decide(self, command: CreatePush | RemovePush, now: float) -> list[Event]:
        enabled = self.settings.publisher_enabled("push")
        if isinstance(command, CreatePush):
            spec = parse_start_push(command.body, self.vhost, self.app, enabled, self.ids)
            return [PushCreated.of(spec, now)]
        task_id = parse_stop_push(command.body, self.vhost, self.app, enabled, self.ids)
        return [PushRemoved(self.vhost, self.app, task_id)]

    def apply(self, event: Event) -> None:
        if isinstance(event, PushCreated):
            self.ids.add(event.id)
        elif isinstance(event, PushRemoved):
            self.ids.discard(event.id)


# -- one task --
@dataclass
class PushStatus(SpecKeys):
    """What the journal says of one push task; the read model holds these too."""

    spec: PushSpec
    created_time: float
    state: str = "ready"
    reason: str = ""
    start_time: float = 0.0
    sequence: int = 0
    total_sent_bytes: int = 0  # of the ended sessions
    total_sent_time_ms: int = 0
    session_sent_bytes: int = 0  # the current session's last checkpoint (not yet in the totals)
    session_sent_time_ms: int = 0

    @classmethod
    def created(cls, event: PushCreated) -> PushStatus:
        return cls(event.spec, event.created_time)

    def fold(self, event: Event) -> None:
        if isinstance(event, PushStateChanged):
            self.state, self.reason = event.state, event.reason
            if event.start_time is not None:
                self.start_time = event.start_time
        elif isinstance(event, PushProgress):
            self.session_sent_bytes = max(self.session_sent_bytes, event.sent_bytes)
            self.session_sent_time_ms = max(self.session_sent_time_ms, event.sent_time_ms)
        elif isinstance(event, PushSessionEnded):
            self.sequence += 1
            self.total_sent_bytes += event.sent_bytes
            self.total_sent_time_ms += event.sent_time_ms
            self.session_sent_bytes = self.session_sent_time_ms = 0

    def shown_totals(self, live_bytes: int, live_time_ms: int) -> tuple[int, int]:
        """The totals the API shows: ended sessions plus the current one, counted from its live
        counters or its last checkpoint, whichever is further (so a total never goes back)."""
        return (self.total_sent_bytes + max(live_bytes, self.session_sent_bytes),
                self.total_sent_time_ms + max(live_time_ms, self.session_sent_time_ms))

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def restore(cls, saved: dict[str, Any]) -> PushStatus:
        """From ``snapshot()``, or from the flat shape older snapshots hold."""
        saved = dict(saved)
        spec_names = {f.name for f in fields(PushSpec)}
        spec = saved.pop("spec", None)
        if spec is None:
            spec = {k: saved.pop(k) for k in list(saved) if k in spec_names}
        return cls(PushSpec(**spec), **saved)


def closed_after_restart(status: PushStatus) -> list[Event]:
    """Recovery: a session that died with the process ends with its last checkpoint (the live
    counters died too; the checkpoint is not yet in the totals, so it is added exactly once), and
    the task waits in ``ready`` for its stream."""
    if status.state == "ready" and not status.session_sent_bytes:
        return []
    s = status.spec
    events: list[Event] = []
    if status.state in ("pushing", "stopping") or status.session_sent_bytes:
        events.append(PushSessionEnded(s.vhost, s.app, s.id, status.session_sent_bytes,
                                       status.session_sent_time_ms, "server restart"))
    return [*events, PushStateChanged(s.vhost, s.app, s.id, "ready", "server restart", 0.0)]


@dataclass(frozen=True)
class PushAttempts(Effect):
    """Attempt bookkeeping, not journaled: failures in a row, flaps in a row, since when the
    current session pushes, and the last error reason."""

    failures: int = 0
    flaps: int = 0
    pushing_since: float | None = None
    last_error: str = ""


@dataclass(frozen=True)
class Checkpointed(Effect):
    """When the last ``PushProgress`` was decided (not journaled: a restart checkpoints afresh)."""

    at: float


@dataclass(frozen=True)
class RetryAfter(Effect):
    """Start a new session after this many seconds (if the stream is still there)."""

    seconds: float


@dataclass(frozen=True)
class OutputAttached:
    """The task's output stream is live (a new stream instance): attempts start afresh."""


@dataclass(frozen=True)
class NoTracks:
    """The output has no track this push can carry; ``reason`` says which were missing."""

    reason: str


@dataclass(frozen=True)
class SessionConnecting:
    pass


@dataclass(frozen=True)
class SessionPushing:
    """Bytes flow; ``warning`` names the tracks of the output this protocol leaves out (or is empty)."""

    warning: str = ""


@dataclass(frozen=True)
class SessionFailed:
    reason: str


@dataclass(frozen=True)
class OutputDetached:
    """The output stream ended; what the session sent is handed in from its counters."""

    reason: str
    had_session: bool
    sent_bytes: int = 0
    sent_time_ms: int = 0


@dataclass(frozen=True)
class CountersSampled:
    """The current session's counters as they are now; a checkpoint is journaled if one is due."""

    sent_bytes: int
    sent_time_ms: int


PushTaskCommand = (OutputAttached | NoTracks | SessionConnecting | SessionPushing | SessionFailed
                   | OutputDetached | CountersSampled)


def retry_delay(failures: int, flaps: int) -> float:
    """Doubling from RETRY_FIRST_S up to RETRY_MAX_S; a flapping destination backs off like one
    that refuses."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * float(2 ** max(0, failures - 1, flaps - 1)))


class PushTask:
    def __init__(self, status: PushStatus) -> None:
        self.status = status
        self.attempts = PushAttempts()
        self.checkpointed_at: float | None = None

    def _state(self, state: str, reason: str = "", start_time: float | None = None) -> PushStateChanged:
        s = self.status.spec
        return PushStateChanged(s.vhost, s.app, s.id, state, reason, start_time)

    def decide(self, command: PushTaskCommand, now: float) -> list[Event]:
        a = self.attempts
        if isinstance(command, OutputAttached):
            return [PushAttempts()]
        if isinstance(command, NoTracks):
            return [self._state("error", command.reason), replace(a, failures=a.failures + 1)]
        if isinstance(command, SessionConnecting):
            return [] if a.failures >= QUIET_AFTER_FAILURES else [self._state("connecting", "", now)]
        if isinstance(command, SessionPushing):
            return [self._state("pushing", command.warning), replace(a, failures=0, pushing_since=now, last_error="")]
        if isinstance(command, SessionFailed):
            return self._failed(command.reason, now)
        if isinstance(command, CountersSampled):
            return self._checkpoint(command, now)
        return self._detached(command)

    def _checkpoint(self, command: CountersSampled, now: float) -> list[Event]:
        """Due when bytes moved past the last checkpoint and CHECKPOINT_EVERY_S passed since it."""
        if command.sent_bytes <= self.status.session_sent_bytes:
            return []
        if self.checkpointed_at is not None and now - self.checkpointed_at < CHECKPOINT_EVERY_S:
            return []
        s = self.status.spec
        return [PushProgress(s.vhost, s.app, s.id, command.sent_bytes, command.sent_time_ms), Checkpointed(now)]

    def _failed(self, reason: str, now: float) -> list[Event]:
        a = self.attempts
        stable = a.pushing_since is not None and now - a.pushing_since >= STABLE_PUSH_S
        # quiet only while the journal already says error for this reason
        quiet = (a.failures >= QUIET_AFTER_FAILURES and reason == a.last_error
                 and self.status.state == "error")
        after = PushAttempts(a.failures + 1, 0 if stable else a.flaps + 1, None, reason)
        events: list[Event] = [] if quiet else [self._state("error", reason)]
        return [*events, after, RetryAfter(retry_delay(after.failures, after.flaps))]

    def _detached(self, command: OutputDetached) -> list[Event]:
        s = self.status.spec
        events: list[Event] = []
        # never less than the last checkpoint: it was shown, and the session sent at least that
        sent_bytes = max(command.sent_bytes, self.status.session_sent_bytes)
        sent_time_ms = max(command.sent_time_ms, self.status.session_sent_time_ms)
        if command.had_session or sent_bytes:
            events.append(PushSessionEnded(s.vhost, s.app, s.id, sent_bytes, sent_time_ms, command.reason))
        return [*events, self._state("ready", command.reason, 0.0)]

    def apply(self, event: Event) -> None:
        if isinstance(event, PushAttempts):
            self.attempts = event
        elif isinstance(event, Checkpointed):
            self.checkpointed_at = event.at
        elif isinstance(event, PushSessionEnded):
            self.checkpointed_at = None
            self.status.fold(event)
        else:
            self.status.fold(event)
