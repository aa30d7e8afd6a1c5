"""Virtual hosts and certificate reloads (rest-spec §4, §5)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import CreateVhosts, DeleteVhost, ReloadCertificates
from kiln.config.unimplemented import vhost_warnings
from kiln.errors import ApiError
from kiln.http.envelope import multi_status, ok, ok_encoded
from kiln.http.lookups import need_vhost
from kiln.http.rendered import RenderedJson
from kiln.http.router import VHOST, Call, Router

log = logging.getLogger(__name__)


def register(router: Router, api: Any) -> None:
    ctx = api.ctx
    rendered = RenderedJson()

    def server() -> Any:
        ref = ctx.directory.server()
        if ref is None:
            raise ApiError(500, "Server is not running")
        return ref

    async def list_vhosts(call: Call) -> Response:
        return ok(ctx.catalog.vhost_names())

    async def create_vhosts(call: Call) -> Response:
        results = await ask(server(), CreateVhosts(call.body))
        for result in results:  # told what Kiln does not run, as a Server.xml vhost is at startup
            if result.error is None and isinstance(result.response, dict):
                for line in vhost_warnings(result.response):
                    log.warning("configuration vhost %s: %s", result.response.get("name"), line)
        return multi_status(results)

    async def get_vhost(call: Call) -> Response:
        view = need_vhost(ctx, call.params["vhost"])
        # the catalog replaces a vhost's config, never edits it: rendered once per config
        return ok_encoded(rendered.get(view.name, (view.config,), lambda: view.config))

    async def delete_vhost(call: Call) -> Response:
        need_vhost(ctx, call.params["vhost"])
        await ask(server(), DeleteVhost(call.params["vhost"]))
        return ok()

    async def reload_all(call: Call) -> Response:
        await ask(server(), ReloadCertificates(None))
        return ok()

    async def reload_one(call: Call) -> Response:
        need_vhost(ctx, call.params["vhost"])
        await ask(server(), ReloadCertificates(call.params["vhost"]))
        return ok()

    async def reload_all_via_vhost(call: Call) -> Response:
        need_vhost(ctx, call.params["vhost"])
        await ask(server(), ReloadCertificates(None))
        return ok()

    async def no_regex_group(call: Call) -> Response:
        raise ApiError(500, "Could not find the virtual host regex group")

    router.add("POST", r"/v1/vhosts:reloadAllCertificates", reload_all)
    router.add("POST", r"/v1/vhosts:reloadCertificate", no_regex_group)
    router.add("GET", r"/v1/vhosts:", no_regex_group)
    router.add("POST", rf"/v1/vhosts/{VHOST}:reloadCertificate", reload_one)
    router.add("POST", rf"/v1/vhosts/{VHOST}:reloadAllCertificates", reload_all_via_vhost)
    router.add("GET", r"/v1/vhosts", list_vhosts)
    router.add("POST", r"/v1/vhosts", create_vhosts)
    router.add("GET", rf"/v1/vhosts/{VHOST}", get_vhost)
    router.add("DELETE", rf"/v1/vhosts/{VHOST}", delete_vhost)
