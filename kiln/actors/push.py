"""The push task actor: runs one push task's media sessions (rest-spec §9, media-spec §7).

The ``PushTask`` aggregate decides what each session report means (states, reasons, backoff,
quiet repeats); this actor journals what it decides, starts and stops ``PushSession``s, and runs
the retry timer the aggregate asks for. While bytes move, the session thread nudges the actor
(``SampleCounters``) at most twice per checkpoint interval; the aggregate decides whether a
checkpoint (``PushProgress``) is due.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import AppReconfigured, OutputAvailable, OutputGone, Retry, SessionState, Teardown
from kiln.actors.task_ports import TaskPorts
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.effects import effects
from kiln.domain.push import (
    CHECKPOINT_EVERY_S,
    CountersSampled,
    NoTracks,
    OutputAttached,
    OutputDetached,
    PushStatus,
    PushTask,
    PushTaskCommand,
    RetryAfter,
    SessionConnecting,
    SessionFailed,
    SessionPushing,
)
from kiln.domain.settings import AppSettings
from kiln.eventlog import Encoded
from kiln.events.redact import redact_text
from kiln.events.tasks import PushSessionEnded
from kiln.media.publish.push.select import select_tracks
from kiln.media.publish.push.session import PushCounters, PushPlan, PushSession
from kiln.media.publish.push.writers import Timeouts
from kiln.metrics import push_kind
from kiln.timefmt import now

log = logging.getLogger(__name__)

NUDGE_EVERY_S = CHECKPOINT_EVERY_S / 2  # so that a due checkpoint waits at most half an interval


class SessionCounters:
    """What HTTP reads of a task's sessions, tagged by the sequence each one ends as: the current
    session's live counters, and the last ended session's counts until the read model has added
    them to the totals. So a read never counts a session twice nor drops it for a moment."""

    def __init__(self, sequence: int) -> None:
        self.live = PushCounters()
        self.sequence = sequence  # the read model's sequence while ``live`` runs
        self.ended: tuple[int, int, int] | None = None  # (sequence, sent bytes, sent ms)

    def counts_for(self, sequence: int) -> tuple[int, int]:
        """(sent bytes, sent ms) of the session the read model at ``sequence`` has not counted yet."""
        ended = self.ended
        if ended is not None and ended[0] == sequence:
            return ended[1], ended[2]
        live = self.live
        return (live.sent_bytes, live.sent_time_ms) if self.sequence == sequence else (0, 0)

    def session_ended(self, sent_bytes: int, sent_time_ms: int) -> None:
        """The session's end is decided (not yet in the read model): a fresh session follows."""
        self.ended = (self.sequence, sent_bytes, sent_time_ms)  # first, so readers always find one
        self.live = PushCounters()
        self.sequence += 1


@dataclass(frozen=True)
class SampleCounters:
    """From a session thread while bytes move: time to show the aggregate the counters."""

    session: int


