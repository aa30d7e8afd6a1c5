"""WebRTC ingest as the player port sees it (:class:`kiln.media.rtc.ingest.RtcIngest`): OME's signalling
with ``direction=send`` and WHIP (``?direction=whip``).

Both end in a :class:`PublishSession` bound to a LiveStream that the control plane opened through the
ingest contract (provider ``webrtc``, sourceType ``WebRTC``). The order keeps refusals cheap and
clean: the offer is checked and its codecs chosen first (an unusable offer creates nothing), then
admission (SignedPolicy, AdmissionWebhooks: protocol ``WebRTC``), then negotiation, then the stream
(a refused name closes the fresh peer connection). The app's ``Providers/WebRTC`` gives ``Timeout``
(no media for that long ends the stream) and ``CrossDomains`` (WHIP is posted from other origins).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from kiln.admission.closing import notify_closed
from kiln.admission.contract import Admission, AdmissionRequest, Admitter, Direction, OpenDoor
from kiln.config.cors import CorsPolicy
from kiln.config.values import as_int
from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal, StreamOpener
from kiln.media.ingest.webrtc.codecs import MediaPlan, NoUsableCodec, plan_for_offer
from kiln.media.ingest.webrtc.session import PublishSession
from kiln.media.publish.llhls.publisher import cors_urls
from kiln.media.rtc import signalling as sig
from kiln.media.rtc.ice_restart import IceRestartRefused
from kiln.media.rtc.sdp import SdpError, candidates_of, check_sdp
from kiln.media.rtc.sdpfrag import IceFragment, SdpFragError, parse_fragment
from kiln.media.rtc.turn.plan import TurnOffer
from kiln.media.rtc.udp_mux import PortPool
from kiln.metrics.prometheus import RtcIngestFigures

log = logging.getLogger(__name__)

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
DEFAULT_TIMEOUT_MS = 30000
OFFER_WAIT_S = 30.0   # a signalling socket that asks for nothing is closed after this
DUPLICATE = "Stream already exists"
STATUS = {Refusal.NOT_FOUND: 404, Refusal.FORBIDDEN: 403, Refusal.CONFLICT: 409, Refusal.REFUSED: 403}


class AppsByHost(Protocol):
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        """The vhost a Host header selects (None: none) and that app's OME JSON (None: no such app)."""


