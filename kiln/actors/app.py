"""The application actor: owns the app's configuration and output profiles (``kiln.domain.app.App``).

It starts the app's two supervisors (streams, tasks) in the creator's thread, so both are
registered before the create call answers, and tells them every new configuration. Unlike OME,
reconfiguring an app (PATCH, output-profile changes) keeps its push and record tasks: they are
durable entities of their own, not fields of a publisher object that is thrown away.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any, Protocol

from kiln.actors.base import CommandActor, Outcome, settled, tell, tell_quietly
from kiln.actors.catalog_deps import ActorRegistry, EventSink
from kiln.actors.commands import (
    AddOutputProfiles,
    AppReconfigured,
    DeleteOutputProfile,
    PatchApp,
    ReplaceOutputProfile,
    Teardown,
)
from kiln.actors.streams import StreamsActor
from kiln.actors.tasks import TasksActor
from kiln.domain import app as domain
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.batch import decide_each
from kiln.domain.errors import Conflict
from kiln.domain.server import AppState
from kiln.domain.settings import AppSettings
from kiln.events import catalog as ce
from kiln.events.base import Event
from kiln.timefmt import now

log = logging.getLogger(__name__)


class AppStats(Protocol):
    def app_created(self, vhost: str, app: str) -> None: ...

    def app_deleted(self, vhost: str, app: str) -> None: ...


class AppDeps(Protocol):
    """What the app actor uses itself; the same object goes on to the supervisors it starts."""

    @property
    def events(self) -> EventSink: ...

    @property
    def directory(self) -> ActorRegistry: ...

    @property
    def stats(self) -> AppStats: ...


class AppActor(CommandActor):
    def __init__(self, ctx: AppDeps, vhost: str, state: AppState) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhost = vhost
        self.name = name = state.name
        self.dynamic = state.dynamic  # made from the vhost's template (OME's dynamic app); a PATCH keeps it
        self.app = domain.App(vhost, name, state.config, state.read_only)
        self.tasks = TasksActor.start(ctx, vhost, name, state.config, state.tasks)
        self.streams = StreamsActor.start(ctx, vhost, name, state.config, self.tasks, state.pulls,
                                          state.schedules, state.multiplexes, state.dynamic)
        ctx.directory.register(("tasks", vhost, name), self.tasks)
        ctx.directory.register(("streams", vhost, name), self.streams)
        # in the creator's thread, as the vhost's: the app's counters exist before "app created" is
        # answered (from on_start, a stats read right after could 404 and a stream's first bytes
        # could be counted before the app node existed)
        ctx.stats.app_created(vhost, name)

    # -- lifecycle --
    def on_stop(self) -> None:
        for key, ref in ((("streams", self.vhost, self.name), self.streams),
                         (("tasks", self.vhost, self.name), self.tasks)):
            self.ctx.directory.unregister(key, ref)
            ref.stop(block=True, timeout=30)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        tell_quietly(self.tasks, Teardown(cmd.reason))
        tell_quietly(self.streams, Teardown(cmd.reason))
        self.ctx.stats.app_deleted(self.vhost, self.name)
        return Outcome(None)

    def _reconfigured(self) -> list[Future[Any]]:
        """Adopt the app's new configuration. As in OME the app restarts: live streams are ended
        (their publishers reconnect into the new outputs) and the app's counters restart. Tasks
        stay. Returns a future that completes once the streams have ended durably."""
        config = self.app.config
        command = AppReconfigured(config, AppSettings.parse(config))
        tell_quietly(self.tasks, command)
        ended = settled(tell(self.streams, command))
        self.ctx.stats.app_created(self.vhost, self.name)
        log.info("app reconfigured vhost=%s app=%s profiles=%d", self.vhost, self.name,
                 len(command.settings.output_profiles))
        return [ended]

    def _decided(self, command: domain.AppCommand) -> Future[Any]:
        return self.ctx.events.emit(decide_and_apply(self.app, command, now(), self.ctx.events.encode))

    # -- configuration --
    def handle_PatchApp(self, cmd: PatchApp) -> Outcome:
        fut = self._decided(domain.PatchApp(cmd.body))
        return Outcome(dict(self.app.config, dynamic=self.dynamic), [fut, *self._reconfigured()])

    def handle_AddOutputProfiles(self, cmd: AddOutputProfiles) -> Outcome:
        """Every element is checked before any counts: one refusal other than a duplicate name
        refuses the whole request and nothing is added. The app restarts even when none is added."""
        self.app.writable()
        trial = self.app.trial()
        batch = decide_each(trial, domain.profile_commands(cmd.items), now(), _on_trial, respond=_added_profile,
                            per_item=(Conflict,))
        if batch.stopped_by is not None:
            raise batch.stopped_by
        durable: list[Future[Any]] = []
        if batch.events:  # the trial becomes the app once its one event is encoded: a refusal leaves the app as it was
            durable.append(self.ctx.events.emit(self.ctx.events.encode(domain.one_addition(batch.events))))
        self.app = trial
        durable += self._reconfigured()
        return Outcome(batch.results, durable)

    def handle_ReplaceOutputProfile(self, cmd: ReplaceOutputProfile) -> Outcome:
        fut = self._decided(domain.ReplaceOutputProfile(cmd.name, cmd.body))
        return Outcome(self.app.profile(cmd.name), [fut, *self._reconfigured()])

    def handle_DeleteOutputProfile(self, cmd: DeleteOutputProfile) -> Outcome:
        fut = self._decided(domain.DeleteOutputProfile(cmd.name))
        return Outcome(None, [fut, *self._reconfigured()])


def _on_trial(events: list[Event]) -> list[Event]:
    """``decide_each``'s store on a trial copy of the app: its events are journaled as one (``one_addition``),
    encoded before the trial replaces the app."""
    return events


def _added_profile(events: list[Event]) -> dict[str, Any]:
    added = events[0]
    assert isinstance(added, ce.OutputProfilesAdded)
    return added.profiles[0]
