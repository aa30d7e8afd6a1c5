"""``GET /v1/status``: what this process runs (listeners, journal size, uptime), for ``kiln status``
and the console (which needs the LL-HLS port for its preview). OME has no such route."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from starlette.responses import Response

from kiln.errors import ApiError
from kiln.http.envelope import ok
from kiln.http.router import Call, Router


class ServerStatus(Protocol):
    """The service's ``kiln/running.py: RunningServer``."""

    def status_json(self) -> dict[str, Any]: ...


def register(router: Router, api: Any) -> None:
    async def status(call: Call) -> Response:
        server: ServerStatus | None = getattr(api.ctx, "server", None)
        if server is None:
            raise ApiError(404, "Controller not found")
        body = await asyncio.to_thread(server.status_json)  # lists and stats the journal's files: off the loop
        catalog = api.ctx.catalog
        vhosts = catalog.vhost_names()
        apps = [(v, a) for v in vhosts for a in (catalog.app_names(v) or [])]
        body["counts"] = {"vhosts": len(vhosts), "apps": len(apps), "streams": len(catalog.live_streams()),
                          "pushes": len(api.ctx.tasks.all_pushes()), "records": len(api.ctx.tasks.all_records())}
        return ok(body)

    router.add("GET", r"/v1/status", status)