class Refused(Exception):
    """A publish refused before it began; ``status`` is the HTTP-like code the client gets."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class Target:
    vhost: str
    app: str
    stream: str
    url: str                    # as OME signs it: scheme://host:port/app/stream?query
    peer: tuple[str, int]
    provider: dict[str, Any]    # the app's Providers/WebRTC section ({} when absent)


def _provider(app_config: dict[str, Any] | None) -> dict[str, Any]:
    providers = app_config.get("providers") if isinstance(app_config, dict) else None
    section = providers.get("webrtc") if isinstance(providers, dict) else None
    return section if isinstance(section, dict) else {}


def _disabled(found: tuple[str, dict[str, Any] | None] | None, app: str) -> str | None:
    """Why an existing app takes no WebRTC publisher (its Providers has no WebRTC), else None; OME enables
    a provider by its element being there. Missing apps are answered later, as OME answers them."""
    if found is None or found[1] is None:
        return None
    providers = found[1].get("providers")
    if isinstance(providers, dict) and isinstance(providers.get("webrtc"), dict):
        return None
    return f"WebRTC ingest is not enabled for the application: [{found[0]}/{app}]"


class WebRtcIngest:
    def __init__(self, opener: StreamOpener, apps: AppsByHost, *, port: int,
                 pool: Callable[[], PortPool | None] = lambda: None, admission: Admitter | None = None) -> None:
        self.opener = opener
        self.apps = apps
        self.port = port
        self.pool = pool
        self.admission: Admitter = admission or OpenDoor()
        self.turn = TurnOffer((), False)  # the TURN server offers name (TcpRelay), set at start when configured
        self.sessions: dict[str, PublishSession] = {}
        self._etags: dict[str, str] = {}
        self._next_id = 1

    # -- shared steps -----------------------------------------------------------------------------
    def _target(self, host: str, app: str, stream: str, query: str, peer: tuple[str, int], scheme: str) -> Target:
        found = self.apps.app_for_host(host, app)
        if found is None:
            raise Refused(404, f"no virtual host matches host {host!r}")
        vhost, app_config = found
        if app_config is None:
            raise Refused(404, f"application not found: {vhost}/{app}")
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        url = f"{scheme}://{name or '127.0.0.1'}:{self.port}/{app}/{stream}" + (f"?{query}" if query else "")
        return Target(vhost, app, stream, url, peer, _provider(app_config))

    async def _admit(self, target: Target) -> tuple[Target, AdmissionRequest, Admission]:
        ask = AdmissionRequest("WebRTC", Direction.INCOMING, target.url, target.peer, target.vhost, target.app,
                               target.stream)
        admission = await self.admission.admit(ask)
        if not admission.allowed:
            raise Refused(401, f"access denied: {admission.reason}")
        if admission.new_url:
            parts = urlsplit(admission.new_url)
            names = [s for s in parts.path.split("/") if s]
            found = self.apps.app_for_host(parts.netloc, names[0]) if len(names) >= 2 else None
            if found is None or found[1] is None:
                raise Refused(404, "admission redirect names no stream of this server")
            target = Target(found[0], names[0], names[1], target.url, target.peer, _provider(found[1]))
        return target, ask, admission

    def _session(self, target: Target, ask: AdmissionRequest, admission: Admission) -> PublishSession:
        ident = secrets.token_hex(8)
        timeout_ms = as_int(target.provider.get("timeout"), DEFAULT_TIMEOUT_MS) or DEFAULT_TIMEOUT_MS
        lease: list[asyncio.TimerHandle] = []

        def gone(session: PublishSession, reason: str) -> None:
            self.sessions.pop(session.id, None)
            self._etags.pop(session.id, None)
            for timer in lease:
                timer.cancel()
            if session.stream is not None:
                notify_closed(self.admission, ask)

        session = PublishSession(ident, f"{target.vhost}/{target.app}/{target.stream}", self.pool(),
                                 timeout_s=timeout_ms / 1000, on_gone=gone)
        left = admission.seconds_left(int(time.time() * 1000))
        if left is not None:
            lease.append(asyncio.get_running_loop().call_later(left, session.close, "admission expired"))
        return session

    async def _open(self, session: PublishSession, target: Target) -> None:
        request = PublishRequest(target.vhost, target.app, target.stream, provider="webrtc", source_type="WebRTC",
                                 source_url=target.url, close_source=session.close)
        try:
            stream = await self.opener.open_stream(request)
        except PublishRejected as exc:
            session.close(f"refused: {exc.reason}")
            status = STATUS.get(exc.kind, 403)
            if exc.reason.startswith(DUPLICATE):  # the supervisor's refusal of a live name (OME's text)
                status = 409
            raise Refused(status, exc.reason) from exc
        session.bind(stream)
        self.sessions[session.id] = session
        log.info("webrtc publish accepted session=%s vhost=%s app=%s stream=%s peer=%s:%s", session.id,
                 stream.vhost, stream.app, stream.name, target.peer[0], target.peer[1])

    def figures(self) -> list[RtcIngestFigures]:
        """Each live publisher's packets, NACKs, PLIs and layer retransmissions, for /metrics (at scrape time)."""
        out = []
        for session in list(self.sessions.values()):
            stream = session.stream
            if stream is not None:
                stats = session.stats()
                out.append(RtcIngestFigures(stream.vhost, stream.app, stream.name, stats["packets"], stats["nacks"],
                                            stats["plis"], stats["rtx"]))
        return out

    async def close(self) -> None:
        """Server shutdown: end every publisher and release its peer connection."""
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close("server shutdown")
        for session in sessions:
            await session.closed()

    # -- WHIP -------------------------------------------------------------------------------------
    def _cors(self, request: Request, provider: dict[str, Any] | None) -> dict[str, str]:
        urls, headers = cors_urls(provider) if provider else ((), {})
        policy = CorsPolicy(urls or ("*",), headers, allow_methods="POST, PATCH, DELETE, OPTIONS")
        out = policy.headers(request.headers.get("origin"), request.headers.get("access-control-request-headers")
                             or "Content-Type, Authorization, If-Match")
        if "Access-Control-Allow-Origin" in out:
            out["Access-Control-Expose-Headers"] = "Location, ETag, Link, Accept-Patch"
        return out

    async def whip(self, request: Request) -> Response:
        names = _names(request)
        host = request.headers.get("host", "")
        found = self.apps.app_for_host(host, names[0]) if names else None
        cors = self._cors(request, _provider(found[1]) if found is not None else None)
        try:
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={**cors, "Accept-Post": SDP, "Accept-Patch": TRICKLE})
            if request.method == "POST" and len(names) == 2:
                disabled = _disabled(found, names[0])
                if disabled is not None:
                    raise Refused(404, disabled)
                return await self._whip_post(request, names[0], names[1], host, cors)
            if request.method in ("PATCH", "DELETE") and len(names) == 3:
                return await self._whip_resource(request, names[2], cors)
            if request.method == "POST":
                raise Refused(404, "WHIP endpoints are /<app>/<stream>?direction=whip")
            raise Refused(405 if len(names) == 2 else 404, "WHIP sessions are /<app>/<stream>/<session>?direction=whip")
        except Refused as exc:
            log.info("whip refused method=%s path=%s status=%d reason=%s", request.method, request.url.path,
                     exc.status, exc.text)
            return Response(exc.text.encode(), status_code=exc.status, media_type="text/plain", headers=cors)

    async def _whip_post(self, request: Request, app: str, stream: str, host: str, cors: dict[str, str]) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP:
            raise Refused(415, f"a WHIP offer is {SDP}")
        offer = await _body_text(request)
        plans = _plans(offer)
        client = request.client
        query = request.url.query  # byte for byte: SignedPolicy signs the URL as the client sent it
        target = self._target(host, app, stream, query, (client.host, client.port) if client else ("", 0), "http")
        target, ask, admission = await self._admit(target)
        session = self._session(target, ask, admission)
        try:
            answer = await session.answer(offer, plans)
        except Exception as exc:  # aiortc refuses an SDP it cannot apply with assorted exception types
            session.close("bad offer")
            raise Refused(400, f"the offer cannot be applied: {exc}") from exc
        await self._open(session, target)
        etag = f'"{secrets.token_hex(8)}"'
        self._etags[session.id] = etag
        location = f"/{target.app}/{target.stream}/{session.id}?direction=whip"
        headers = {**cors, "Location": location, "ETag": etag, "Accept-Patch": TRICKLE}
        response = Response(answer.encode(), status_code=201, media_type=SDP, headers=headers)
        for link in self.turn.link_headers():  # the TURN server (TcpRelay), as OME's WHIP does
            response.headers.append("Link", link)
        return response

    async def _whip_resource(self, request: Request, ident: str, cors: dict[str, str]) -> Response:
        session = self.sessions.get(ident)
        if session is None:
            raise Refused(404, f"no WHIP session {ident}")
        if request.method == "DELETE":
            session.close("deleted by the WHIP client")
            return Response(status_code=200, headers=cors)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != TRICKLE:
            raise Refused(415, f"a WHIP PATCH is {TRICKLE}")
        match = request.headers.get("if-match")
        if match not in (None, "*", self._etags.get(ident)):
            raise Refused(412, "If-Match does not name this session's ETag")
        try:
            fragment = parse_fragment(await _body_text(request))
            restart = fragment.restarts(session.remote_ufrag)
        except SdpFragError as exc:
            raise Refused(400, str(exc)) from exc
        if restart:
            return await self._whip_restart(session, fragment, match, cors)
        for found in fragment.candidates:
            try:
                await session.add_candidate(found.text, found.mid, found.mline_index)
            except Exception as exc:  # a candidate aiortc cannot parse is the client's error, not ours
                raise Refused(400, f"bad candidate {found.text!r}: {exc or type(exc).__name__}") from exc
        if fragment.end_of_candidates:
            await session.end_of_candidates()
        return Response(status_code=204, headers=cors)

    async def _whip_restart(self, session: PublishSession, fragment: IceFragment, match: str | None,
                            cors: dict[str, str]) -> Response:
        """RFC 9725 §4.3.2: new credentials asked with ``If-Match: *`` → 200, Kiln's new credentials and
        candidates, a new ETag. A restart that cannot be done leaves the session as it was."""
        if match is None:
            raise Refused(428, "an ICE restart is sent with If-Match: *")
        if match != "*":
            raise Refused(422, "the fragment's ice-ufrag is not this session's "
                               "(an ICE restart is sent with If-Match: *)")
        assert fragment.ufrag is not None and fragment.pwd is not None  # restarts() said so
        try:
            answer = await session.restart_ice(fragment.ufrag, fragment.pwd, fragment.candidates)
            if fragment.end_of_candidates:
                await session.end_of_candidates()
        except IceRestartRefused as exc:
            raise Refused(409, f"ICE restart refused: {exc}") from exc
        except ValueError as exc:  # a candidate aiortc cannot parse (read before anything is restarted)
            raise Refused(400, f"bad candidate: {exc or type(exc).__name__}") from exc
        etag = f'"{secrets.token_hex(8)}"'
        self._etags[session.id] = etag
        return Response(answer.encode(), status_code=200, media_type=TRICKLE, headers={**cors, "ETag": etag})

    # -- OME signalling, direction=send ----------------------------------------------------------------
    async def signalling(self, websocket: WebSocket, host: str, app: str, stream: str) -> None:
        await websocket.accept()
        disabled = _disabled(self.apps.app_for_host(host, app), app)
        if disabled is not None:  # said at once: nothing to wait for
            log.info("webrtc ingest signalling refused app=%s stream=%s reason=%s", app, stream, disabled)
            await _send(websocket, sig.error_message(404, disabled))
            await _close(websocket, 1000)
            return
        client = websocket.client
        peer = (client.host, client.port) if client else ("", 0)
        query = websocket.url.query
        session: PublishSession | None = None
        ident = 0
        try:
            while True:
                if session is None:
                    frame = await asyncio.wait_for(_frame(websocket), OFFER_WAIT_S)
                else:
                    got = await _receive_until_closed(websocket, session)
                    if got is None:
                        await _close(websocket, 1000)
                        return
                    frame = got
                message = sig.parse_client_message(frame)
                if isinstance(message, sig.RequestOffer):
                    if session is not None:
                        raise sig.SignallingError(400, "offer already sent")
                    ident, self._next_id = self._next_id, self._next_id + 1
                    session = await self._send_offer(websocket, host, app, stream, query, peer, ident)
                elif isinstance(message, sig.Ping):
                    continue
                elif session is None or getattr(message, "id", ident) != ident:
                    raise sig.SignallingError(400, sig.INVALID_ID)
                elif isinstance(message, sig.Answer):
                    try:
                        await session.accept_answer(message.sdp)
                    except Exception as exc:  # aiortc's own exceptions for an answer it cannot apply
                        raise sig.SignallingError(400, f"the answer cannot be applied: {exc}") from exc
                elif isinstance(message, sig.Candidates):
                    for c in message.candidates:
                        try:
                            await session.add_candidate(c.candidate, c.sdp_mid, c.sdp_mline_index)
                        except Exception as exc:
                            raise sig.SignallingError(400, f"bad candidate: {exc or type(exc).__name__}") from exc
                elif isinstance(message, sig.Stop):
                    session.close("stopped by the client")
                    await _close(websocket, 1000)
                    return
        except sig.SignallingError as exc:
            log.info("webrtc ingest signalling error app=%s stream=%s code=%d error=%s", app, stream, exc.code,
                     exc.text)
            await _send(websocket, sig.error_message(exc.code, exc.text))
            await _close(websocket, 1000)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass  # the client left (or never asked): the session ends below
        finally:
            if session is not None:
                session.close("signalling closed")

    async def _send_offer(self, websocket: WebSocket, host: str, app: str, stream: str, query: str,
                          peer: tuple[str, int], ident: int) -> PublishSession:
        try:
            target = self._target(host, app, stream, query, peer, "ws")
            target, ask, admission = await self._admit(target)
        except Refused as exc:
            log.info("webrtc ingest refused app=%s stream=%s reason=%s", app, stream, exc.text)
            raise sig.SignallingError(404, sig.CANNOT_CREATE_OFFER) from exc
        session = self._session(target, ask, admission)
        try:
            sdp = await session.offer()
            await self._open(session, target)
        except Refused as exc:
            session.close(exc.text)
            raise sig.SignallingError(exc.status, exc.text) from exc
        transport = next(iter(parse_qs(query).get("transport") or []), None)
        await _send(websocket, sig.offer_message(ident, 0, sdp, candidates_of(sdp), self.turn.for_offer(transport)))
        return session


