"""Applications (rest-spec §6)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import CreateApps, DeleteApp, PatchApp
from kiln.config.unimplemented import api_app_warnings, app_warnings
from kiln.errors import read_only
from kiln.http.envelope import multi_status, ok, ok_encoded
from kiln.http.lookups import app_ref, need_app, need_vhost, vhost_ref
from kiln.http.rendered import RenderedJson
from kiln.http.router import APP, VHOST, Call, Router

log = logging.getLogger(__name__)


def warn_unimplemented(vhost: str, app: object, lines: list[str]) -> None:
    """An app configured through the API is told about what Kiln does not run as one from Server.xml is at
    startup: one WARNING line per element, in the same words (the API's answer stays OME's)."""
    for line in lines:
        log.warning("configuration vhost %s app %s: %s", vhost, app, line)


def with_reserved_mpegts_streams(config: dict[str, Any]) -> dict[str, Any]:
    """rest-spec §6.3: reserved MPEG-TS streams are shown as ``providers.mpegts.streams`` =
    ``[{"name": <stream>, "port": "<port>/udp"}]`` (the stream map's ``${Port}`` expanded)."""
    providers = config.get("providers")
    mpegts = providers.get("mpegts") if isinstance(providers, dict) else None
    stream_map = mpegts.get("streamMap") if isinstance(mpegts, dict) else None
    entries = stream_map.get("stream") if isinstance(stream_map, dict) else None
    if not entries or not isinstance(mpegts, dict) or not isinstance(providers, dict):
        return config
    streams = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict):
            continue
        port = str(entry.get("port", "")).split("/", 1)[0]
        name = str(entry.get("name", "")).replace("${Port}", port)
        streams.append({"name": name, "port": f"{port}/udp"})
    shown = {k: v for k, v in mpegts.items() if k != "streamMap"}
    shown["streams"] = streams
    return {**config, "providers": {**providers, "mpegts": shown}}


def register(router: Router, api: Any) -> None:
    ctx = api.ctx
    rendered = RenderedJson()

    async def list_apps(call: Call) -> Response:
        need_vhost(ctx, call.params["vhost"])
        return ok(ctx.catalog.app_names(call.params["vhost"]) or [])

    async def create_apps(call: Call) -> Response:
        vhost = need_vhost(ctx, call.params["vhost"])
        if vhost.read_only:
            raise read_only(vhost.name)
        results = await ask(vhost_ref(ctx, vhost.name), CreateApps(call.body))
        for result in results:
            if result.error is None and isinstance(result.response, dict):
                warn_unimplemented(vhost.name, result.response.get("name"), api_app_warnings(result.response))
        return multi_status(results)

    async def get_app(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        # the catalog replaces an app's config on every change, never edits it: rendered once per config
        return ok_encoded(rendered.get((view.vhost, view.name), (view.config, view.dynamic),
                                       lambda: {**with_reserved_mpegts_streams(view.config), "dynamic": view.dynamic}))

    async def get_app_raw(call: Call) -> Response:
        """OME quirk: ``…/apps/{app}:`` (an empty action) answers the raw config without ``dynamic``."""
        return ok(need_app(ctx, call.params["vhost"], call.params["app"]).config)

    async def patch_app(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        config = await ask(app_ref(ctx, call.params["vhost"], call.params["app"]), PatchApp(call.body))
        if isinstance(config, dict):
            warn_unimplemented(call.params["vhost"], call.params["app"], app_warnings(config))
        return ok(config)

    async def delete_app(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        await ask(vhost_ref(ctx, call.params["vhost"]), DeleteApp(call.params["app"]))
        return ok()

    base = rf"/v1/vhosts/{VHOST}/apps"
    router.add("GET", base, list_apps)
    router.add("POST", base, create_apps)
    router.add("GET", rf"{base}/{APP}:", get_app_raw)
    router.add("GET", rf"{base}/{APP}", get_app)
    router.add("PATCH", rf"{base}/{APP}", patch_app)
    router.add("DELETE", rf"{base}/{APP}", delete_app)
