"""One output stream's media, prepared once and sent by Kiln itself to every WebRTC viewer of it.

The feed is one subscriber of the output's hub. On the producer's thread it turns each packet of a
track WebRTC carries into RTP payloads, once for every viewer (:mod:`kiln.media.rtc.prepacked`):
H.264 from AVCC to Annex B with SPS/PPS in front of every keyframe (a browser joining mid-stream
needs them in band), then NAL split and STAP-A/FU-A; VP8 and Opus as they are. The frame is then
queued for the feed's send thread (:mod:`.sender`), off the event loop: there each packet gets the
rendition track's sequence numbers, goes into that track's NACK cache, and is sent to every viewer in
one loop doing only what differs per viewer (:mod:`kiln.media.rtc.rtp_out`: header, SRTP,
``sendto``): no task, queue or hop per viewer, so a viewer costs Kiln one protect and one ``sendto``
per packet, and the loop stays free for signalling, ICE and RTCP. Everything that touches a viewer's
sending state (joining, leaving, NACKs, rendition changes) is a command run on that thread, in order.

A viewer never slows the feed or other viewers: a socket that will not take its packet costs that
viewer the rest of the frame, and its video resumes at the next keyframe (its sequence numbers stay
continuous). When the machine cannot give the send thread the CPU it needs, frames reach it late; one
more than ``MAX_LAG_S`` late, or one that finds ``MAX_QUEUED`` frames already waiting, is shed
(counted, logged per window) and viewers resume at the next keyframe, so latency and memory stay
bounded instead of a queue growing. A new viewer starts with the GOP the feed holds (from the last
keyframe of its video track); a rendition change keeps sending the old track until the new one's
next keyframe. Per frame, the time from the packet's arrival in Kiln to its first RTP packet out is
counted (:class:`~kiln.metrics.histogram.Histogram`), and to the last viewer's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.clock import current_ntp_time

from kiln.media.formats.codecs.h264 import parse_avcc
from kiln.media.formats.codecs.nal import length_prefixed_to_annexb
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.webrtc.sender import SendThread
from kiln.media.rtc.prepacked import Packetizer, Prepacked
from kiln.media.rtc.rtp_out import CachedPacket, PacketCache, Route, TrackOut
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import OutputStream
from kiln.metrics.histogram import Histogram

log = logging.getLogger(__name__)

PACKETIZED = {Codec.H264: "h264", Codec.VP8: "vp8", Codec.OPUS: "opus"}
MAX_LAG_S = 1.0        # a frame this late to the send thread is shed: Kiln is overloaded, viewers resync at a key
MAX_QUEUED = 120       # frames waiting for the send thread (~1.5 s of 30 fps video + audio); more are shed
CHUNK = 8              # viewers a frame goes to before the send thread looks for newer frames (see _fan_out)
WINDOW_S = 5.0         # the send figures are also logged per window of this length (steady state, not joins)
MAX_GOP_FRAMES = 2000  # frames held for new viewers (a 10 s GOP at 60 fps + audio); a longer GOP is not held
START_CODE = b"\x00\x00\x00\x01"
NAL_SPS = 7


@dataclass(slots=True)
class RtcFrame:
    """One frame's RTP payloads, cut once for every viewer, and the rendition track's sequence number of
    the first (given on the loop, in order)."""

    track_id: int
    prepacked: Prepacked
    size: int
    keyframe: bool
    arrival: float  # time.monotonic() when the packet entered the server (latency figures)
    first_seq: int = 0
    after_gap: bool = False  # frames of its track before it were refused (the send thread was behind)


@dataclass(slots=True)
class _InFlight:
    """A frame being sent: the viewers (in the burst's order) that have it, and when its first packet left."""

    frame: RtcFrame
    progress: int = 0
    first: float = 0.0


class AnnexB:
    """AVCC access units to Annex B, parameter sets in front of keyframes (from avcC or in-band config)."""

    def __init__(self, track: Track) -> None:
        self.length_size = 4
        self.parameter_sets = b""
        if track.config:
            self._configure(track.config)

    def _configure(self, config: bytes) -> None:
        try:
            avcc = parse_avcc(config)
        except ValueError as exc:
            log.warning("webrtc h264 config unreadable error=%s", exc)
            return
        self.length_size = avcc.nal_length_size
        self.parameter_sets = b"".join(START_CODE + n for n in (*avcc.sps, *avcc.pps))

    def convert(self, packet: Packet) -> bytes:
        if packet.config:
            self._configure(packet.config)
        body = length_prefixed_to_annexb(packet.data, self.length_size)
        if packet.keyframe and self.parameter_sets and not _has_sps(packet.data, self.length_size):
            return self.parameter_sets + body
        return body


def _has_sps(data: bytes, length_size: int) -> bool:
    pos = 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if pos < len(data) and data[pos] & 0x1F == NAL_SPS:
            return True
        pos += size
    return False


class Viewer:
    """One viewer's place in a feed: its sending tracks by kind and the output's track ids it plays.

    ``route`` gives the socket and address ICE selected (asked per frame: ICE may move); ``on_sent`` hears
    ``(kind, out, bytes, arrival)`` after each frame sent (arrival 0 for a replayed one)."""

    def __init__(self, kinds: dict[int, str], outs: dict[str, TrackOut], route: Callable[[], Route | None],
                 on_sent: Callable[[str, TrackOut, int, float], None]) -> None:
        self.kinds = dict(kinds)
        self.outs = outs
        self.route = route
        self.on_sent = on_sent
        self.pending: dict[int, str] = {}   # track id -> kind it will replace at its next start point
        self.skips = 0

    def track_of(self, kind: str) -> int | None:
        return next((t for t, k in self.kinds.items() if k == kind), None)

    def retarget(self, kinds: dict[int, str]) -> None:
        """Play other tracks (a rendition change): each kind moves at its new track's next start point (a
        keyframe for video), until then the old track goes on."""
        self.pending = {t: k for t, k in kinds.items() if self.kinds.get(t) != k}

    def deliver(self, frame: RtcFrame, abs_time: int, live: bool = True) -> bool:
        """Send ``frame`` if this viewer plays its track; True when packets went out."""
        kind = self.kinds.get(frame.track_id)
        if kind is None:
            kind = self.pending.get(frame.track_id)
            if kind is None or (kind == "video" and not frame.keyframe):
                return False
            self.kinds = {t: k for t, k in self.kinds.items() if k != kind}
            self.kinds[frame.track_id] = kind
            del self.pending[frame.track_id]
            out = self.outs.get(kind)
            if out is not None and out.offset is not None:
                out.start(frame.first_seq)
        out = self.outs.get(kind)
        if out is None:
            return False
        if out.offset is None:
            video = self.outs.get("video")
            if kind == "video" and not frame.keyframe:
                return False
            if kind != "video" and video is not None and video.offset is None:
                return False  # audio starts with the video, so the two begin together
            out.start(frame.first_seq)
        route = self.route()
        if route is None:
            return False
        sent = out.send(frame.prepacked.payloads, frame.first_seq, frame.prepacked.timestamp, abs_time, route)
        if sent < 0:
            self.skip()
            return False
        self.on_sent(kind, out, sent, frame.arrival if live else 0.0)
        return True

    def skip(self) -> None:
        """Frames this viewer cannot get whole (its socket would not take a packet, or the feed shed them): its
        video resumes at the next keyframe, its numbering continuous."""
        video = self.outs.get("video")
        if video is not None and video.offset is not None:
            self.skips += 1
            video.offset = None

    def nack(self, kind: str, seqs: list[int], caches: dict[int, PacketCache]) -> int:
        """Resend what the viewer reports lost from the rendition's cache; how many were resent."""
        out, track = self.outs.get(kind), self.track_of(kind)
        cache = caches.get(track) if track is not None else None
        route = self.route()
        if out is None or cache is None or route is None:
            return 0
        resent = 0
        for seq in seqs:
            rendition_seq = out.rendition_seq(seq)
            packet = cache.get(rendition_seq) if rendition_seq is not None else None
            if packet is not None and out.resend(seq, packet, route):
                resent += 1
        return resent


def abs_send_time() -> int:
    """abs-send-time's 6.18 fixed-point seconds (24 bits), from the NTP clock as aiortc computes it."""
    return (current_ntp_time() >> 14) & 0xFFFFFF


class Feed:
    """The WebRTC side of one output stream: converted once, sent to its viewers on ``loop``."""

    def __init__(self, output: OutputStream, loop: asyncio.AbstractEventLoop,
                 on_end: Callable[[Feed, str], None]) -> None:
        self.output = output
        self.loop = loop
        self._on_end = on_end
        self.viewers: set[Viewer] = set()
        self.members = 0   # sessions on this feed, connected (a viewer) or not yet: the feed ends at none
        self._converters: dict[int, AnnexB | None] = {}
        self._packetizers: dict[int, Packetizer] = {}
        self._kinds: dict[int, str] = {}
        self._next_seq: dict[int, int] = {}
        self.caches: dict[int, PacketCache] = {}
        self.gops: dict[int, list[RtcFrame]] = {}   # video track id -> frames from its last keyframe (audio too)
        self.first_out = Histogram()   # ms: arrival in Kiln -> the frame's first RTP packet out
        self.last_out = Histogram()    # ms: arrival in Kiln -> the last viewer's packets of it out
        self._window = (Histogram(), Histogram())  # the same, over the current WINDOW_S
        self._window_start = time.monotonic()
        self.shed = 0      # frames not sent because they reached the send thread MAX_LAG_S late (overload)
        self._refused: dict[int, int] = {}   # track id -> frames not queued because MAX_QUEUED were waiting
        self._gap: dict[int, bool] = {}       # track id -> its next queued frame follows refused ones
        self._refused_logged = 0
        self._window_shed = 0
        self.ended: str | None = None
        self._sub = CallbackSubscriber(f"webrtc:{output.name}", self._from_hub, on_end=self._hub_ended)
        self.frames = 0
        self.sender: SendThread[RtcFrame] = SendThread(f"webrtc-send:{output.name}", self._fan_out, MAX_QUEUED)

    def start(self) -> None:
        for track in self.output.track_list():
            if track.codec in PACKETIZED:
                self._converters[track.id] = AnnexB(track) if track.codec is Codec.H264 else None
                self._packetizers[track.id] = Packetizer(PACKETIZED[track.codec])
                self._kinds[track.id] = "video" if track.kind is MediaKind.VIDEO else "audio"
                self._next_seq[track.id] = 0
                self.caches[track.id] = PacketCache()
        self.sender.start()
        self.output.hub.subscribe(self._sub, from_keyframe=True)  # the held GOP first: new viewers start there

    def add(self, viewer: Viewer) -> None:
        """A viewer whose DTLS is up: the GOP of its video track at once (on the send thread), then live."""
        self.output.request_keyframe("webrtc viewer")  # a fresh keyframe soon: the held GOP may be a second old
        self.sender.command(lambda: self._add(viewer))

    def _add(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        video = viewer.track_of("video")
        abs_time = abs_send_time()
        for frame in list(self.gops.get(video, ())) if video is not None else ():
            viewer.deliver(frame, abs_time, live=False)

    def join(self) -> None:
        """A session on this feed begins (it becomes a viewer once connected)."""
        self.members += 1

    def leave(self, viewer: Viewer | None) -> None:
        """A session on this feed ends."""
        self.members -= 1
        if viewer is not None:
            self.sender.command(lambda: self.viewers.discard(viewer))

    def nack(self, viewer: Viewer, kind: str, seqs: list[int], resent: Callable[[int], None]) -> None:
        """Resend what ``viewer`` reports lost (on the send thread, which owns its numbering); ``resent`` hears
        how many packets went out again."""
        self.sender.command(lambda: resent(viewer.nack(kind, seqs, self.caches)), anytime=True)

    def retarget(self, viewer: Viewer, kinds: dict[int, str]) -> None:
        """``viewer`` plays other tracks from their next start points (:meth:`Viewer.retarget`, on the send thread)."""
        self.sender.command(lambda: viewer.retarget(kinds))

    def request_keyframe(self, reason: str) -> None:
        """A viewer's PLI/FIR: the output decides (rate-bounded; a passed-through input is never asked to
        re-encode, and an RTMP publisher cannot be asked)."""
        self.output.request_keyframe(reason)

    def close(self, reason: str) -> None:
        self._sub.close()
        self._end(reason)

    # -- producer thread --
    @property
    def refused(self) -> int:
        """Frames shed because the send thread was ``MAX_QUEUED`` frames behind."""
        return sum(self._refused.values())

    def _from_hub(self, packet: Packet) -> None:
        frame = self._frame(packet)
        if frame is None:
            return
        track = frame.track_id  # one producer thread per track: these entries are that thread's alone
        frame.after_gap = self._gap.get(track, False)
        if self.sender.put(frame):
            self._gap[track] = False
        elif self.ended is None:  # the send thread is behind: shed, and it resyncs viewers after the gap
            self._refused[track] = self._refused.get(track, 0) + 1
            self._gap[track] = True

    def _hub_ended(self, reason: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self._end, reason)
        except RuntimeError:  # the loop is closed (shutdown)
            pass

    def _frame(self, packet: Packet) -> RtcFrame | None:
        if packet.track_id not in self._converters:
            return None
        converter = self._converters[packet.track_id]
        data = converter.convert(packet) if converter is not None else packet.data
        if not data:
            return None
        prepacked = self._packetizers[packet.track_id].pack(data, packet.pts, packet.time_base)
        return RtcFrame(packet.track_id, prepacked, len(data), packet.keyframe, packet.arrival)

    # -- send thread --
    def _remember(self, frame: RtcFrame) -> None:
        """Sequence numbers, the NACK cache, and the GOP new viewers start from."""
        track = frame.track_id
        seq = frame.first_seq = self._next_seq[track]
        payloads = frame.prepacked.payloads
        self._next_seq[track] = (seq + len(payloads)) & 0xFFFF
        cache, last = self.caches[track], len(payloads) - 1
        for i, payload in enumerate(payloads):
            cache.put(CachedPacket((seq + i) & 0xFFFF, payload, i == last, frame.prepacked.timestamp))
        if self._kinds[track] == "video":
            if frame.keyframe:
                self.gops[track] = [frame]
                return
            gop = self.gops.get(track)
            if gop is not None:
                gop.append(frame)
                if len(gop) > MAX_GOP_FRAMES:
                    del self.gops[track]
            return
        for gop in self.gops.values():
            gop.append(frame)

    def _admit(self, frame: RtcFrame) -> bool:
        """A frame taken from the queue: numbered, cached, held for new viewers; False when it is not to be sent
        (no viewer, or shed)."""
        self.frames += 1
        if frame.after_gap:
            # frames were refused before this one: the GOP held for new viewers has a hole, and so would
            # every viewer's video; all wait for the next keyframe
            self.gops.clear()
            for viewer in self.viewers:
                viewer.skip()
        self._remember(frame)
        if not self.viewers:
            return False
        if frame.arrival and time.monotonic() - frame.arrival > MAX_LAG_S:
            # the thread is behind live (the machine cannot give it the CPU it needs): shed load instead of
            # queueing without bound; every viewer resumes at the next keyframe
            self.shed += 1
            self._window_shed += 1
            for viewer in self.viewers:
                viewer.skip()
            return False
        return True

    def _fan_out(self, frame: RtcFrame) -> None:
        """Send ``frame``, and the frames that arrive meanwhile, to every viewer, ``CHUNK`` viewers at a time.

        A keyframe to 200 viewers takes tens of milliseconds; frames arriving meanwhile do not wait for its last
        viewer: every other step goes to the newest frames, for the viewers that already have every older frame, so
        a frame's first packets leave within two steps of its arrival; the steps between move the oldest frame on,
        so its last viewers are not left behind. Each viewer still gets the frames in order: a frame goes to a
        viewer only after the frame before it (``progress`` never passes the older frame's). A frame still not
        sent to every viewer ``MAX_LAG_S`` after its arrival is shed for those left (they resume at a keyframe)."""
        if not self._admit(frame):
            return
        viewers = list(self.viewers)  # joins and leaves are ordered commands: they run after this burst
        flight = [_InFlight(frame)]
        newest = False
        while flight:
            for new in self.sender.take_frames():  # arrived meanwhile (up to a queued ordered command)
                if self._admit(new):
                    flight.append(_InFlight(new))
            oldest = flight[0]
            if oldest.frame.arrival and time.monotonic() - oldest.frame.arrival > MAX_LAG_S:
                self._shed_tail(flight.pop(0), viewers)
                continue
            # a run: frames at one progress, moving together; the newest run (every other step) or the oldest
            newest = not newest
            if newest:
                first = len(flight) - 1
                while first > 0 and flight[first - 1].progress == flight[first].progress:
                    first -= 1
                last = len(flight)
            else:
                first, last = 0, 1
                while last < len(flight) and flight[last].progress == oldest.progress:
                    last += 1
            start = flight[first].progress
            bound = flight[first - 1].progress if first > 0 else len(viewers)
            stop = min(start + CHUNK, bound)
            abs_time = abs_send_time()
            for viewer in viewers[start:stop]:
                for item in flight[first:last]:
                    if viewer.deliver(item.frame, abs_time) and not item.first:
                        item.first = time.monotonic()
            for item in flight[first:last]:
                item.progress = stop
            while flight and flight[0].progress >= len(viewers):
                self._observe(flight.pop(0))

    def _shed_tail(self, item: _InFlight, viewers: list[Viewer]) -> None:
        """``item`` is too late for the viewers that have not had it: they resume at the next keyframe."""
        self.shed += 1
        self._window_shed += 1
        for viewer in viewers[item.progress:]:
            viewer.skip()

    def _observe(self, item: _InFlight) -> None:
        frame = item.frame
        if item.first and frame.arrival:  # the hub's GOP at subscription has no viewer yet: live frames only
            now = time.monotonic()
            first_ms, last_ms = (item.first - frame.arrival) * 1000, (now - frame.arrival) * 1000
            self.first_out.observe(first_ms)
            self.last_out.observe(last_ms)
            self._window[0].observe(first_ms)
            self._window[1].observe(last_ms)
            if now - self._window_start >= WINDOW_S:
                self._log_window(now)

    def _log_window(self, now: float) -> None:
        first, last = self._window
        refused = self.refused
        self._window_shed += refused - self._refused_logged
        self._refused_logged = refused
        log.info("webrtc feed window output=%s viewers=%d seconds=%.1f frames=%d shed=%d first_rtp_ms_p50=%.2f "
                 "first_rtp_ms_p99=%.2f last_viewer_ms_p99=%.2f", self.output.name, len(self.viewers),
                 now - self._window_start, first.count, self._window_shed, first.quantile(0.5), first.quantile(0.99),
                 last.quantile(0.99))
        self._window_shed = 0
        self._window = (Histogram(), Histogram())
        self._window_start = now

    def _end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        self.sender.command(lambda: self._closed(reason))
        self.sender.stop()  # ends once what is queued has run; nothing more is queued
        self._on_end(self, reason)

    def _closed(self, reason: str) -> None:
        if self.first_out.count:
            log.info("webrtc feed closed output=%s reason=%s frames=%d shed=%d first_rtp_ms_p50=%.2f "
                     "first_rtp_ms_p99=%.2f last_viewer_ms_p99=%.2f", self.output.name, reason, self.frames,
                     self.shed + self.refused, self.first_out.quantile(0.5),
                     self.first_out.quantile(0.99), self.last_out.quantile(0.99))
        self.viewers.clear()
