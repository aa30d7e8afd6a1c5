"""Record tasks (rest-spec §10): ``:startRecord``, ``:stopRecord``, ``:records``."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import StartRecord, StopRecord
from kiln.domain.push_request import list_filter_id
from kiln.domain.record_request import file_app_missing
from kiln.http.envelope import ok
from kiln.http.lookups import need_app, settings_of, tasks_ref
from kiln.http.router import APP, VHOST, Call, Router
from kiln.http.write_paths import check_record
from kiln.projections.tasks import RecordTask
from kiln.timefmt import format_time

_ACTIVE = ("recording", "stopping", "stopped", "error")
# while recording, the state's reason names the tracks the container cannot hold (empty when none)
_WARNED = ("recording", "stopping")


def record_json(task: RecordTask, live: Any = None) -> dict[str, Any]:
    """OME's record object, with its rules for which fields appear when (rest-spec §10.3), plus two
    fields of Kiln's: ``lastError`` (why the task is in ``error``) and ``lastWarning`` (which tracks
    the recording leaves out because its container cannot hold them)."""
    sample = live.sample() if hasattr(live, "sample") else live  # the live counters, read in one step
    record_bytes = getattr(sample, "record_bytes", 0) if sample is not None else 0
    record_time = getattr(sample, "record_time_ms", 0) if sample is not None else 0
    finished = getattr(sample, "finished", None)
    spec = task.spec
    out: dict[str, Any] = {
        "createdTime": format_time(task.created_time),
        "isConfig": False,
        "segmentationRule": spec.segmentation_rule,
        "state": task.state,
        "stream": {"trackIds": list(spec.track_ids), "variantNames": list(spec.variant_names)},
    }
    if spec.stream_name:
        out["stream"]["name"] = spec.stream_name
    for key, value in (("id", spec.id), ("vhost", spec.vhost), ("app", spec.app), ("metadata", spec.metadata),
                       ("filePath", spec.file_path), ("infoPath", spec.info_path),
                       ("outputFilePath", task.output_file_path), ("outputInfoPath", task.output_info_path),
                       ("schedule", spec.schedule)):
        if value:
            out[key] = value
    if spec.interval > 0:
        out["interval"] = spec.interval
    if task.state in _ACTIVE:
        total_bytes, total_time = task.shown_totals(record_bytes, record_time, finished)
        for key, count in (("recordBytes", record_bytes), ("recordTime", record_time),
                           ("totalRecordBytes", total_bytes), ("totalRecordTime", total_time),
                           ("sequence", task.sequence)):
            if count > 0:
                out[key] = count
        if task.start_time > 0:
            out["startTime"] = format_time(task.start_time)
    if task.state in ("stopped", "error"):
        out["finishTime"] = format_time(task.finish_time)
    if task.reason and task.state == "error":
        out["lastError"] = task.reason
    elif task.reason and task.state in _WARNED:
        out["lastWarning"] = task.reason  # Kiln's addition, like lastError: the tracks this file leaves out
    return out


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    def live_of(task: RecordTask) -> Any:
        registry = getattr(ctx.media, "task_counters", None) if ctx.media is not None else None
        return registry.get(("record", task.vhost, task.app, task.id)) if registry is not None else None

    def file_app(call: Call) -> Any:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        if not settings_of(view).publisher_enabled("file"):
            raise file_app_missing(view.vhost, view.name)
        return view

    async def start_record(call: Call) -> Response:
        view = file_app(call)
        root_path = settings_of(view).file.root_path
        # realpath and stat: a slow or stuck file system holds a worker thread, not the loop
        await asyncio.to_thread(check_record, api.write_roots, call.body, root_path, view.vhost, view.name)
        task = await ask(tasks_ref(ctx, call.params["vhost"], call.params["app"]), StartRecord(call.body))
        current = ctx.tasks.record(task.vhost, task.app, task.id) or task
        return ok(record_json(current, live_of(current)))

    async def stop_record(call: Call) -> Response:
        file_app(call)
        # the supervisor answers once RecordRemoved is durable; the task's own answer follows
        answer = await ask(tasks_ref(ctx, call.params["vhost"], call.params["app"]), StopRecord(call.body))
        stopped = await asyncio.wrap_future(answer)
        return ok(record_json(stopped.task, stopped.live))

    async def list_records(call: Call) -> Response:
        view = file_app(call)
        wanted = list_filter_id(call.body)
        tasks = ctx.tasks.record_list(view.vhost, view.name)
        return ok([record_json(t, live_of(t)) for t in tasks if wanted is None or t.id == wanted])

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}"
    router.add("POST", rf"{base}:startRecord", start_record)
    router.add("POST", rf"{base}:stopRecord", stop_record)
    router.add("POST,GET", rf"{base}:records", list_records)
