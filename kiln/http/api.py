"""The REST API v1 application: OME's interceptor order around a raw-path router (rest-spec §1.4, §15).

Order: CORS headers → OPTIONS 204 (no auth) → Basic auth 401 → route or 404 "Controller not
found" → JSON body parse 400 → handler (lookups 404, read-only 403, body shape 400, resource checks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kiln.actors.base import ActorGone
from kiln.config.cors import CorsPolicy
from kiln.config.write_roots import WriteRoots
from kiln.domain.errors import DomainError
from kiln.errors import ApiError
from kiln.http import (
    apps,
    dumps,
    events,
    journal,
    misc,
    multiplex,
    openapi,
    profiles,
    push,
    record,
    scheduled,
    stats,
    status,
    streams,
    subscriptions,
    vhosts,
)
from kiln.http.api_protocol import headers_too_large
from kiln.http.auth import CHALLENGE, TokenCheck, check_authorization
from kiln.http.console import CONSOLE_HEADER, console_routes, is_console
from kiln.http.context import ApiContext
from kiln.http.envelope import BASE_HEADERS, error
from kiln.http.errors import api_error
from kiln.http.jsonbody import parse_body
from kiln.http.router import Call, Router

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_MAX_HEADER = 16 * 1024
# POST actions that only read (OME lists pushes, records and dumps by POST): never refused on a full disk
READ_ACTIONS = (":pushes", ":records", ":hlsDumps")
DISK_FULL = ApiError(507, "Could not journal the command: the data directory's disk is full")
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class MetricsExport:
    """``GET /metrics`` (Prometheus): how to render it, its content type, and whether it needs the token
    (``Managers/Metrics/Auth``; a scraper on a trusted network may go without, as mediamtx allows)."""

    render: Callable[[], bytes]
    content_type: str
    auth: bool = True


async def _withdraw_cancel(task: asyncio.Task[Any]) -> None:
    """Take back the body deadline's cancel from a request whose body made it: a receive that returns a message
    it already read even when cancelled swallows the CancelledError but leaves the request counted as cancelling
    (``asyncio.timeout`` and task groups later in the handler read that count), and a cancel requested while the
    task was not waiting is still pending (3.11's ``uncancel`` does not clear it) and would cancel the handler's
    next await. It is delivered here, at a step of our own, and its count taken back."""
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        if task.uncancel() > 0:
            raise  # cancelled from elsewhere as well (the server stopping)
        return
    if task.cancelling() > 0:
        task.uncancel()


class _Heads:
    """What the API reads of a request's headers, found in one pass over the raw list (Starlette's ``Headers``
    object and a scan per ``get`` cost more, on every command): the first of each name, as ``get`` answers,
    and the headers' size."""

    __slots__ = ("size", "authorization", "origin", "acrh")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        size = 0
        authorization = origin = acrh = None
        for name, value in raw:
            size += len(name) + len(value) + 4
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"origin":
                if origin is None:
                    origin = value.decode("latin-1")
            elif name == b"access-control-request-headers" and acrh is None:
                acrh = value.decode("latin-1")
        self.size = size
        self.authorization: str | None = authorization
        self.origin: str | None = origin
        self.acrh: str | None = acrh


class ApiApp:
    """Builds the Starlette application; holds what handlers need."""

    def __init__(self, ctx: ApiContext, token: str, cors: CorsPolicy | None = None,
                 max_body: int = DEFAULT_MAX_BODY, tls_reloader: Any = None,
                 metrics: MetricsExport | None = None,
                 disk_gate: Callable[[], bool] | None = None, write_roots: WriteRoots | None = None,
                 body_timeout: float = DEFAULT_BODY_TIMEOUT, max_header_bytes: int = DEFAULT_MAX_HEADER) -> None:
        self.ctx = ctx
        self.metrics = metrics
        self.closing = asyncio.Event()  # set when the server stops: endless responses (SSE) end
        self.write_roots = write_roots  # None: API paths are not confined (only tests build it so)
        self.disk_gate = disk_gate  # False while the journal has no room: commands are refused with 507
        self.token = token
        self.authorize = TokenCheck(token)
        self.cors = cors or CorsPolicy()
        self.max_body = max_body
        self.body_timeout = body_timeout  # a body trickled slower than this is a slowloris: 408
        # the API ports' protocol (api_protocol.py) bounds headers on the wire; this bounds them for any other server
        self.max_header_bytes = max_header_bytes
        self.tls_reloader = tls_reloader
        self.router = Router()
        for module in (misc, vhosts, apps, push, record, profiles, dumps, streams, scheduled, multiplex, stats,
                       events, subscriptions, journal, status):
            module.register(self.router, self)
        openapi.register(self.router, self)  # last: it documents what the router holds
        self.console = Starlette(routes=console_routes())
        self.starlette: ASGIApp = self  # what uvicorn (and tests' clients) serve: ``__call__`` below
        self._cors_raw: dict[tuple[str | None, str | None], list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The API port's ASGI app: the console's files go through Starlette's routing, every other request
        straight to :meth:`endpoint` (Starlette's middleware and router cost a third of a read's CPU for a
        catch-all route; the API routes with its own router, which never answers 405)."""
        if scope["type"] != "http" or is_console(scope["method"], scope["path"]):
            await self.console(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception:  # what Starlette's error middleware did: a 500, logged
            log.exception("api request failed method=%s path=%r", scope["method"], scope["path"][:200])
            response = error(ApiError(500, "Internal Server Error"))
        await response(scope, receive, send)

    def close_streams(self) -> None:
        """End every open event stream (call on the serving loop before the listeners stop)."""
        self.closing.set()

    async def _metrics(self, request: Request, export: MetricsExport) -> Response:
        if export.auth:
            denied = check_authorization(request.headers.get("authorization"), self.token)
            if denied is not None:
                return error(denied, CHALLENGE)
        try:
            body = await asyncio.to_thread(export.render)  # composed at scrape time: off the loop
        except Exception:
            log.exception("metrics exposition failed")
            return error(ApiError(500, "Internal Server Error"))
        return Response(body, headers={**BASE_HEADERS, "Content-Type": export.content_type})

    async def _read_body(self, request: Request) -> bytes:
        """The whole body, bounded in size and time; read from ``receive`` as ``request.stream()`` would (its
        async generator cost more than a small body's parse), and nothing else reads it. The time bound is one
        timer that cancels this task (what ``asyncio.timeout`` does, at a third of its cost per request)."""
        receive = request.receive
        if getattr(getattr(receive, "__self__", None), "more_body", True) is False:
            # uvicorn's cycle already holds the whole body (it came with the headers, as a command's does):
            # its receive hands it over without waiting, so no deadline is armed (a timer and the current
            # task looked up per command)
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body: bytes = message.get("body", b"")
            if len(body) > self.max_body:
                raise ApiError(413, f"Request body is larger than {self.max_body} bytes")
            if not message.get("more_body", False):
                return body
            return body + await self._read_rest(request, len(body))
        return await self._read_rest(request, 0)

    async def _read_rest(self, request: Request, size: int) -> bytes:
        """What is left of the body, under the deadline (``_read_body``)."""
        chunks: list[bytes] = []
        receive = request.receive
        task = asyncio.current_task()
        assert task is not None
        expired = [False]

        def expire() -> None:
            expired[0] = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.body_timeout, expire)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise ApiError(413, f"Request body is larger than {self.max_body} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not expired[0] or task.uncancel() > 0:
                raise  # cancelled from elsewhere (the server stopping): not ours to turn into a 408
            log.warning("api request body not received in time client=%s timeout=%.1fs bytes=%d",
                        request.client.host if request.client else "", self.body_timeout, size)
            raise ApiError(408, f"Request body was not received within {self.body_timeout:g} s") from None
        finally:
            timer.cancel()
        if expired[0]:  # the deadline fired as the last chunk came, and ``receive`` handed the chunk over anyway
            await _withdraw_cancel(task)
        return b"".join(chunks)

    def _cors_headers(self, origin: str | None, request_headers: str | None) -> list[tuple[bytes, bytes]]:
        """The CORS headers for this Origin and Access-Control-Request-Headers, as raw header pairs: the same
        few pairs come back on every request, so they are kept (a bounded table)."""
        key = (origin, request_headers)
        found = self._cors_raw.get(key)
        if found is None:
            if len(self._cors_raw) >= 256:
                self._cors_raw.clear()
            found = self._cors_raw[key] = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                           for k, v in self.cors.headers(origin, request_headers).items()]
        return found

    async def endpoint(self, request: Request) -> Response:
        heads = _Heads(request.scope.get("headers", []))
        cors = self._cors_headers(heads.origin, heads.acrh)
        if request.method == "OPTIONS":
            response = Response(status_code=204, headers=BASE_HEADERS)
            response.raw_headers += cors
            return response
        response = await self._dispatch(request, heads)
        if cors:  # as ``response.headers.update(cors)``: each replaces a header of that name
            names = {name for name, _ in cors}
            raw = response.raw_headers
            if any(name in names for name, _ in raw):
                raw[:] = [(name, value) for name, value in raw if name not in names]
            raw += cors
        if request.method == "HEAD":
            length = response.headers.get("content-length", "0")
            response = Response(b"", status_code=response.status_code, headers=dict(response.headers))
            response.headers["content-length"] = length
        return response

    async def _dispatch(self, request: Request, heads: _Heads) -> Response:
        if heads.size > self.max_header_bytes:
            return error(headers_too_large(self.max_header_bytes))
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("utf-8", "replace").partition("?")[0]
        if path == METRICS_PATH and self.metrics is not None and request.method in ("GET", "HEAD"):
            return await self._metrics(request, self.metrics)
        denied = self.authorize(heads.authorization)
        if denied is not None:
            # the console (which says so in a header) shows its own login form: a Basic challenge would
            # make the browser open its password dialog over the page instead
            return error(denied, None if request.headers.get(CONSOLE_HEADER) else CHALLENGE)
        found = self.router.match(request.method, path)
        if found is None:
            return error(ApiError(404, "Controller not found"))
        route, params = found
        if self.disk_gate is not None and request.method not in ("GET", "HEAD") \
                and not path.endswith(READ_ACTIONS) and not self.disk_gate():
            return error(DISK_FULL)
        try:
            body = parse_body(await self._read_body(request)) if route.takes_body else None
            return await route.handler(Call(request, params, body))
        except ApiError as exc:
            return error(exc)
        except DomainError as exc:
            return error(api_error(exc))
        except ActorGone:
            return error(ApiError(404, "The requested resource no longer exists"))
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:
            log.exception("api handler failed method=%s path=%s", request.method, path)
            return error(ApiError(500, "Internal Server Error"))
