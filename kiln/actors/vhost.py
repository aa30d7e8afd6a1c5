"""The vhost actor: owns its applications, serialises their creation and deletion."""

from __future__ import annotations

import logging
from typing import Any

from kiln.actors import configcheck
from kiln.actors.app import AppActor
from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import CreateApps, DeleteApp, Teardown
from kiln.actors.context import Context, ItemResult
from kiln.errors import ApiError, app_not_found, read_only
from kiln.events import catalog as ce
from kiln.timefmt import now

log = logging.getLogger(__name__)


class VhostActor(CommandActor):
    def __init__(self, ctx: Context, name: str, config: dict[str, Any], is_read_only: bool,
                 apps: list[tuple[dict[str, Any], bool]]) -> None:
        super().__init__()
        self.ctx = ctx
        self.name = name
        self.config = config
        self.read_only = is_read_only
        self.apps: dict[str, Any] = {}
        # __init__ runs in the creator's thread: the apps are registered before the creator answers,
        # so a request right after "vhost created" finds them
        self.ctx.stats.vhost_created(self.name)
        for app_config, app_read_only in apps:
            self._spawn(app_config, app_read_only)

    def on_start(self) -> None:
        log.debug("vhost actor started name=%s apps=%d", self.name, len(self.apps))

    def on_stop(self) -> None:
        for name, ref in list(self.apps.items()):
            ref.stop(block=True, timeout=30)
            self.ctx.directory.unregister(("app", self.name, name), ref)
        self.apps.clear()

    def _spawn(self, config: dict[str, Any], app_read_only: bool) -> None:
        name = str(config["name"])
        ref = AppActor.start(self.ctx, self.name, name, config, app_read_only)
        self.apps[name] = ref
        self.ctx.directory.register(("app", self.name, name), ref)

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for ref in self.apps.values():
            tell_quietly(ref, Teardown(cmd.reason))
        self.ctx.stats.vhost_deleted(self.name)
        return Outcome(None)

    def handle_CreateApps(self, cmd: CreateApps) -> Outcome:
        if self.read_only:
            raise read_only(self.name)
        if not isinstance(cmd.items, list):
            raise ApiError(400, "Request body must be an array")
        results: list[ItemResult] = []
        durable = []
        for item in cmd.items:
            try:
                config = configcheck.validate_new_app(item)
            except ApiError as exc:  # aborts the rest of the request; earlier items stay created
                return Outcome(None, durable, exc)
            name = str(config["name"])
            if name in self.apps:
                results.append(ItemResult(409, f"Could not create the application: [{self.name}/{name}]"
                                               " already exists"))
                continue
            durable.append(self.ctx.events.emit([ce.AppCreated(self.name, name, config, now())]))
            self._spawn(config, False)
            results.append(ItemResult(200, "OK", dict(config, dynamic=False)))
        return Outcome(results, durable)

    def handle_DeleteApp(self, cmd: DeleteApp) -> Outcome:
        ref = self.apps.get(cmd.name)
        if ref is None:
            raise app_not_found(self.name, cmd.name)
        if self.read_only:
            raise read_only(self.name)
        fut = self.ctx.events.emit([ce.AppDeleted(self.name, cmd.name)])
        del self.apps[cmd.name]
        self.ctx.directory.unregister(("app", self.name, cmd.name), ref)
        tell_quietly(ref, Teardown("app deleted"))
        ref.stop(block=False)
        log.info("app deleted vhost=%s app=%s", self.name, cmd.name)
        return Outcome(None, [fut])
