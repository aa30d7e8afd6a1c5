"""Multiplex channels (rest-spec §14: multiplexChannels; OME's multiplex_channels_controller.cpp).

Lists and profiles come from the catalog (journaled definitions); ``state`` and ``pullingMessage`` from what the
channel's worker says it does now (``media.multiplexes``), so a GET never waits on an actor or a worker.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import CreateMultiplexChannel, DeleteMultiplexChannel
from kiln.domain.multiplex import NO_APPLICATION, channel_not_found_text
from kiln.errors import ApiError
from kiln.http.envelope import ok
from kiln.http.lookups import need_app, streams_ref
from kiln.http.router import APP, STREAM, VHOST, Call, Router

PULLING = "Pulling"


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    def provider_app(call: Call) -> tuple[str, str]:
        """OME's controller asks the Multiplex provider for the app: 404 when the app has none."""
        vhost, app = call.params["vhost"], call.params["app"]
        found = need_app(ctx, vhost, app)
        providers = found.config.get("providers") if isinstance(found.config, dict) else None
        if not isinstance(providers, dict) or not isinstance(providers.get("multiplex"), dict):
            raise ApiError(404, NO_APPLICATION)
        return vhost, app

    async def list_channels(call: Call) -> Response:
        vhost, app = provider_app(call)
        return ok(ctx.catalog.multiplex_names(vhost, app))

    async def create_channel(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])  # channels are streams: a config app has them too
        await ask(streams_ref(ctx, call.params["vhost"], call.params["app"]), CreateMultiplexChannel(call.body))
        return ok(None, 201)

    async def get_channel(call: Call) -> Response:
        vhost, app = provider_app(call)
        name = call.params["stream"]
        stored = ctx.catalog.multiplex(vhost, app, name)
        if stored is None:
            raise ApiError(404, channel_not_found_text(name))
        body = {k: v for k, v in stored.items() if k != "indexHints"}
        board = getattr(ctx.media, "multiplexes", None) if ctx.media is not None else None
        state, message = board.get((vhost, app, name)) if board is not None else (None, "")
        body["state"] = state.value if state is not None else "None"
        if body["state"] == PULLING:
            body["pullingMessage"] = message
        return ok(body)

    async def delete_channel(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        await ask(streams_ref(ctx, call.params["vhost"], call.params["app"]),
                  DeleteMultiplexChannel(call.params["stream"]))
        return ok()

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/multiplexChannels"
    router.add("GET", base, list_channels)
    router.add("POST", base, create_channel)
    router.add("GET", rf"{base}/{STREAM}", get_channel)
    router.add("DELETE", rf"{base}/{STREAM}", delete_channel)
