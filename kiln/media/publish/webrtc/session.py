"""One WebRTC viewer: an aiortc peer connection that sends the tracks of one rendition.

The offer (OME signalling: the server offers) or the answer (WHEP: the player offers) is made with
codec preferences set on each transceiver before negotiation, since aiortc chooses by those and
not by the remote's order: H.264 for H.264 (pre-encoded packets, never decoded), VP8, Opus.
ICE runs on Kiln's shared UDP ports. Once DTLS is up the session becomes a :class:`~.feed.Viewer` of its
feed, which sends the media itself (header, SRTP with this connection's keys, ``sendto`` to the
address ICE selected); aiortc keeps ICE with consent freshness, DTLS and RTCP (its SR from what Kiln
sent), and hands NACK (answered from the feed's cache) and PLI/FIR (a rate-bounded keyframe request)
to Kiln. The session ends, and frees its viewer, transport and port
routes, on ``close`` (stop, socket closed, DELETE), when ICE or DTLS fail, when the viewer answers no
consent check for ``timeout`` seconds (a viewer that vanished without a word), or when it is not
connected ``timeout`` seconds after it began.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc.clock import current_ntp_time
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket
from aiortc.sdp import candidate_from_sdp

from kiln.media.model import Codec, MediaKind, Track
from kiln.media.publish.webrtc.choose import Rendition
from kiln.media.publish.webrtc.feed import Feed, Viewer
from kiln.media.rtc.aiortc_send import (
    AiortcChanged,
    RouteFinder,
    SenderReport,
    intercept_rtcp,
    negotiated,
    srtp_protect,
)
from kiln.media.rtc.connection import new_peer_connection, pool_context
from kiln.media.rtc.remb import RembMeter
from kiln.media.rtc.rtp_out import TrackOut
from kiln.media.rtc.sdp import candidates_of, check_sdp
from kiln.media.rtc.signalling import Candidate
from kiln.media.rtc.udp_mux import PortPool

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 20000
MIME = {Codec.H264: "video/H264", Codec.VP8: "video/VP8", Codec.OPUS: "audio/opus"}


class SessionError(Exception):
    """The peer's description or candidate was refused; the text says why."""


class IdleTrack(MediaStreamTrack):
    """The track aiortc's sender is given: it yields no frame (the feed sends the media), so the sender's RTP
    task waits while its RTCP task reports; it ends with the session."""

    def __init__(self, kind: str, ended: asyncio.Event) -> None:
        super().__init__()
        self.kind = kind
        self._ended = ended

    async def recv(self) -> Any:
        await self._ended.wait()
        self.stop()
        raise MediaStreamError


