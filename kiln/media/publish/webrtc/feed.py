"""One output stream's media, prepared once for every WebRTC viewer of it.

The feed is one subscriber of the output's hub. On the producer's thread it turns each packet of a
track WebRTC carries into RTP payloads, once for every viewer (:mod:`kiln.media.rtc.prepacked`):
H.264 from AVCC to Annex B with SPS/PPS in front of every keyframe (a browser joining mid-stream
needs them in band), then NAL split and STAP-A/FU-A; VP8 and Opus as they are. One hop to the
event loop per packet, not per viewer, hands it to the viewers' taps.

A tap holds one viewer's queue per track. It never blocks the feed: a viewer that falls more than
``MAX_BACKLOG_S`` behind live, or whose queue overflows (it stopped reading, or reads too slowly),
is skipped: its queues are emptied and it resumes at the next keyframe, so neither ingest nor
other viewers wait for it, and its own latency stays bounded. A new viewer starts
with the GOP the hub already holds (from its last keyframe).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from kiln.media.formats.codecs.h264 import parse_avcc
from kiln.media.formats.codecs.nal import length_prefixed_to_annexb
from kiln.media.model import Codec, Packet, Track
from kiln.media.rtc.prepacked import Packetizer, Prepacked
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import OutputStream

log = logging.getLogger(__name__)

PACKETIZED = {Codec.H264: "h264", Codec.VP8: "vp8", Codec.OPUS: "opus"}
VIDEO_QUEUE = 600   # frames: far beyond any healthy viewer's backlog (a 2 s GOP at 60 fps is 120)
AUDIO_QUEUE = 1000  # 20 ms Opus packets: 20 s
MAX_BACKLOG_S = 1.0  # a viewer this far behind live is resynced at the next keyframe: WebRTC is sub-second
START_CODE = b"\x00\x00\x00\x01"
NAL_SPS = 7


@dataclass(frozen=True, slots=True)
class RtcFrame:
    """What a viewer's track hands aiortc: the frame's RTP payloads, cut once for every viewer."""

    track_id: int
    prepacked: Prepacked
    size: int
    keyframe: bool
    arrival: float  # time.monotonic() when the packet entered the server (latency figures)


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


class Tap:
    """One viewer's queues (one per kind), filled by the feed on the event loop, read by its tracks.

    ``kinds`` maps the output's track ids this viewer plays to ``video``/``audio``; a rendition change
    retargets the tap (new ids, queues emptied, video resumes at a keyframe) under the same tracks."""

    def __init__(self, kinds: dict[int, str]) -> None:
        self.kinds = dict(kinds)
        self.queues: dict[str, deque[RtcFrame]] = {"video": deque(), "audio": deque()}
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.waiting_key = "video" in self.kinds.values()
        self.skips = 0
        self.closed = False

    def offer(self, frame: RtcFrame) -> None:
        kind = self.kinds.get(frame.track_id)
        if self.closed or kind is None:
            return
        if self.waiting_key:
            if not (frame.keyframe and kind == "video"):
                return
            self.waiting_key = False
        queue = self.queues[kind]
        if len(queue) >= (VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE) or (
                queue and frame.arrival and queue[0].arrival and frame.arrival - queue[0].arrival > MAX_BACKLOG_S):
            self.skip()
            return
        queue.append(frame)
        self._wake(kind)

    def _wake(self, kind: str) -> None:
        waiter = self.waiters.pop(kind, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def skip(self) -> None:
        """Drop what is queued and resume at the next keyframe (a viewer too slow to keep up)."""
        self.skips += 1
        for queue in self.queues.values():
            queue.clear()
        self.waiting_key = "video" in self.kinds.values()

    def retarget(self, kinds: dict[int, str]) -> None:
        """Play other tracks from now (a rendition change): start over at their next keyframe."""
        self.kinds = dict(kinds)
        self.skip()
        self.skips -= 1

    async def get(self, kind: str) -> RtcFrame | None:
        """The next frame of ``kind``; None once the tap is closed."""
        queue = self.queues[kind]
        while not queue:
            if self.closed:
                return None
            waiter = self.waiters.get(kind)
            if waiter is None or waiter.done():
                waiter = self.waiters[kind] = asyncio.get_running_loop().create_future()
            await waiter
        return queue.popleft()

    def close(self) -> None:
        self.closed = True
        for kind in list(self.waiters):
            self._wake(kind)


class Feed:
    """The WebRTC side of one output stream: converted once, fanned out to taps on ``loop``."""

    def __init__(self, output: OutputStream, loop: asyncio.AbstractEventLoop,
                 on_end: Callable[[Feed, str], None]) -> None:
        self.output = output
        self.loop = loop
        self._on_end = on_end
        self.taps: set[Tap] = set()
        self._converters: dict[int, AnnexB | None] = {}
        self._packetizers: dict[int, Packetizer] = {}
        self.ended: str | None = None
        self._sub = CallbackSubscriber(f"webrtc:{output.name}", self._from_hub, on_end=self._hub_ended)
        self.frames = 0

    def start(self) -> None:
        for track in self.output.track_list():
            if track.codec in PACKETIZED:
                self._converters[track.id] = AnnexB(track) if track.codec is Codec.H264 else None
                self._packetizers[track.id] = Packetizer(PACKETIZED[track.codec])
        self.output.hub.subscribe(self._sub, from_keyframe=False)

    def add(self, tap: Tap) -> None:
        """A new viewer (or one that changed rendition): the hub's GOP (from the last keyframe) first."""
        self.taps.add(tap)
        for packet in self.output.hub.gop_snapshot():
            frame = self._frame(packet)
            if frame is not None:  # a backlog, sent at once: no arrival, so it is kept out of latency figures
                tap.offer(replace(frame, arrival=0.0))

    def remove(self, tap: Tap) -> None:
        self.taps.discard(tap)
        tap.close()

    def close(self, reason: str) -> None:
        self._sub.close()
        self._end(reason)

    # -- producer thread --
    def _from_hub(self, packet: Packet) -> None:
        frame = self._frame(packet)
        if frame is not None:
            try:
                self.loop.call_soon_threadsafe(self._fan_out, frame)
            except RuntimeError:  # the loop is closed (shutdown): nobody is left to send to
                pass

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

    # -- loop --
    def _fan_out(self, frame: RtcFrame) -> None:
        self.frames += 1
        for tap in self.taps:
            tap.offer(frame)

    def _end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        for tap in list(self.taps):
            tap.close()
        self._on_end(self, reason)
