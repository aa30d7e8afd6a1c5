"""Scheduled channels (rest-spec §14: scheduledChannels; OME's scheduled_channels_controller.cpp).

Lists and schedules come from the catalog (journaled definitions); ``currentProgram`` from what the
channel's worker says it plays now (``media.schedules``), so a GET never waits on an actor or a worker.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import CreateScheduledChannel, DeleteScheduledChannel, PatchScheduledChannel
from kiln.errors import ApiError, stream_not_found
from kiln.http.envelope import ok
from kiln.http.lookups import need_app, streams_ref
from kiln.http.router import APP, STREAM, VHOST, Call, Router
from kiln.timefmt import format_time


def current_program(on_air: Any, now: float) -> dict[str, Any]:
    """OME's ``currentProgram``: ``offair`` when nothing plays; the fallback program is named ``fallback``."""
    if on_air is None:
        return {"state": "offair"}
    slot = on_air.slot
    program = slot.program
    out: dict[str, Any]
    if program is None:
        out = {"name": "fallback", "scheduled": "1970-01-01T00:00:00Z", "duration": -1, "repeat": True}
    else:
        end = on_air.program_end_ms
        out = {"name": program.name, "scheduled": format_time(program.scheduled_ms / 1000),
               "duration": -1 if end is None else end - program.scheduled_ms, "repeat": program.repeat}
        if end is not None:
            out["end"] = format_time(end / 1000)
    out["state"] = "onair"
    out["currentItem"] = {"url": slot.item.url, "duration": slot.item.duration_ms, "start": slot.item.start_ms,
                          "currentPosition": on_air.position_ms(now)}
    return out


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    async def list_channels(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        return ok(ctx.catalog.schedule_names(call.params["vhost"], call.params["app"]))

    async def create_channel(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])  # channels are streams: a config app has them too
        await ask(streams_ref(ctx, call.params["vhost"], call.params["app"]), CreateScheduledChannel(call.body))
        return ok(None, 201)

    def stored(call: Call) -> dict[str, Any]:
        vhost, app, name = call.params["vhost"], call.params["app"], call.params["stream"]
        need_app(ctx, vhost, app)
        found: dict[str, Any] | None = ctx.catalog.schedule(vhost, app, name)
        if found is not None:
            return found
        registry = ctx.media.streams if ctx.media is not None else None
        if registry is not None and registry.get(vhost, app, name) is not None:
            raise ApiError(500, "Could not get the scheduled stream")
        raise stream_not_found(vhost, app, name)

    async def get_channel(call: Call) -> Response:
        schedule = stored(call)
        body = {k: v for k, v in schedule.items() if k != "programs"}
        body["programs"] = [{k: v for k, v in p.items() if k != "scheduledMs"} for p in schedule["programs"]]
        board = getattr(ctx.media, "schedules", None) if ctx.media is not None else None
        on_air = board.get((call.params["vhost"], call.params["app"], call.params["stream"])) \
            if board is not None else None
        body["currentProgram"] = current_program(on_air, time.time())
        return ok(body)

    async def patch_channel(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])  # channels are streams: a config app has them too
        await ask(streams_ref(ctx, call.params["vhost"], call.params["app"]),
                  PatchScheduledChannel(call.params["stream"], call.body))
        return ok(None, 201)

    async def delete_channel(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])  # channels are streams: a config app has them too
        await ask(streams_ref(ctx, call.params["vhost"], call.params["app"]),
                  DeleteScheduledChannel(call.params["stream"]))
        return ok()

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/scheduledChannels"
    router.add("GET", base, list_channels)
    router.add("POST", base, create_channel)
    router.add("GET", rf"{base}/{STREAM}", get_channel)
    router.add("PATCH", rf"{base}/{STREAM}", patch_channel)
    router.add("DELETE", rf"{base}/{STREAM}", delete_channel)