@dataclass
class SessionCounters:
    """Bytes sent (RTP payload) and when; the owner moves the stats tree from them. The feed's send thread writes
    them, the loop reads them: the loop keeps its own ``reported`` (no read-modify-write shared by both)."""

    bytes_out: int = 0
    reported: int = 0                                      # of bytes_out, what the stats tree has (the loop's)
    last_sent: float = 0.0
    latency_ms: list[float] = field(default_factory=list)  # live frames: arrival in Kiln -> this viewer's packets out
    resent: int = 0                                        # packets resent for NACKs
    keyframe_requests: int = 0                             # PLI/FIR heard

    @property
    def unreported(self) -> int:
        return self.bytes_out - self.reported

    def percentile(self, q: float) -> float:
        if not self.latency_ms:
            return 0.0
        ordered = sorted(self.latency_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ViewerSession:
    def __init__(self, ident: int, label: str, feed: Feed, rendition: Rendition, pool: PortPool | None,
                 timeout_s: float, on_closed: Callable[[ViewerSession, str], None]) -> None:
        self.id = ident
        self.label = label
        self.feed = feed
        self.rendition = rendition
        self.pool = pool
        self.timeout_s = timeout_s
        self.counters = SessionCounters()
        self.created = time.monotonic()
        self.connected_at: float | None = None
        self.closed_reason: str | None = None
        self._on_closed = on_closed
        self.auto = False
        self.remb = RembMeter()  # the viewer's bandwidth estimate, for webrtcAutoAbr
        self.viewer: Viewer | None = None   # once DTLS is up: the feed sends to it
        self._transceivers: list[tuple[str, RTCRtpTransceiver]] = []
        self._reports: dict[str, SenderReport] = {}
        self._negotiated = False
        self._media_end = asyncio.Event()
        self.pc: RTCPeerConnection = new_peer_connection()
        self._watch: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()  # set once closed: the signalling socket closes with it
        self.ended_callbacks: list[Callable[[], object]] = []  # e.g. WHEP forgets its token
        self.pc.on("connectionstatechange", self._state_changed)
        feed.join()

    # -- negotiation --
    def _add_transceivers(self, kinds: list[str] | None = None) -> None:
        for track in self.rendition.tracks:
            kind = "video" if track.kind is MediaKind.VIDEO else "audio"
            if kinds is not None and kind not in kinds:
                continue
            transceiver = self.pc.addTransceiver(IdleTrack(kind, self._media_end), direction="sendonly")
            transceiver.setCodecPreferences(_preferences(kind, track))
            self._transceivers.append((kind, transceiver))
            if kind == "video":
                self.remb.attach(transceiver.sender)

    async def create_offer(self) -> tuple[str, list[Candidate]]:
        """The server's offer (OME signalling) and its candidates."""
        with pool_context(self.pool, self.timeout_s):
            self._add_transceivers()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._start_watch()
        sdp = self.pc.localDescription.sdp
        return sdp, candidates_of(sdp)

    async def accept_answer(self, sdp: str) -> None:
        try:
            check_sdp(sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # aiortc's parser raises bare errors
            raise SessionError(f"the answer cannot be used: {exc or type(exc).__name__}") from None
        self._begin()

    async def answer_offer(self, sdp: str) -> str:
        """WHEP: the player's offer in, Kiln's answer (with its candidates) out."""
        try:
            check_sdp(sdp)
            kinds = [line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")]
            with pool_context(self.pool, self.timeout_s):
                self._add_transceivers([k for k in ("video", "audio") if k in kinds])
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise SessionError(f"the offer cannot be answered: {exc or type(exc).__name__}") from None
        self._start_watch()
        self._begin()
        return str(self.pc.localDescription.sdp)

    async def add_candidate(self, candidate: Candidate) -> None:
        """A remote candidate; an empty one ends the list. A malformed one is refused (SessionError)."""
        text = candidate.candidate.strip()
        if not text:
            await self.pc.addIceCandidate(None)
            return
        if text.startswith("a="):
            text = text[2:]
        try:
            ice = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        except (ValueError, IndexError) as exc:
            raise SessionError(f"candidate cannot be read: {exc}") from None
        ice.sdpMid = candidate.sdp_mid
        ice.sdpMLineIndex = candidate.sdp_mline_index
        try:
            await self.pc.addIceCandidate(ice)
        except (ValueError, KeyError) as exc:
            raise SessionError(f"candidate refused: {exc}") from None

    def switch(self, rendition: Rendition) -> bool:
        """Send ``rendition`` from its next keyframe on, over the negotiated tracks; False (logged) when its
        codecs differ from the negotiated ones or it lacks a kind the session sends."""
        old = {_kind(t): t.codec for t in self.rendition.tracks}
        new = {_kind(t): t.codec for t in rendition.tracks}
        if old != new:
            log.info("webrtc rendition change refused session=%s from=%s to=%s reason=codecs differ", self.label,
                     self.rendition.name, rendition.name)
            return False
        self.rendition = rendition
        if self.viewer is not None:  # else it starts on this rendition once connected
            self.feed.retarget(self.viewer, _kinds(rendition))
        self.feed.request_keyframe("webrtc rendition change")  # the new track moves at its next keyframe
        log.info("webrtc rendition changed session=%s rendition=%s", self.label, rendition.name)
        return True

    def _begin(self) -> None:
        """The peer's description is in: media flows once DTLS is up (now, if it already is)."""
        self._negotiated = True
        if self.connected_at is not None:
            self._start_sending()

    def _start_sending(self) -> None:
        """Become a viewer of the feed: the negotiated SSRCs and payload types, this connection's SRTP keys and
        ICE route, RTCP feedback to Kiln; the feed then sends the GOP at once, and live."""
        if self.viewer is not None or self.closed_reason is not None or not self._negotiated or not self._transceivers:
            return
        dtls = self._transceivers[0][1].sender.transport
        try:
            protect = srtp_protect(dtls)
            if protect is None:
                raise ValueError("DTLS made no SRTP keys")
            outs = {kind: TrackOut(negotiated(t), protect) for kind, t in self._transceivers}
            self._reports = {kind: SenderReport(t.sender) for kind, t in self._transceivers}
            route = RouteFinder(dtls)
        except (AiortcChanged, ValueError) as exc:
            log.error("webrtc session cannot send session=%s id=%d error=%s", self.label, self.id, exc)
            asyncio.get_running_loop().create_task(self.close(f"cannot send: {exc}"))
            return
        for kind, transceiver in self._transceivers:
            intercept_rtcp(transceiver.sender, self._feedback(kind))
        self.viewer = Viewer(_kinds(self.rendition), outs, route, self._sent)
        self.feed.add(self.viewer)

    def _feedback(self, kind: str) -> Callable[[Any], bool]:
        """The viewer's RTCP feedback on ``kind``: NACK answered from the feed's cache, PLI/FIR a keyframe request
        (the output bounds the rate and never makes a passed-through input re-encode); the rest to aiortc."""
        def handle(packet: Any) -> bool:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                if self.viewer is not None:
                    self.feed.nack(self.viewer, kind, list(packet.lost), self._resent)
                return True
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.counters.keyframe_requests += 1
                self.feed.request_keyframe("webrtc viewer PLI")
                return True
            return False
        return handle

    @property
    def skips(self) -> int:
        """Times this viewer's socket would not take a packet (its video resumed at a keyframe)."""
        return self.viewer.skips if self.viewer is not None else 0

    # -- lifecycle --
    def _start_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._deadline())

    async def _deadline(self) -> None:
        await asyncio.sleep(self.timeout_s)
        if self.connected_at is None and self.closed_reason is None:
            await self.close(f"not connected within {self.timeout_s:.0f} s (ICE/DTLS did not complete)")

    async def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            log.info("webrtc session connected session=%s id=%d after_ms=%.0f", self.label, self.id,
                     (self.connected_at - self.created) * 1000)
            self._start_sending()
        elif state in ("failed", "closed") and self.closed_reason is None:
            await self.close("ICE/DTLS failed (consent lost or peer gone)" if state == "failed" else "peer closed")

    def _resent(self, packets: int) -> None:
        self.counters.resent += packets  # only the feed's send thread adds to it

    def _sent(self, kind: str, out: TrackOut, size: int, arrival: float) -> None:
        c = self.counters
        c.bytes_out += size
        c.last_sent = time.monotonic()
        report = self._reports.get(kind)
        if report is not None:
            report.update(current_ntp_time(), out.last_timestamp, out.packets, out.octets)
        if arrival and len(c.latency_ms) < LATENCY_SAMPLES:
            c.latency_ms.append((c.last_sent - arrival) * 1000)

    async def close(self, reason: str) -> None:
        """Idempotent: stop sending, free the tap, the ICE transport (its port routes) and the watch."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self.feed.leave(self.viewer)
        self._media_end.set()  # the idle tracks end: aiortc's senders stop
        watch, self._watch = self._watch, None
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
        try:
            await self.pc.close()
        except Exception as exc:  # aiortc teardown of a half-negotiated connection; nothing left to free
            log.debug("webrtc session close error session=%s error=%r", self.label, exc)
        self.ended.set()
        for callback in self.ended_callbacks:
            callback()
        self._on_closed(self, reason)


def _kind(track: Track) -> str:
    return "video" if track.kind is MediaKind.VIDEO else "audio"


def _kinds(rendition: Rendition) -> dict[int, str]:
    return {t.id: _kind(t) for t in rendition.tracks}


def _preferences(kind: str, track: Track) -> list:  # type: ignore[type-arg]
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = MIME[track.codec].lower()
    chosen = [c for c in caps if c.mimeType.lower() == wanted]
    chosen += [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen
