"""The application actor: owns the app's configuration, output profiles and its tasks.

Unlike OME, reconfiguring an app (PATCH, output-profile changes) keeps its push and record tasks:
they are durable entities of their own, not fields of a publisher object that is thrown away.
"""

from __future__ import annotations

import logging
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome
from kiln.actors.commands import (
    AddOutputProfiles,
    DeleteOutputProfile,
    PatchApp,
    ReplaceOutputProfile,
    StartPush,
    StartRecord,
    StopPush,
    StopRecord,
    Teardown,
)
from kiln.actors.context import Context, ItemResult
from kiln.actors.profile_request import check_patch_profile_body, check_profile_body
from kiln.actors.push import PushActor
from kiln.actors.push_request import parse_start_push, parse_stop_push
from kiln.actors.record import RecordActor
from kiln.actors.record_request import parse_start_record, parse_stop_record
from kiln.errors import ApiError, read_only
from kiln.events import catalog as ce
from kiln.events import tasks as te
from kiln.projections.catalog import (
    merge_patch,
    profiles_of,
    with_profile_deleted,
    with_profile_replaced,
    with_profiles_added,
)
from kiln.projections.tasks import PushTask, RecordTask
from kiln.timefmt import now

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
        self.pushes: dict[str, Any] = {}
        self.records: dict[str, Any] = {}

    @property
    def where(self) -> str:
        return f"{self.vhost}/{self.name}"

    # -- lifecycle --
    def on_start(self) -> None:
        self.ctx.stats.app_created(self.vhost, self.name)
        for push in self.ctx.tasks.push_list(self.vhost, self.name):
            self._spawn_push(push)
        for record in self.ctx.tasks.record_list(self.vhost, self.name):
            self._spawn_record(record)

    def on_stop(self) -> None:
        for ref in [*self.pushes.values(), *self.records.values()]:
            ref.stop(block=True, timeout=30)
        self.pushes.clear()
        self.records.clear()

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        for ref in [*self.pushes.values(), *self.records.values()]:
            ref.tell(Teardown(cmd.reason))
        self.ctx.stats.app_deleted(self.vhost, self.name)
        return Outcome(None)

    def _spawn_push(self, task: PushTask) -> None:
        self.pushes[task.id] = PushActor.start(self.ctx, task)

    def _spawn_record(self, task: RecordTask) -> None:
        self.records[task.id] = RecordActor.start(self.ctx, task)

    def _writable(self) -> None:
        if self.read_only:
            raise read_only(self.vhost)

    def _reconfigured(self, config: dict[str, Any]) -> None:
        """Adopt a new configuration; OME restarts the app, so its counters restart too."""
        self.config = config
        self.ctx.stats.app_created(self.vhost, self.name)
        log.info("app reconfigured vhost=%s app=%s profiles=%d", self.vhost, self.name,
                 len(profiles_of(config)))

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
        self._reconfigured(config)
        return Outcome(dict(config, dynamic=False), [fut])

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
        durable = []
        if accepted:
            durable.append(self.ctx.events.emit([ce.OutputProfilesAdded(self.vhost, self.name, accepted)]))
        self._reconfigured(config)
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
        self._reconfigured(config)
        return Outcome(profile, [fut])

    def handle_DeleteOutputProfile(self, cmd: DeleteOutputProfile) -> Outcome:
        self._writable()
        self._profile_or_404(cmd.name)
        config = with_profile_deleted(self.config, cmd.name)
        fut = self.ctx.events.emit([ce.OutputProfileDeleted(self.vhost, self.name, cmd.name)])
        self._reconfigured(config)
        return Outcome(None, [fut])

    # -- push --
    def handle_StartPush(self, cmd: StartPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        spec = parse_start_push(cmd.body, self.vhost, self.name, enabled, set(self.pushes))
        task = PushTask(self.vhost, self.name, spec.id, spec.stream_name, spec.variant_names,
                        spec.track_ids, spec.protocol, spec.url, spec.stream_key, now())
        fut = self.ctx.events.emit([te.PushCreated(
            task.vhost, task.app, task.id, task.stream_name, task.variant_names, task.track_ids,
            task.protocol, task.url, task.stream_key, task.created_time)])
        self._spawn_push(task)
        log.info("push created vhost=%s app=%s id=%s protocol=%s stream=%s", self.vhost, self.name,
                 task.id, task.protocol, task.stream_name)
        return Outcome(task, [fut])

    def handle_StopPush(self, cmd: StopPush) -> Outcome:
        enabled = configcheck.publisher_enabled(self.config, "push")
        task_id = parse_stop_push(cmd.body, self.vhost, self.name, enabled, set(self.pushes))
        fut = self.ctx.events.emit([te.PushRemoved(self.vhost, self.name, task_id)])
        ref = self.pushes.pop(task_id)
        ref.tell(Teardown("stopPush"))
        ref.stop(block=False)
        return Outcome(None, [fut])

    # -- record --
    def _file_enabled(self) -> None:
        if not configcheck.publisher_enabled(self.config, "file"):
            raise ApiError(404, f"Could not find application: [{self.where}]")

    def handle_StartRecord(self, cmd: StartRecord) -> Outcome:
        self._file_enabled()
        spec = parse_start_record(cmd.body, set(self.records))
        task = RecordTask(self.vhost, self.name, spec.id, spec.transaction_id, spec.stream_name,
                          spec.variant_names, spec.track_ids, spec.file_path, spec.info_path,
                          spec.interval, spec.schedule, spec.segmentation_rule, spec.metadata, now())
        fut = self.ctx.events.emit([te.RecordCreated(
            task.vhost, task.app, task.id, task.transaction_id, task.stream_name, task.variant_names,
            task.track_ids, task.file_path, task.info_path, task.interval, task.schedule,
            task.segmentation_rule, task.metadata, task.created_time)])
        self._spawn_record(task)
        log.info("record created vhost=%s app=%s id=%s stream=%s", self.vhost, self.name, task.id,
                 task.stream_name)
        return Outcome(task, [fut])

    def handle_StopRecord(self, cmd: StopRecord) -> Outcome:
        self._file_enabled()
        task_id = parse_stop_record(cmd.body, set(self.records))
        ref = self.records.pop(task_id)
        snapshot = ref.proxy().stop_snapshot().get(timeout=30)
        fut = self.ctx.events.emit([te.RecordRemoved(self.vhost, self.name, task_id)])
        ref.tell(Teardown("stopRecord"))
        ref.stop(block=False)
        return Outcome(snapshot, [fut])
