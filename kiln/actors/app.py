"""The application actor: owns the app's configuration and output profiles.

It starts the app's two supervisors (streams, tasks) in the creator's thread, so both are
registered before the create call answers, and tells them every new configuration. Unlike OME,
reconfiguring an app (PATCH, output-profile changes) keeps its push and record tasks: they are
durable entities of their own, not fields of a publisher object that is thrown away.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, settled, tell, tell_quietly
from kiln.actors.commands import (
    AddOutputProfiles,
    AppReconfigured,
    DeleteOutputProfile,
    PatchApp,
    ReplaceOutputProfile,
    Teardown,
)
from kiln.actors.context import Context, ItemResult
from kiln.actors.profile_request import check_patch_profile_body, check_profile_body
from kiln.actors.streams import StreamsActor
from kiln.actors.tasks import TasksActor
from kiln.domain.settings import AppSettings
from kiln.errors import ApiError, read_only
from kiln.events import catalog as ce
from kiln.projections.catalog import (
    merge_patch,
    profiles_of,
    with_profile_deleted,
    with_profile_replaced,
    with_profiles_added,
)

log = logging.getLogger(__name__)

_FORBIDDEN_PATCH_KEYS = ("name", "dynamic", "outputProfiles")


class AppActor(CommandActor):
    def __init__(self, ctx: Context, vhost: str, name: str, config: dict[str, Any], is_read_only: bool) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhost = vhost
        self.name = name
        self.config = config
        self.read_only = is_read_only
        self.tasks = TasksActor.start(ctx, vhost, name, config)
        self.streams = StreamsActor.start(ctx, vhost, name, config, self.tasks)
        ctx.directory.register(("tasks", vhost, name), self.tasks)
        ctx.directory.register(("streams", vhost, name), self.streams)

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.name}"

    # -- lifecycle --
    def on_start(self) -> None:
        self.ctx.stats.app_created(self.vhost, self.name)

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

    def _writable(self) -> None:
        if self.read_only:
            raise read_only(self.vhost)

    def _reconfigured(self, config: dict[str, Any]) -> list[Future[Any]]:
        """Adopt a new configuration. As in OME the app restarts: live streams are ended (their
        publishers reconnect into the new outputs) and the app's counters restart. Tasks stay.
        Returns a future that completes once the streams have ended durably."""
        self.config = config
        command = AppReconfigured(config, AppSettings.parse(config))
        tell_quietly(self.tasks, command)
        ended = settled(tell(self.streams, command))
        self.ctx.stats.app_created(self.vhost, self.name)
        log.info("app reconfigured vhost=%s app=%s profiles=%d", self.vhost, self.name,
                 len(profiles_of(config)))
        return [ended]

    # -- configuration --
    def handle_PatchApp(self, cmd: PatchApp) -> Outcome:
        self._writable()
        if not isinstance(cmd.body, dict):
            raise ApiError(400, "Request body must be an object")
        for key in _FORBIDDEN_PATCH_KEYS:
            if key in cmd.body:
                raise ApiError(400, f"Cannot change [{key}] using this API")
        merged = merge_patch(self.config, cmd.body)
        config = configcheck.validate_app(merged)
        fut = self.ctx.events.emit([ce.AppPatched(self.vhost, self.name, config, cmd.body)])
        return Outcome(dict(config, dynamic=False), [fut, *self._reconfigured(config)])

    def handle_AddOutputProfiles(self, cmd: AddOutputProfiles) -> Outcome:
        self._writable()
        if not isinstance(cmd.items, list):
            raise ApiError(400, "Request body must be an array")
        for item in cmd.items:
            check_profile_body(item)
        names = {str(p.get("name")) for p in profiles_of(self.config)}
        accepted: list[dict[str, Any]] = []
        results: list[ItemResult | None] = []
        for item in cmd.items:
            if item["name"] in names:
                results.append(ItemResult(409, f'The output profile "{item["name"]}" already exists'))
                continue
            names.add(item["name"])
            accepted.append(item)
            results.append(None)
        config = with_profiles_added(self.config, accepted)
        try:
            config = configcheck.validate_app(config)
        except ApiError as exc:
            raise ApiError(400, exc.message) from exc
        durable: list[Future[Any]] = []
        if accepted:
            durable.append(self.ctx.events.emit([ce.OutputProfilesAdded(self.vhost, self.name, accepted)]))
        durable += self._reconfigured(config)
        stored = {str(p.get("name")): p for p in profiles_of(config)}
        final = [r if r is not None else ItemResult(200, "OK", stored.get(item["name"]))
                 for r, item in zip(results, cmd.items, strict=True)]
        return Outcome(final, durable)

    def _profile_or_404(self, name: str) -> dict[str, Any]:
        for profile in profiles_of(self.config):
            if profile.get("name") == name:
                return profile
        raise ApiError(404, f"Could not find the output profile: [{self.where}/{name}]")

    def handle_ReplaceOutputProfile(self, cmd: ReplaceOutputProfile) -> Outcome:
        self._writable()
        if not isinstance(cmd.body, dict):
            raise ApiError(400, "Request body must be an object")
        self._profile_or_404(cmd.name)
        body = check_patch_profile_body(cmd.body)
        profile = {"name": cmd.name, **body}
        try:
            config = configcheck.validate_app(with_profile_replaced(self.config, profile))
        except ApiError as exc:
            raise ApiError(400, exc.message) from exc
        fut = self.ctx.events.emit([ce.OutputProfileReplaced(self.vhost, self.name, profile)])
        return Outcome(profile, [fut, *self._reconfigured(config)])

    def handle_DeleteOutputProfile(self, cmd: DeleteOutputProfile) -> Outcome:
        self._writable()
        self._profile_or_404(cmd.name)
        config = with_profile_deleted(self.config, cmd.name)
        fut = self.ctx.events.emit([ce.OutputProfileDeleted(self.vhost, self.name, cmd.name)])
        return Outcome(None, [fut, *self._reconfigured(config)])