class PushActor(CommandActor):
    def __init__(self, ports: TaskPorts, status: PushStatus, settings: AppSettings) -> None:
        super().__init__()
        self.ports = ports
        self.task = PushTask(status)
        self.settings = settings
        self.spec = status.spec
        self.key = ("push", self.spec.vhost, self.spec.app, self.spec.id)
        self.sessions = SessionCounters(status.sequence)
        self.session: PushSession | None = None
        self.session_no = 0
        self.skipped = ""  # what the current session leaves out, shown as the task's lastWarning while pushing
        self.stream: Any = None
        self.output: Any = None
        self._timer: threading.Timer | None = None
        self._connected = False  # a push connection is counted in the stats

    def on_start(self) -> None:
        if self.ports.counters is not None:
            self.ports.counters.put(self.key, self.sessions)

    def on_stop(self) -> None:
        self._stop_session()
        self._cancel_timer()
        if self.ports.counters is not None:
            self.ports.counters.pop(self.key)

    # -- decisions --
    def _decide(self, command: PushTaskCommand) -> list[Future[Any]]:
        return self._journal(decide_and_apply(self.task, command, now(), self.ports.journal.encode))

    def _journal(self, decided: Encoded) -> list[Future[Any]]:
        """Run the effects and journal the events (``decided.records`` leaves the effects out)."""
        for effect in effects(decided.events):
            if isinstance(effect, RetryAfter):
                self._schedule_retry(effect.seconds)
        return [self.ports.journal.emit(decided)] if decided.records else []

    # -- sessions --
    def _start_session(self) -> list[Future[Any]]:
        if self.output is None or self.session is not None:
            return []
        s = self.spec
        selection = select_tracks(self.output.track_list(), s.protocol, s.variant_names, s.track_ids)
        if not selection.tracks:
            return self._decide(NoTracks(selection.reason))
        for note in selection.skipped:  # the destination will lack a track: say so where users look
            log.warning("push track skipped vhost=%s app=%s id=%s stream=%s reason=%s", s.vhost, s.app, s.id,
                        self.stream.name, note)
        self.skipped = "; ".join(selection.skipped)
        self.session_no += 1
        number = self.session_no
        ref = self.actor_ref

        def on_state(state: str, reason: str) -> None:
            tell_quietly(ref, SessionState(number, state, reason))

        stream_name, stats = self.stream.name, self.ports.stats

        nudged = [time.monotonic()]

        def on_bytes(n: int) -> None:  # runs on the session thread, per packet: keep it cheap
            stats.bytes_out(s.vhost, s.app, stream_name, n)
            moment = time.monotonic()
            if moment - nudged[0] >= NUDGE_EVERY_S:
                nudged[0] = moment
                tell_quietly(ref, SampleCounters(number))

        timeouts = Timeouts(self.settings.push.connection_timeout_ms, self.settings.push.send_timeout_ms)
        plan = PushPlan(s.protocol, s.destination, selection.tracks, timeouts)
        self.session = PushSession(f"{s.vhost}/{s.app}/{s.id}#{number}", plan, self.output, self.sessions.live,
                                   on_state, on_bytes)
        if not self._connected:
            self._connected = True
            stats.connection(s.vhost, s.app, stream_name, push_kind(s.protocol), +1)
        self.session.start()
        return []

    def _stop_session(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.session = None

    def _disconnect_stats(self) -> None:
        if self._connected and self.stream is not None:
            self.ports.stats.connection(self.spec.vhost, self.spec.app, self.stream.name,
                                        push_kind(self.spec.protocol), -1)
        self._connected = False

    def _schedule_retry(self, delay: float) -> None:
        self._cancel_timer()
        number = self.session_no
        ref = self.actor_ref
        self._timer = threading.Timer(delay, lambda: tell_quietly(ref, Retry(number)))
        self._timer.daemon = True
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- commands --
    def handle_AppReconfigured(self, cmd: AppReconfigured) -> Outcome:
        self.settings = cmd.settings
        return Outcome(None)

    def handle_OutputAvailable(self, cmd: OutputAvailable) -> Outcome:
        if self.output is cmd.output:
            return Outcome(None)
        self._stop_session()
        self.stream, self.output = cmd.stream, cmd.output
        return Outcome(None, self._decide(OutputAttached()) + self._start_session())

    def handle_OutputGone(self, cmd: OutputGone) -> Outcome:
        if self.output is None or cmd.output_name != self.output.name:
            return Outcome(None)
        self._cancel_timer()
        had_session = self.session is not None
        self._stop_session()
        self._disconnect_stats()
        self.output = self.stream = None
        c = self.sessions.live
        events = decide_and_apply(self.task, OutputDetached(cmd.reason, had_session, c.sent_bytes, c.sent_time_ms),
                                  now(), self.ports.journal.encode)
        for ended in (ev for ev in events.events if isinstance(ev, PushSessionEnded)):
            self.sessions.session_ended(ended.sent_bytes, ended.sent_time_ms)  # before the read model has it
        return Outcome(None, self._journal(events))

    def handle_SessionState(self, cmd: SessionState) -> Outcome:
        if cmd.session != self.session_no or self.session is None:
            return Outcome(None)  # a report from a session that was already replaced
        if cmd.state == "connecting":
            return Outcome(None, self._decide(SessionConnecting()))
        if cmd.state == "pushing":
            return Outcome(None, self._decide(SessionPushing(self.skipped)))
        if cmd.state == "error":
            self.session = None
            log.warning("push error id=%s/%s/%s attempt=%d reason=%s", self.spec.vhost, self.spec.app,
                        self.spec.id, self.task.attempts.failures + 1, redact_text(cmd.reason, (self.spec.stream_key,)))
            return Outcome(None, self._decide(SessionFailed(cmd.reason)))
        return Outcome(None)

    def handle_SampleCounters(self, cmd: SampleCounters) -> Outcome:
        if cmd.session != self.session_no or self.output is None:
            return Outcome(None)
        c = self.sessions.live
        return Outcome(None, self._decide(CountersSampled(c.sent_bytes, c.sent_time_ms)))

    def handle_Retry(self, cmd: Retry) -> Outcome:
        self._timer = None
        if cmd.session != self.session_no or self.output is None or self.session is not None:
            return Outcome(None)
        if not self.settings.publisher_enabled("push"):
            return Outcome(None)
        return Outcome(None, self._start_session())

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self._cancel_timer()
        self._stop_session()
        self._disconnect_stats()
        log.info("push task stopped vhost=%s app=%s id=%s reason=%s", self.spec.vhost, self.spec.app,
                 self.spec.id, cmd.reason)
        return Outcome(None)
