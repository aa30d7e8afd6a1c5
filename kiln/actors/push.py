"""The push task actor: one durable restreaming task (rest-spec §9, media-spec §7).

States: ready (no stream), connecting, pushing, stopping, stopped, error. Each transition is
journaled with its reason. A task in error is retried with backoff (first retry within a second,
then up to a few seconds) for as long as its stream exists; to keep the journal readable, a
destination that keeps failing the same way is journaled for its first attempts only (the API
still shows ``error`` and the reason). Stream gone → the session's counters go to the totals,
sequence + 1, state ready; the next stream instance starts a new session by itself.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import OutputAvailable, OutputGone, Retry, SessionState, Teardown
from kiln.actors.context import Context
from kiln.events import tasks as te
from kiln.media.publish.push.select import select_tracks
from kiln.media.publish.push.session import PushCounters, PushPlan, PushSession
from kiln.media.publish.push.writers import Timeouts
from kiln.projections.tasks import PushTask
from kiln.timefmt import now

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 4.0
QUIET_AFTER_FAILURES = 3
STABLE_PUSH_S = 5.0  # a session that fails sooner than this after pushing counts as a flap


class PushActor(CommandActor):
    def __init__(self, ctx: Context, task: PushTask) -> None:
        super().__init__()
        self.ctx = ctx
        self.task = copy.copy(task)
        self.key = ("push", task.vhost, task.app, task.id)
        self.counters = PushCounters()
        self.session: PushSession | None = None
        self.session_no = 0
        self.stream: Any = None
        self.output: Any = None
        self.failures = 0
        self.flaps = 0  # sessions in a row that failed within STABLE_PUSH_S of starting to push
        self._pushing_since = 0.0
        self.last_error = ""
        self._timer: threading.Timer | None = None
        self._connected = False  # a push connection is counted in the stats

    def on_start(self) -> None:
        if self.ctx.media is not None:
            self.ctx.media.task_counters.put(self.key, self.counters)

    def on_stop(self) -> None:
        self._stop_session()
        self._cancel_timer()
        if self.ctx.media is not None:
            self.ctx.media.task_counters.pop(self.key)

    # -- journal --
    def _journal(self, state: str, reason: str = "", start_time: float | None = None) -> list[Any]:
        t = self.task
        t.state, t.reason = state, reason
        if start_time is not None:
            t.start_time = start_time
        return [self.ctx.events.emit([te.PushStateChanged(t.vhost, t.app, t.id, state, reason, start_time)])]

    # -- sessions --
    def _timeouts(self) -> Timeouts:
        view = self.ctx.catalog.app(self.task.vhost, self.task.app)
        push = (view.config.get("publishers") or {}).get("push") if view else None
        push = push if isinstance(push, dict) else {}

        def ms(key: str, default: int) -> int:
            try:
                return int(float(push.get(key, default)))
            except (TypeError, ValueError):
                return default
        return Timeouts(ms("connectionTimeout", 5000), ms("sendTimeout", 2000))

    def _start_session(self) -> list[Any]:
        if self.output is None or self.session is not None:
            return []
        t = self.task
        selection = select_tracks(self.output.track_list(), t.protocol, t.variant_names, t.track_ids)
        if not selection.tracks:
            self.failures += 1
            return self._journal("error", selection.reason)
        for note in selection.skipped:
            log.info("push track skipped id=%s %s", t.id, note)
        destination = f"{t.url}/{t.stream_key}" if t.stream_key else t.url
        self.session_no += 1
        number = self.session_no
        ref = self.actor_ref

        def on_state(state: str, reason: str) -> None:
            tell_quietly(ref, SessionState(number, state, reason))

        stream_name, stats = self.stream.name, self.ctx.stats

        def on_bytes(n: int) -> None:  # runs on the session thread
            stats.bytes_out(t.vhost, t.app, stream_name, n)

        plan = PushPlan(t.protocol, destination, selection.tracks, self._timeouts())
        self.session = PushSession(f"{t.vhost}/{t.app}/{t.id}#{number}", plan, self.output, self.counters,
                                   on_state, on_bytes)
        if not self._connected:
            self._connected = True
            self.ctx.stats.connection(t.vhost, t.app, self.stream.name, "push", +1)
        self.session.start()
        return []

    def _stop_session(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.session = None

    def _disconnect_stats(self) -> None:
        if self._connected and self.stream is not None:
            self.ctx.stats.connection(self.task.vhost, self.task.app, self.stream.name, "push", -1)
        self._connected = False

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- commands --
    def handle_OutputAvailable(self, cmd: OutputAvailable) -> Outcome:
        if self.output is cmd.output:
            return Outcome(None)
        self._stop_session()
        self.stream, self.output = cmd.stream, cmd.output
        self.failures = self.flaps = 0
        return Outcome(None, self._start_session())

    def handle_OutputGone(self, cmd: OutputGone) -> Outcome:
        if self.output is None or cmd.output_name != self.output.name:
            return Outcome(None)
        self._cancel_timer()
        had_session = self.session is not None
        self._stop_session()
        self._disconnect_stats()
        self.output = self.stream = None
        t = self.task
        durable = []
        if had_session or self.counters.sent_bytes:
            sent, sent_time = self.counters.sent_bytes, self.counters.sent_time_ms
            durable.append(self.ctx.events.emit([te.PushSessionEnded(t.vhost, t.app, t.id, sent, sent_time,
                                                                     cmd.reason)]))
            t.sequence += 1
            self.counters.sent_bytes, self.counters.started_at, self.counters.stopped_at = 0, 0.0, 0.0
        durable += self._journal("ready", cmd.reason, start_time=0.0)
        return Outcome(None, durable)

    def handle_SessionState(self, cmd: SessionState) -> Outcome:
        if cmd.session != self.session_no or self.session is None:
            return Outcome(None)  # a report from a session that was already replaced
        if cmd.state == "connecting":
            if self.failures >= QUIET_AFTER_FAILURES:
                return Outcome(None)
            return Outcome(None, self._journal("connecting", "", start_time=now()))
        if cmd.state == "pushing":
            self.failures = 0
            self.last_error = ""
            self._pushing_since = time.monotonic()
            return Outcome(None, self._journal("pushing"))
        if cmd.state == "error":
            self.session = None
            stable = self._pushing_since and time.monotonic() - self._pushing_since >= STABLE_PUSH_S
            self.flaps = 0 if stable else self.flaps + 1
            self._pushing_since = 0.0
            # quiet only while the journal already says error for this reason
            quiet = (self.failures >= QUIET_AFTER_FAILURES and cmd.reason == self.last_error
                     and self.task.state == "error")
            self.failures += 1
            self.last_error = cmd.reason
            log.warning("push error id=%s/%s/%s attempt=%d reason=%s", self.task.vhost, self.task.app,
                        self.task.id, self.failures, cmd.reason)
            durable = [] if quiet else self._journal("error", cmd.reason)
            self._schedule_retry()
            return Outcome(None, durable)
        return Outcome(None)

    def _schedule_retry(self) -> None:
        self._cancel_timer()
        # a destination that accepts and then fails at once backs off like one that refuses
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * (2 ** max(0, self.failures - 1, self.flaps - 1)))
        number = self.session_no
        ref = self.actor_ref
        self._timer = threading.Timer(delay, lambda: tell_quietly(ref, Retry(number)))
        self._timer.daemon = True
        self._timer.start()

    def handle_Retry(self, cmd: Retry) -> Outcome:
        self._timer = None
        if cmd.session != self.session_no or self.output is None or self.session is not None:
            return Outcome(None)
        if not configcheck.publisher_enabled(self._app_config(), "push"):
            return Outcome(None)
        return Outcome(None, self._start_session())

    def _app_config(self) -> dict[str, Any]:
        view = self.ctx.catalog.app(self.task.vhost, self.task.app)
        return view.config if view is not None else {}

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self._cancel_timer()
        self._stop_session()
        self._disconnect_stats()
        log.info("push task stopped vhost=%s app=%s id=%s reason=%s", self.task.vhost, self.task.app,
                 self.task.id, cmd.reason)
        return Outcome(None)
