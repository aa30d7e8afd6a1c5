"""OME's WebRTC signalling on the player port (WebSocket ``/app/stream[/playlist]``), for playback.

The flow is OME's (media spec §1.2): ``request_offer`` → ``offer`` → ``answer`` → ``candidate``…,
then ``change_rendition`` or ``stop``. A refused viewer gets ``{code, error}`` and the socket is
closed ("Cannot create offer" for a stream that cannot be played, "Invalid ID" for a command with
another id or before the offer). The socket closes with its session (stream ended, ICE failed) and
the session with its socket. A socket that asks for nothing within the session timeout
(``Publishers/WebRTC/Timeout``) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kiln.media.publish.webrtc.abr import AutoAbr
from kiln.media.publish.webrtc.choose import Choice, Rendition, rendition_json
from kiln.media.publish.webrtc.publisher import PlayRefused, Target, WebRtcPublisher, session_timeout
from kiln.media.publish.webrtc.session import SessionError, ViewerSession
from kiln.media.rtc import signalling as sig

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
ABR_EVERY_S = 2.0


class SignallingSocket:
    """One player's socket and the session it opened (one at a time, as OvenPlayer uses it)."""

    def __init__(self, websocket: WebSocket, publisher: WebRtcPublisher, target: Target,
                 app_config: Mapping[str, Any] | None) -> None:
        self.ws = websocket
        self.publisher = publisher
        self.target = target
        self.app_config = app_config
        self.session: ViewerSession | None = None
        self.choice: Choice | None = None
        self.idle_s = session_timeout(app_config)  # a socket that asks for nothing this long is closed
        self._abr: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        await self.ws.accept()
        reason = "signalling socket closed"
        try:
            reason = await self._loop()
        except WebSocketDisconnect:
            pass
        except sig.SignallingError as exc:
            reason = f"{exc.code} {exc.text}"
            await self._error(exc.code, exc.text)
        finally:
            self._stop_abr()
            if self.session is not None:
                await self.session.close(reason)
            await self._close()

    async def _loop(self) -> str:
        while True:
            frame = await self._next_frame()
            if frame is None:
                return "session ended" if self.session is not None else "no request within the timeout"
            await self._handle(sig.parse_client_message(frame))

    async def _next_frame(self) -> str | bytes | None:
        """The next frame; None when the session ended or nothing came while there is no session."""
        receive = asyncio.ensure_future(self.ws.receive())
        waits: set[asyncio.Future[Any]] = {receive}
        ended = None
        if self.session is not None:
            ended = asyncio.ensure_future(self.session.ended.wait())
            waits.add(ended)
        try:
            done, _ = await asyncio.wait(waits, timeout=None if self.session is not None else self.idle_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        if receive not in done:
            return None
        message = receive.result()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def _handle(self, message: sig.ClientMessage) -> None:
        if isinstance(message, sig.Ping):
            return
        if isinstance(message, sig.RequestOffer):
            await self._offer()
            return
        session = self.session
        if session is None or getattr(message, "id", None) != session.id:
            raise sig.SignallingError(400, sig.INVALID_ID)
        if isinstance(message, sig.Answer):
            try:
                await session.accept_answer(message.sdp)
            except SessionError as exc:
                log.info("webrtc answer refused session=%s reason=%s", session.label, exc)
                raise sig.SignallingError(400, str(exc)) from None
            self.publisher.negotiated(session)
        elif isinstance(message, sig.Candidates):
            for candidate in message.candidates:
                try:
                    await session.add_candidate(candidate)
                except SessionError as exc:  # one bad candidate does not end a session that may still connect
                    log.info("webrtc candidate ignored session=%s reason=%s", session.label, exc)
        elif isinstance(message, sig.ChangeRendition):
            await self._change_rendition(session, message)
        elif isinstance(message, sig.Stop):
            await session.close("stopped by the player")
            self.session = None
            raise WebSocketDisconnect(CLOSE_NORMAL)

    async def _offer(self) -> None:
        self._stop_abr()
        if self.session is not None:
            await self.session.close("the player asked for a new offer")
            self.session = None
        try:
            session, choice = await self.publisher.open(self.target, self.app_config)
        except PlayRefused as exc:
            # OME answers a missing stream and a refused viewer alike: 404 "Cannot create offer" (the log says why)
            code = 404 if exc.code in (401, 404) else exc.code
            text = sig.CANNOT_CREATE_OFFER if code == 404 else f"{sig.CANNOT_CREATE_OFFER}: {exc.text}"
            log.info("webrtc offer refused vhost=%s app=%s stream=%s peer=%s:%d code=%d reason=%s", self.target.vhost,
                     self.target.app, self.target.stream, self.target.client[0], self.target.client[1], exc.code,
                     exc.text)
            raise sig.SignallingError(code, text) from None
        self.session, self.choice = session, choice
        sdp, candidates = await session.create_offer()
        ice_servers = self.publisher.turn.for_offer(self.ws.query_params.get("transport"))
        await self.ws.send_text(sig.encode(sig.offer_message(session.id, 0, sdp, candidates, ice_servers)))
        if self.target.playlist is not None or len(choice.renditions) > 1:
            renditions = [rendition_json(r) for r in choice.renditions]
            await self.ws.send_text(sig.encode(sig.playlist_notification(renditions, choice.auto)))
        if len(choice.renditions) > 1:
            session.auto = choice.auto
            self._abr = asyncio.get_running_loop().create_task(self._auto_abr(session, choice))

    def _stop_abr(self) -> None:
        if self._abr is not None:
            self._abr.cancel()
            self._abr = None

    async def _auto_abr(self, session: ViewerSession, choice: Choice) -> None:
        """webrtcAutoAbr: follow the viewer's REMB estimate while it is in auto mode."""
        meters = session.feed.output.meters

        def bitrate_of(rendition: Rendition) -> int:
            video = rendition.video
            if video is None:
                return 0
            meter = meters.get(video.id)
            return video.bitrate_conf or int(meter.bitrate_avg if meter is not None else 0)

        abr = AutoAbr(choice.renditions, bitrate_of)
        while session.closed_reason is None:
            await asyncio.sleep(ABR_EVERY_S)
            if not session.auto:
                continue
            wanted = abr.decide(session.rendition, session.remb.estimate())
            if wanted is not None and session.switch(wanted):
                await self.ws.send_text(sig.encode(sig.rendition_changed_notification(wanted.name, True)))

    async def _change_rendition(self, session: ViewerSession, message: sig.ChangeRendition) -> None:
        choice = self.choice
        if choice is None:
            return
        if message.rendition_name is not None:
            wanted = next((r for r in choice.renditions if r.name == message.rendition_name), None)
            if wanted is None:
                raise sig.SignallingError(404, f"no rendition {message.rendition_name!r}")
            session.auto = False
            if wanted is not session.rendition and not session.switch(wanted):
                raise sig.SignallingError(400, f"rendition {wanted.name!r} uses other codecs than this session")
        if message.auto is not None:
            session.auto = message.auto
        await self.ws.send_text(sig.encode(sig.rendition_changed_notification(session.rendition.name,
                                                                              session.auto)))

    async def _error(self, code: int, text: str) -> None:
        with contextlib.suppress(Exception):
            if self.ws.client_state is WebSocketState.CONNECTED:
                await self.ws.send_text(sig.encode(sig.error_message(code, text)))

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            if self.ws.client_state is WebSocketState.CONNECTED:
                await self.ws.close(CLOSE_NORMAL)
