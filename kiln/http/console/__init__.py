"""The web console: static files under ``/console/`` on the API port, with no authentication of their own.

The pages hold no data; every figure they show comes from the API, called by the browser with the
access token the user typed (kept in ``sessionStorage``, so it is gone with the tab). Serving them
unauthenticated is what lets the login form load at all; the API behind them stays closed.
A strict Content-Security-Policy keeps scripts to these files (no inline code, no CDN), since a
script injected into the page could read the token.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")
PREFIX = "/console"
CONSOLE_HEADER = "x-kiln-console"  # sent by the console's fetches: a 401 then comes without a Basic challenge

# LL-HLS previews come from another port (connect-src http: https:); hls.js feeds the video through a
# blob: MediaSource URL; its worker is off (enableWorker: false), so no worker-src is needed. WebRTC
# previews signal over a WebSocket to the signalling port (connect-src ws: wss:).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self' http: https: ws: wss:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache", "Server": "OvenMediaEngine"}


class ConsoleFiles(StaticFiles):
    """Starlette's static files with the console's security headers on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, with_headers)


async def _to_slash(request: object) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


def console_routes() -> list[BaseRoute]:
    """Routes to put before the API's catch-all: ``/console`` redirects, ``/console/…`` are the files."""
    return [Route(PREFIX, _to_slash, methods=["GET", "HEAD"]),
            Mount(PREFIX, app=ConsoleFiles(directory=STATIC, html=True), name="console")]


def is_console(method: str, path: str) -> bool:
    """Whether the API port hands this request to the console's routes: ``/console/…`` (any method: the files
    answer 405 for a write), and ``GET``/``HEAD /console`` (its redirect); anything else is the API's."""
    return path.startswith(PREFIX + "/") or (path == PREFIX and method in ("GET", "HEAD"))
