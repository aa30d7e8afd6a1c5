"""Statistics (rest-spec §13, §14): server, vhost, app and input-stream metrics, and internal queues.

Reads the metrics tree (``kiln.metrics``) and the media runtime's queue view; neither is a read
model of events, so nothing here waits on an actor or the journal.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.responses import Response

from kiln.errors import stream_not_found
from kiln.http.envelope import ok
from kiln.http.lookups import need_app, need_vhost
from kiln.http.router import APP, STREAM, VHOST, Call, Router


class MetricsReader(Protocol):
    """What the stats API reads of the metrics tree."""

    def server_json(self) -> dict[str, Any]: ...
    def vhost_json(self, vhost: str) -> dict[str, Any] | None: ...
    def app_json(self, vhost: str, app: str) -> dict[str, Any] | None: ...
    def stream_json(self, vhost: str, app: str, stream: str) -> dict[str, Any] | None: ...


def register(router: Router, api: Any) -> None:
    ctx = api.ctx
    metrics: MetricsReader = ctx.stats

    async def server(call: Call) -> Response:
        return ok(metrics.server_json())

    async def vhost(call: Call) -> Response:
        need_vhost(ctx, call.params["vhost"])
        return ok(metrics.vhost_json(call.params["vhost"]) or metrics.server_json())

    async def app(call: Call) -> Response:
        need_app(ctx, call.params["vhost"], call.params["app"])
        found = metrics.app_json(call.params["vhost"], call.params["app"])
        return ok(found if found is not None else metrics.vhost_json(call.params["vhost"]))

    async def stream(call: Call) -> Response:
        vh, ap, st = call.params["vhost"], call.params["app"], call.params["stream"]
        need_app(ctx, vh, ap)
        found = metrics.stream_json(vh, ap, st)
        if found is None:
            raise stream_not_found(vh, ap, st)
        return ok(found)

    async def internals(call: Call) -> Response:
        return ok(["/v1/stats/current/internals/queues"])

    async def queues(call: Call) -> Response:
        source = getattr(ctx.media, "queue_metrics", None) if ctx.media is not None else None
        return ok(source() if source is not None else [])

    base = r"/v1/stats/current"
    router.add("GET", base, server)
    router.add("GET", rf"{base}/internals", internals)
    router.add("GET", rf"{base}/internals/queues", queues)
    router.add("GET", rf"{base}/vhosts/{VHOST}", vhost)
    router.add("GET", rf"{base}/vhosts/{VHOST}/apps/{APP}", app)
    router.add("GET", rf"{base}/vhosts/{VHOST}/apps/{APP}/streams/{STREAM}", stream)
