"""Push tasks (rest-spec §9): ``:startPush``, ``:stopPush``, ``:pushes``."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import StartPush, StopPush
from kiln.domain.push_request import list_filter_id
from kiln.http.envelope import ok, ok_encoded
from kiln.http.lookups import need_app, settings_of, tasks_ref
from kiln.http.rendered import RenderedJson, json_list
from kiln.http.router import APP, VHOST, Call, Router
from kiln.projections.tasks import PushTask
from kiln.timefmt import format_time


class LiveSessions(Protocol):
    """A push task's live counters (``media.task_counters``), by the read model's sequence."""

    def counts_for(self, sequence: int) -> tuple[int, int]:
        """(sent bytes, sent ms) of the session the read model at ``sequence`` has not counted yet."""
        ...


def push_json(task: PushTask, live: LiveSessions | None = None) -> dict[str, Any]:
    """OME's push object; empty strings are left out, totals spelled ``totalsent…``."""
    return _push_json(task, *(live.counts_for(task.sequence) if live is not None else (0, 0)))


def _push_json(task: PushTask, sent_bytes: int, sent_time: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "createdTime": format_time(task.created_time),
        "finishTime": format_time(0),
        "isConfig": False,
        "sentBytes": sent_bytes,
        "sentTime": sent_time,
        "sequence": task.sequence,
        "startTime": format_time(task.start_time),
        "state": task.state,
        "stream": {"trackIds": list(task.spec.track_ids), "variantNames": list(task.spec.variant_names)},
    }
    out["totalsentBytes"], out["totalsentTime"] = task.shown_totals(sent_bytes, sent_time)
    spec = task.spec
    for key, value in (("id", spec.id), ("vhost", spec.vhost), ("app", spec.app), ("protocol", spec.protocol),
                       ("url", spec.url), ("streamKey", spec.stream_key)):
        if value:
            out[key] = value
    if spec.stream_name:
        out["stream"]["name"] = spec.stream_name
    if task.reason and task.state == "error":
        out["lastError"] = task.reason
    elif task.reason and task.state == "pushing":
        out["lastWarning"] = task.reason  # Kiln's addition (as on record tasks): the tracks the push leaves out
    return out


def register(router: Router, api: Any) -> None:
    ctx = api.ctx
    rendered = RenderedJson()

    def counters() -> Any:
        return getattr(ctx.media, "task_counters", None) if ctx.media is not None else None

    def live_of(task: PushTask, registry: Any = None) -> LiveSessions | None:
        registry = registry or counters()
        return registry.get(("push", task.vhost, task.app, task.id)) if registry is not None else None

    async def start_push(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        task = await ask(tasks_ref(ctx, call.params["vhost"], call.params["app"]), StartPush(call.body))
        current = ctx.tasks.push(task.vhost, task.app, task.id) or task
        return ok(push_json(current, live_of(current)))

    async def stop_push(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        await ask(tasks_ref(ctx, call.params["vhost"], call.params["app"]), StopPush(call.body))
        return ok()

    async def list_pushes(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        if not settings_of(view).publisher_enabled("push"):
            return ok([])
        wanted = list_filter_id(call.body)
        tasks = ctx.tasks.push_list(view.vhost, view.name)
        registry = counters()
        return ok_encoded(json_list([encoded(t, registry) for t in tasks if wanted is None or t.id == wanted]))

    def encoded(task: PushTask, registry: Any) -> bytes:
        """``dumps(push_json(task, live_of(task)))``, kept while the task and its counters are unchanged."""
        spec = task.spec
        key = ("push", spec.vhost, spec.app, spec.id)
        live = registry.get(key) if registry is not None else None
        counts = live.counts_for(task.sequence) if live is not None else (0, 0)
        return rendered.get(key, (*task.__dict__.values(), *counts), lambda: _push_json(task, *counts))

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}"
    router.add("POST", rf"{base}:startPush", start_push)
    router.add("POST", rf"{base}:stopPush", stop_push)
    router.add("POST,GET", rf"{base}:pushes", list_pushes)
