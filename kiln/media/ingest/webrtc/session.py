"""One WebRTC publisher: its aiortc peer connection, the taps on its receivers, and its Kiln stream.

A session is made for a WHIP POST or an OME ``request_offer`` with ``direction=send``. It negotiates
(codecs chosen by ``codecs.py``), is bound to the LiveStream the control plane opened for it, and
ends exactly once, whatever ends it: the client (WHIP DELETE, ``stop``, socket closed), the peer
connection failing, no media for the provider's timeout, DELETE /streams, or server shutdown. A WHIP
session can restart ICE (``restart_ice``): same session, same stream, DTLS and SRTP untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcicetransport import candidate_to_aioice
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.sdp import candidate_from_sdp

from kiln.media.ingest.webrtc.codecs import MediaPlan, receive_preferences
from kiln.media.ingest.webrtc.pipeline import IngestPipeline
from kiln.media.ingest.webrtc.simulcast import RID_URI, RRID_URI, Layers, accept_layers, offered_layers
from kiln.media.ingest.webrtc.tap import ReceiverTap
from kiln.media.model import MediaKind, Packet, Track
from kiln.media.rtc.connection import PooledConnection, new_peer_connection, pool_context
from kiln.media.rtc.ice_restart import IceRestartRefused
from kiln.media.rtc.sdpfrag import FragmentCandidate, first_media, restart_answer
from kiln.media.rtc.udp_mux import PortPool
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


class PublishSession:
    def __init__(self, ident: str, label: str, pool: PortPool | None, *, timeout_s: float,
                 on_gone: Callable[[PublishSession, str], None]) -> None:
        self.id = ident
        self.label = label  # vhost/app/stream, for logs
        self.pool = pool
        self.timeout_s = timeout_s
        self.on_gone = on_gone
        self.pc: RTCPeerConnection = new_peer_connection()
        self.ice: PooledConnection | None = None  # the bundle's ICE connection (on the shared ports)
        self._remote_ended = False  # end-of-candidates heard for the current ICE generation (after a restart)
        self.taps: list[ReceiverTap] = []
        self.pipeline: IngestPipeline | None = None
        self.video_layers = 1  # simulcast layers accepted: the stream waits (a little) for each one
        self.stream: LiveStream | None = None
        self.created = time.monotonic()
        self.closed_reason: str | None = None
        self.loop = asyncio.get_running_loop()
        self._watch: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            state = self.pc.connectionState
            if state in ("failed", "closed"):
                self.close(f"peer connection {state}")

    # -- negotiation ------------------------------------------------------------------------------
    async def answer(self, offer: str, plans: list[MediaPlan]) -> str:
        """WHIP: the publisher's offer → Kiln's answer (candidates included: nothing to trickle)."""
        with pool_context(self.pool) as made:
            for plan in plans:
                transceiver = self.pc.addTransceiver(plan.kind, direction="recvonly")
                transceiver.setCodecPreferences(plan.preferences)
            await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            layers = offered_layers(offer)
            self._tap_all(layers)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.ice = made.connections[0] if made.connections else None
        self._read_rid_extensions(layers)
        if layers:
            log.info("webrtc publish simulcast session=%s layers=%s", self.id,
                     ",".join(f"{mid}:{'/'.join(lay.rids)}" for mid, lay in layers.items()))
        return accept_layers(str(self.pc.localDescription.sdp), layers)

    def _read_rid_extensions(self, layers: dict[str, Layers]) -> None:
        """aiortc does not negotiate the RTP stream id extensions (simulcast.py answers them): its bundle
        transport is told their ids, so packets show the rid of a layer and the rid an RTX stream repairs."""
        wanted = [RTCRtpHeaderExtensionParameters(id=ident, uri=uri) for lay in layers.values()
                  for ident, uri in ((lay.rid_extension, RID_URI), (lay.rrid_extension, RRID_URI)) if ident is not None]
        video = next((t for t in self.pc.getTransceivers() if t.kind == "video"), None)
        if wanted and video is not None:
            extensions: Any = video.receiver.transport._rtp_header_extensions_map  # aiortc 1.16 (pinned)
            extensions.configure(RTCRtpParameters(headerExtensions=wanted))

    async def offer(self) -> str:
        """OME signalling: Kiln's recvonly offer (H.264 preferred, VP8, Opus)."""
        with pool_context(self.pool):
            for kind in ("video", "audio"):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(receive_preferences(kind))
            self._tap_all()
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept_answer(self, sdp: str) -> None:
        with pool_context(self.pool):
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def add_candidate(self, line: str, mid: str | None, index: int | None) -> None:
        candidate = _candidate(line, mid, index)
        if candidate is not None:
            await self._add(candidate)

    async def _add(self, candidate: RTCIceCandidate) -> None:
        if self.ice is not None and self.ice.restarts:
            # a restarted generation takes candidates again, whatever aiortc heard before (bundle: one transport)
            if not self._remote_ended:
                await self.ice.add_remote_candidate(candidate_to_aioice(candidate))
            return
        await self.pc.addIceCandidate(candidate)

    async def end_of_candidates(self) -> None:
        """The client gathered all its candidates of the current (restarted) generation."""
        if self.ice is not None and self.ice.restarts and not self._remote_ended:
            self._remote_ended = True
            await self.ice.add_remote_candidate(None)

    @property
    def remote_ufrag(self) -> str | None:
        return self.ice.remote_username if self.ice is not None else None

    async def restart_ice(self, ufrag: str, pwd: str, candidates: tuple[FragmentCandidate, ...]) -> str:
        """WHIP ICE restart (RFC 9725 §4.3.2): a new ICE generation with the client's new credentials and
        candidates; returns Kiln's answer fragment (new credentials, candidates). Media goes on over the
        pair in use until a pair of the new generation is chosen."""
        if self.ice is None or self.closed_reason is not None:
            raise IceRestartRefused("this session has no ICE connection on Kiln's shared ports")
        parsed = [_candidate(c.text, c.mid, c.mline_index) for c in candidates]  # bad ones refuse it all
        local = self.ice.restart(ufrag, pwd)
        self._remote_ended = False
        for candidate in parsed:
            if candidate is not None:
                await self._add(candidate)
        media, mid, bundle = first_media(str(self.pc.localDescription.sdp))
        ours = [c.to_sdp() for c in self.ice.local_candidates]
        log.info("webrtc publish ice restart session=%s stream=%s remote_candidates=%d", self.id, self.label,
                 len(candidates))
        return restart_answer(local[0], local[1], ours, media, mid, bundle)

    def _tap_all(self, layers: dict[str, Layers] | None = None) -> None:
        transceivers = [t for t in self.pc.getTransceivers() if t.kind in ("audio", "video")]
        counts = [len(layers[t.mid].rids) if layers and t.kind == "video" and t.mid in layers else 1
                  for t in transceivers]
        self.pipeline = IngestPipeline(self, expected_tracks=sum(counts))
        self.video_layers = max([n for t, n in zip(transceivers, counts, strict=True) if t.kind == "video"],
                                default=1)
        for transceiver, count in zip(transceivers, counts, strict=True):
            tap = ReceiverTap(transceiver, self.pipeline, layers=count)
            tap.install()
            self.taps.append(tap)

    @property
    def kinds(self) -> set[MediaKind]:
        return {MediaKind.VIDEO if t.transceiver.kind == "video" else MediaKind.AUDIO for t in self.taps}

    # -- the stream -------------------------------------------------------------------------------
    def bind(self, stream: LiveStream) -> None:
        self.stream = stream
        meta: dict[str, Any] = {}
        if MediaKind.VIDEO in self.kinds:
            meta["videocodecid"] = "webrtc"
        if MediaKind.AUDIO in self.kinds:
            meta["audiocodecid"] = "webrtc"
        stream.on_metadata(meta)  # the stream starts once every negotiated kind is described
        stream.expected_video_tracks = self.video_layers
        stream.set_keyframe_source(self.request_keyframe)  # consumers' requests become rate-limited PLIs
        self._watch = self.loop.create_task(self._watchdog())

    def on_track(self, track: Track) -> None:
        if self.stream is not None:
            self.stream.on_track(track)

    def on_packet(self, packet: Packet) -> None:
        if self.stream is not None:
            self.stream.ingest(packet)

    def request_keyframe(self) -> None:
        """Any thread: the pipeline's next video packet asks the publisher for a keyframe (PLI), within its
        rate limit (a flag set, nothing sent from here)."""
        if self.pipeline is not None:
            self.pipeline.request_keyframe()

    async def _watchdog(self) -> None:
        """Ends a session whose media stopped (or never came) for ``timeout_s``."""
        while self.closed_reason is None:
            await asyncio.sleep(WATCH_INTERVAL_S)
            last = max([self.created, *(t.last_packet for t in self.taps)])
            if time.monotonic() - last > self.timeout_s:
                self.close(f"no media for {self.timeout_s:g} s")
                return

    # -- the end ----------------------------------------------------------------------------------
    def close(self, reason: str) -> None:
        """End the session (idempotent). Callable from any thread (DELETE /streams comes from an actor)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:
            try:
                self.loop.call_soon_threadsafe(self.close, reason)
            except RuntimeError:  # loop closed: nothing left to free
                pass
            return
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self.ended.set()
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        if self.stream is not None:
            self.stream.end(reason)
        self._closing = self.loop.create_task(self._close_pc())
        counters = self.stats()
        log.info("webrtc publish closed session=%s stream=%s reason=%s packets=%d bytes=%d nacks=%d plis=%d "
                 "rtx=%d", self.id, self.label, reason, counters["packets"], counters["bytes"], counters["nacks"],
                 counters["plis"], counters["rtx"])
        self.on_gone(self, reason)

    async def _close_pc(self) -> None:
        try:
            await self.pc.close()
        except Exception:  # aiortc teardown errors must not leak past the session
            log.exception("webrtc publish close failed session=%s", self.id)

    async def closed(self) -> None:
        """Wait until the peer connection is released (tests, shutdown)."""
        if self._closing is not None:
            await asyncio.shield(self._closing)

    def stats(self) -> dict[str, int]:
        out = {"packets": 0, "bytes": 0, "nacks": 0, "plis": 0, "foreign_ssrc": 0, "rtx": 0}
        for tap in self.taps:
            for key in out:
                out[key] += getattr(tap.counters, key)
        return out


def _candidate(line: str, mid: str | None, index: int | None) -> RTCIceCandidate | None:
    """An ``a=candidate`` line (or its text) as aiortc's candidate; None for an empty one (end of candidates)."""
    text = line[2:] if line.startswith("a=") else line
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    if not text.strip():
        return None
    candidate = candidate_from_sdp(text)
    candidate.sdpMid, candidate.sdpMLineIndex = mid, index
    if mid is None and index is None:
        candidate.sdpMLineIndex = 0
    return candidate
