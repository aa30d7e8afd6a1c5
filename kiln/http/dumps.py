"""HLS dumps (rest-spec §12): ``:startHlsDump``, ``:stopHlsDump``, ``:hlsDumps``.

Starting and stopping are commands to the app's task supervisor, which journals them and then
starts or stops the dump writers; this module checks the lookups and renders the read model.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import RegisterDump, UnregisterDumps
from kiln.errors import ApiError
from kiln.http.envelope import ok
from kiln.http.lookups import need_stream, tasks_ref
from kiln.http.router import APP, STREAM, VHOST, Call, Router
from kiln.http.write_paths import check_dump
from kiln.projections.tasks import DumpTask


def dump_json(task: DumpTask) -> dict[str, Any]:
    out: dict[str, Any] = {"enabled": task.enabled, "id": task.id, "outputPath": task.output_path,
                           "outputStreamName": task.output_stream}
    if task.info_file:
        out["infoFile"] = task.info_file
    if task.playlists:
        out["playlist"] = list(task.playlists)
    if task.user_data:
        out["userData"] = task.user_data
    return out


def _text(body: dict[str, Any], key: str) -> str:
    """A string field of the body ("" when absent or not a string)."""
    value = body.get(key)
    return value if isinstance(value, str) else ""


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    async def common(call: Call, output: str) -> None:
        """The two shared 404s: the output stream must belong to this input and be published as LL-HLS."""
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        stream = need_stream(ctx, vh, ap, st)
        if output not in stream.outputs:
            raise ApiError(404, f"Could not find output stream: [{vh}/{ap}/{output}]")
        publisher = ctx.media.llhls
        llhls = await publisher.find_soon(vh, ap, output, st) if publisher is not None else None
        if llhls is None:
            raise ApiError(404, f"Could not find LLHLS stream: [{vh}/{ap}/{output}]")

    async def start(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        body = call.body if isinstance(call.body, dict) else {}
        dump_id, output, path = (_text(body, k) for k in ("id", "outputStreamName", "outputPath"))
        if not (dump_id and output and path):
            raise ApiError(400, "id, outputStreamName and outputPath are required")
        await common(call, output)
        listed = body.get("playlist")
        playlists = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
        info, user_data = _text(body, "infoFile"), _text(body, "userData")
        # realpath and stat: a slow or stuck file system holds a worker thread, not the loop
        await asyncio.to_thread(check_dump, api.write_roots, path, info, playlists)
        await ask(tasks_ref(ctx, vh, ap), RegisterDump(st, output, dump_id, path, playlists, info, user_data))
        return ok()

    async def stop(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        body = call.body if isinstance(call.body, dict) else {}
        output = body.get("outputStreamName")
        if not isinstance(output, str):
            raise ApiError(400, "outputStreamName is required")
        await common(call, output)
        dump_id = body.get("id") if isinstance(body.get("id"), str) else None
        await ask(tasks_ref(ctx, vh, ap), UnregisterDumps(output, dump_id))
        return ok()

    async def listing(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        body = call.body if isinstance(call.body, dict) else {}
        output = body.get("outputStreamName")
        if not isinstance(output, str):
            raise ApiError(400, "outputStreamName is required")
        await common(call, output)
        wanted = body.get("id") if isinstance(body.get("id"), str) else None
        return ok([dump_json(d) for d in ctx.tasks.dump_list(vh, ap, output) if wanted is None or d.id == wanted])

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/streams/{STREAM}"
    router.add("POST", rf"{base}:startHlsDump", start)
    router.add("POST", rf"{base}:stopHlsDump", stop)
    router.add("POST", rf"{base}:hlsDumps", listing)
