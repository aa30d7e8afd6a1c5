"""Streams (rest-spec §8, §11, §14): list, get, pull, delete, events, concludeHlsLive.

Events and conclusion are commands to the app's stream supervisor, which checks them against the
live stream, journals them, and only then carries them out; a stream's JSON is rendered from its
snapshot by ``kiln/http/views``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import ConcludeHlsLive, CreatePull, DeleteStream, SendStreamEvents
from kiln.errors import ApiError
from kiln.http.envelope import json_response, ok
from kiln.http.errors import status_of
from kiln.http.lookups import need_app, need_stream, streams_ref
from kiln.http.router import APP, STREAM, VHOST, Call, Router
from kiln.http.views.stream import stream_json


def check_pull_body(body: Any) -> None:
    """rest-spec §8.2 body checks, in order."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be an object")
    if not isinstance(body.get("name"), str) or not isinstance(body.get("urls"), list):
        raise ApiError(400, "Stream name or urls is required")
    if not body["urls"]:
        raise ApiError(400, "Urls must be at least one")
    if not all(isinstance(u, str) for u in body["urls"]):
        raise ApiError(400, "Url must be a string")


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    async def list_streams(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        names = [s.name for s in ctx.catalog.live_streams() if (s.vhost, s.app) == (view.vhost, view.name)]
        return ok(names)

    async def get_stream(call: Call) -> Response:
        stream = need_stream(ctx, call.params["vhost"], call.params["app"], call.params["stream"])
        return ok(stream_json(stream.snapshot()))

    async def create_pull(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        check_pull_body(call.body)
        request_url = str(call.request.url)
        waiter = await ask(streams_ref(ctx, view.vhost, view.name), CreatePull(call.body, request_url))
        connected = await asyncio.wrap_future(waiter)
        if not connected:
            raise ApiError(502, f"Could not pull the stream : {request_url}")
        return json_response(201, {"message": "Created", "statusCode": 201})

    async def delete_stream(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        await ask(streams_ref(ctx, vh, ap), DeleteStream(st))
        return ok()

    async def send_event(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        done = await ask(streams_ref(ctx, vh, ap), SendStreamEvents(st, [call.body]))
        await asyncio.wrap_future(done)
        return ok()

    async def send_events(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        if not isinstance(call.body, list) or not call.body:
            raise ApiError(400, "events(array) is required")
        done = await ask(streams_ref(ctx, vh, ap), SendStreamEvents(st, list(call.body), batch=True))
        verdicts = await asyncio.wrap_future(done)
        results: list[dict[str, Any]] = [{"message": "OK", "statusCode": 200} if v is None
                                          else {"message": v.text, "statusCode": status_of(v)} for v in verdicts]
        codes = {int(r["statusCode"]) for r in results}
        return json_response(codes.pop() if len(codes) == 1 else 207, results)

    async def send_subtitles(call: Call) -> Response:
        """rest-spec §14: body checks in OME's order. Kiln has no labelled subtitle tracks yet, so a
        well-formed request fails like OME's does for an unknown label (500), never a fake 200."""
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        body = call.body if isinstance(call.body, dict) else {}
        if not isinstance(body.get("format"), str) or not isinstance(body.get("data"), list):
            raise ApiError(400, "format(string) and data(array) are required")
        if body["format"].lower() != "webvtt":
            raise ApiError(400, f"format is not supported: [{body['format']}]")
        for item in body["data"]:
            if not isinstance(item, dict) or not isinstance(item.get("label"), str) \
                    or not isinstance(item.get("subtitles"), list):
                raise ApiError(400, "label(string) and subtitles(array) are required")
            if not all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in item["subtitles"]):
                raise ApiError(400, "text(string) is required in subtitles")
        labels = ", ".join(str(item["label"]) for item in body["data"])
        if not labels:
            return ok()
        raise ApiError(500, f"Internal Server Error - Could not send subtitles: [{vh}/{ap}/{st}] "
                            f"(no subtitle track labelled {labels})")

    async def conclude(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_stream(ctx, vh, ap, st)
        done = await ask(streams_ref(ctx, vh, ap), ConcludeHlsLive(st))
        await asyncio.wrap_future(done)
        return ok()

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/streams"
    router.add("POST", rf"{base}/{STREAM}:sendEvent", send_event)
    router.add("POST", rf"{base}/{STREAM}:sendEvents", send_events)
    router.add("POST", rf"{base}/{STREAM}:concludeHlsLive", conclude)
    router.add("POST", rf"{base}/{STREAM}:sendSubtitles", send_subtitles)
    router.add("GET", base, list_streams)
    router.add("POST", base, create_pull)
    router.add("GET", rf"{base}/{STREAM}", get_stream)
    router.add("DELETE", rf"{base}/{STREAM}", delete_stream)
