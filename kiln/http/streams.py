"""Streams (rest-spec §8): list and lookups; the media runtime supplies live details."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kiln.http.envelope import ok
from kiln.http.lookups import need_app, need_stream
from kiln.http.router import APP, STREAM, VHOST, Call, Router


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    async def list_streams(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        names = [s.name for s in ctx.catalog.live_streams() if (s.vhost, s.app) == (view.vhost, view.name)]
        return ok(names)

    async def get_stream(call: Call) -> Response:
        stream = need_stream(ctx, call.params["vhost"], call.params["app"], call.params["stream"])
        return ok(stream.describe_json())

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/streams"
    router.add("GET", base, list_streams)
    router.add("GET", rf"{base}/{STREAM}", get_stream)
