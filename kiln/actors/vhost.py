"""The vhost actor: owns the vhost's app set (``kiln.domain.vhost.Vhost``), journals what it
decides, then starts or stops the app actors."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import pykka

from kiln.actors.app import AppActor
from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.catalog_deps import ActorRegistry, EventSink
from kiln.actors.commands import CreateApps, CreateDynamicApp, DeleteApp, RemoveDynamicApp, Teardown
from kiln.domain import vhost as domain
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.app_config import require_array
from kiln.domain.batch import decide_each
from kiln.domain.errors import Conflict
from kiln.domain.server import AppState, VhostState
from kiln.eventlog import Encoded
from kiln.events import catalog as ce
from kiln.events.base import Event
from kiln.timefmt import now

log = logging.getLogger(__name__)


class VhostStats(Protocol):
    def vhost_created(self, vhost: str) -> None: ...

    def vhost_deleted(self, vhost: str) -> None: ...


class VhostDeps(Protocol):
    """What the vhost actor uses; the same object is handed down to the app actors."""

    @property
    def events(self) -> EventSink: ...

    @property
    def directory(self) -> ActorRegistry: ...

    @property
    def stats(self) -> VhostStats: ...


class VhostActor(CommandActor):
    def __init__(self, ctx: VhostDeps, state: VhostState) -> None:
        super().__init__()
        self.ctx = ctx
        self.name = state.name
        self.vhost = domain.Vhost.starting_with(state.name, state.read_only, state.apps, state.template)
        self.apps: dict[str, pykka.ActorRef[Any]] = {}
        # __init__ runs in the creator's thread: the apps are registered before the creator answers,
        # so a request right after "vhost created" finds them
        self.ctx.stats.vhost_created(self.name)
        for app in state.apps:
            self._spawn(app)

    def on_start(self) -> None:
        log.debug("vhost actor started name=%s apps=%d", self.name, len(self.apps))

    def on_stop(self) -> None:
        for name, ref in list(self.apps.items()):
            ref.stop(block=True, timeout=30)
            self.ctx.directory.unregister(("app", self.name, name), ref)
        self.apps.clear()

    def _spawn(self, app: AppState) -> None:
        ref = AppActor.start(self.ctx, self.name, app)
        self.apps[app.name] = ref
        self.ctx.directory.register(("app", self.name, app.name), ref)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for ref in self.apps.values():
            tell_quietly(ref, Teardown(cmd.reason))
        self.ctx.stats.vhost_deleted(self.name)
        return Outcome(None)

    def handle_CreateApps(self, cmd: CreateApps) -> Outcome:
        """One invalid app aborts the rest of the request; the apps before it stay created."""
        self.vhost.writable()
        commands = [domain.CreateApp(item) for item in require_array(cmd.items)]
        batch = decide_each(self.vhost, commands, now(), self.ctx.events.encode, respond=_app_response,
                            per_item=(Conflict,))
        accepted = Encoded.joined(batch.stored)
        durable = [self.ctx.events.emit(accepted)] if accepted.records else []  # one append: one fsync
        for ev in accepted.events:
            if isinstance(ev, ce.AppCreated):
                self._spawn(self.vhost.apps[ev.name])
        if batch.stopped_by is not None:
            return Outcome(None, durable, batch.stopped_by)
        return Outcome(batch.results, durable)

    def handle_CreateDynamicApp(self, cmd: CreateDynamicApp) -> Outcome:
        """Through the same journal and spawn as POST apps: the app is registered (with its stream
        supervisor) before this answers, so the pull that asked for it goes on at once."""
        fut = self.ctx.events.emit(decide_and_apply(self.vhost, domain.CreateDynamicApp(cmd.name, cmd.stream),
                                                    now(), self.ctx.events.encode))
        self._spawn(self.vhost.apps[cmd.name])
        log.info("dynamic app created vhost=%s app=%s stream=%s", self.name, cmd.name, cmd.stream)
        return Outcome(None, [fut])

    def handle_RemoveDynamicApp(self, cmd: RemoveDynamicApp) -> Outcome:
        fut = self.ctx.events.emit(decide_and_apply(self.vhost, domain.RemoveDynamicApp(cmd.name), now(),
                                                    self.ctx.events.encode))
        self._stop_app(cmd.name, "dynamic app unused")
        log.info("dynamic app removed vhost=%s app=%s reason=unused", self.name, cmd.name)
        return Outcome(None, [fut])

    def _stop_app(self, name: str, reason: str) -> None:
        ref = self.apps.pop(name)
        self.ctx.directory.unregister(("app", self.name, name), ref)
        tell_quietly(ref, Teardown(reason))
        ref.stop(block=False)

    def handle_DeleteApp(self, cmd: DeleteApp) -> Outcome:
        fut = self.ctx.events.emit(decide_and_apply(self.vhost, domain.DeleteApp(cmd.name), now(),
                                                    self.ctx.events.encode))
        self._stop_app(cmd.name, "app deleted")
        log.info("app deleted vhost=%s app=%s", self.name, cmd.name)
        return Outcome(None, [fut])


def _app_response(events: list[Event]) -> dict[str, Any]:
    created = events[0]
    assert isinstance(created, ce.AppCreated)
    return dict(created.config, dynamic=False)
