"""The WebRTC doors of the player port: OME's signalling WebSocket and WHEP (``?direction=whep``).

The router (``llhls/server.py``) hands over WebSocket requests and ``direction=whep`` HTTP requests.
Host routing picks the vhost (as for LL-HLS); the app's ``Publishers/WebRTC/CrossDomains`` gives
WHEP's CORS headers, since browser players post their offers from other origins. ``direction=send``
sockets and ``direction=whip`` requests belong to WebRTC ingest (:class:`kiln.media.rtc.ingest.RtcIngest`);
without one configured they are refused as OME refuses a disabled provider.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from kiln.config.cors import CorsPolicy
from kiln.media.publish.webrtc.publisher import PlayRefused, Target, WebRtcPublisher, webrtc_section
from kiln.media.publish.webrtc.session import SessionError, ViewerSession
from kiln.media.publish.webrtc.ws import SignallingSocket
from kiln.media.rtc import signalling as sig
from kiln.media.rtc.ingest import RtcIngest
from kiln.media.rtc.sdp import SdpError
from kiln.media.rtc.signalling import Candidate

log = logging.getLogger(__name__)

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
MAX_BODY = 64 * 1024
WHEP_METHODS = "OPTIONS, POST, PATCH, DELETE"
NO_INGEST = "WebRTC ingest is not enabled on this server"


class AppsByHost(Protocol):
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None: ...


def _cors_of(section: dict[str, Any] | None) -> CorsPolicy:
    cd = (section or {}).get("crossDomains")
    urls: Any = ()
    if isinstance(cd, dict):
        urls = cd.get("urls") if "urls" in cd else cd.get("url")
        urls = [urls] if isinstance(urls, str) else (urls or [])
    return CorsPolicy(tuple(str(u) for u in urls), {}, allow_methods=WHEP_METHODS)


class WebRtcEndpoints:
    def __init__(self, publisher: WebRtcPublisher, apps: AppsByHost, ingest: RtcIngest | None = None) -> None:
        self.publisher = publisher
        self.apps = apps
        self.ingest = ingest
        self.whep_sessions: dict[str, ViewerSession] = {}

    # -- WebSocket --
    async def websocket(self, ws: WebSocket, names: list[str]) -> None:
        query = ws.query_params
        host = ws.headers.get("host", "")
        if query.get("direction") == "send":
            if self.ingest is not None and len(names) == 2:
                await self.ingest.signalling(ws, host, names[0], names[1])
                return
            await _refuse_socket(ws, 404, NO_INGEST if self.ingest is None else "WebRTC ingest URLs are /app/stream")
            return
        if len(names) not in (2, 3) or not all(names):
            await _refuse_socket(ws, 404, sig.CANNOT_CREATE_OFFER)
            return
        found = self.apps.app_for_host(host, names[0])
        if found is None or found[1] is None:
            log.info("webrtc signalling refused host=%s app=%s reason=no such application", host, names[0])
            await _refuse_socket(ws, 404, sig.CANNOT_CREATE_OFFER)
            return
        vhost, app_config = found
        client = ws.client
        target = Target(vhost, names[0], names[1], names[2] if len(names) == 3 else None,
                        (client.host, client.port) if client else ("", 0), str(ws.url))
        await SignallingSocket(ws, self.publisher, target, app_config).serve()

    # -- HTTP (WHEP, and WHIP handed to ingest) --
    async def http(self, request: Request, names: list[str]) -> Response:
        direction = request.query_params.get("direction")
        if direction == "whip":
            if self.ingest is not None:
                return await self.ingest.whip(request)
            return Response(NO_INGEST.encode(), status_code=404, media_type="text/plain")
        host = request.headers.get("host", "")
        found = self.apps.app_for_host(host, names[0]) if names and names[0] else None
        vhost, app_config = found if found is not None else (None, None)
        cors = _cors_of(webrtc_section(app_config)).headers(request.headers.get("origin"),
                                                             request.headers.get("access-control-request-headers"))
        if cors:
            cors["Access-Control-Expose-Headers"] = "Location, ETag, Link, Accept-Patch, Accept-Post"
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={**cors, "Accept-Post": SDP, "Accept-Patch": TRICKLE,
                                                      "Access-Control-Allow-Private-Network": "true"})
        if request.method in ("PATCH", "DELETE"):
            return await self._existing(request, names, cors)
        if request.method != "POST":
            return _text(405, "WHEP takes POST, PATCH, DELETE and OPTIONS", cors, {"Allow": WHEP_METHODS})
        if len(names) not in (2, 3) or not all(names):
            return _text(404, "WHEP URLs are /app/stream[/playlist]?direction=whep", cors)
        if vhost is None or app_config is None:
            return _text(404, f"Could not find the application: [{vhost or host}/{names[0]}]", cors)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP:
            return _text(415, f"a WHEP offer is {SDP}", cors)
        body = await request.body()
        if len(body) > MAX_BODY:
            return _text(413, "offer too large", cors)
        client = request.client
        target = Target(vhost, names[0], names[1], names[2] if len(names) == 3 else None,
                        (client.host, client.port) if client else ("", 0), str(request.url))
        try:
            session, _ = await self.publisher.open(target, app_config)
        except PlayRefused as exc:
            return _text(exc.code, exc.text, cors)
        try:
            answer = await session.answer_offer(body.decode("utf-8", "replace"))
        except (SessionError, SdpError) as exc:
            await session.close(f"bad offer: {exc}")
            return _text(400, str(exc), cors)
        token = secrets.token_urlsafe(12)
        self.whep_sessions[token] = session
        session.ended_callbacks.append(lambda: self.whep_sessions.pop(token, None))
        self.publisher.negotiated(session)
        location = f"/{quote(names[0], safe='')}/{quote(names[1], safe='')}/{token}?direction=whep"
        response = Response(answer.encode(), status_code=201, media_type=SDP,
                            headers={**cors, "Location": location, "ETag": f'"{token}"'})
        for link in self.publisher.turn.link_headers():  # the TURN server (TcpRelay), as OME's WHIP/WHEP do
            response.headers.append("Link", link)
        return response

    async def _existing(self, request: Request, names: list[str], cors: dict[str, str]) -> Response:
        session = self.whep_sessions.get(names[-1]) if len(names) == 3 else None
        if session is None:
            return _text(404, "no such WHEP session", cors)
        if request.method == "DELETE":
            await session.close("WHEP DELETE")
            return Response(status_code=200, headers=cors)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != TRICKLE:
            return _text(415, f"a WHEP PATCH is {TRICKLE}", cors)
        body = (await request.body())[:MAX_BODY].decode("utf-8", "replace")
        mid: str | None = None
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:"):
                try:
                    await session.add_candidate(Candidate(line[2:], mid, 0 if mid is None else None))
                except SessionError as exc:
                    log.info("whep candidate ignored session=%s reason=%s", session.label, exc)
            elif line == "a=end-of-candidates":
                await session.add_candidate(Candidate(""))
        return Response(status_code=204, headers=cors)

    async def close(self) -> None:
        for session in list(self.whep_sessions.values()):
            await session.close("server shutdown")


async def _refuse_socket(ws: WebSocket, code: int, text: str) -> None:
    """As OME answers a socket it will not serve: the error frame, then the socket closed."""
    await ws.accept()
    try:
        await ws.send_text(sig.encode(sig.error_message(code, text)))
    finally:
        await ws.close(1000)


def _text(status: int, text: str, cors: dict[str, str], extra: dict[str, str] | None = None) -> Response:
    return Response(text.encode(), status_code=status, media_type="text/plain; charset=utf-8",
                    headers={**cors, **(extra or {})})