def _names(request: Request) -> list[str]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("utf-8", "replace").partition("?")[0]
    return [unquote(p) for p in path.split("/") if p]


async def _body_text(request: Request) -> str:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise Refused(413, "body too large")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None


def _plans(offer: str) -> list[MediaPlan]:
    try:
        check_sdp(offer)
        return plan_for_offer(offer)
    except (SdpError, NoUsableCodec) as exc:
        raise Refused(400, str(exc)) from exc
    except Exception as exc:  # aiortc's SDP parser raises bare errors on garbage
        raise Refused(400, f"the offer is not a valid SDP: {exc.__class__.__name__}") from exc


async def _frame(websocket: WebSocket) -> str | bytes:
    """The next text or binary frame (the codec reads either; Starlette's receive_text fails on binary)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    return text if text is not None else message.get("bytes") or b""


async def _receive_until_closed(websocket: WebSocket, session: PublishSession) -> str | bytes | None:
    """The next frame, or None when the session ended first (timeout, DELETE /streams, peer failure)."""
    receive = asyncio.ensure_future(_frame(websocket))
    ended = asyncio.ensure_future(session.ended.wait())
    try:
        done, _ = await asyncio.wait({receive, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if receive in done:
        return receive.result()
    receive.cancel()
    return None


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    try:
        await websocket.send_text(sig.encode(message))
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _close(websocket: WebSocket, code: int) -> None:
    try:
        await websocket.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass
