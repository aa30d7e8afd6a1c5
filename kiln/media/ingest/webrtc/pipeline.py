"""One publisher's RTP → Kiln tracks and packets: frames, depacketizing, keyframe gating, timestamps.

The aiortc glue (``receiver.py``) feeds RTP packets and sender reports per track; this module knows
no aiortc and no sockets, so it is tested with packets built by hand. Video leaves only from a
keyframe on (at the start and after every loss), with a keyframe request (PLI) for the glue to send,
at most one per ``keyframe_interval_s`` so a lossy link cannot make us flood the publisher.
Packets wait at a start gate until every track's sender report is in (or ``gate_s`` passed) so that
audio and video share one zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.h264 import build_avcc
from kiln.media.formats.codecs.nal import to_length_prefixed
from kiln.media.ingest.webrtc.clock import SessionClock, TrackClock
from kiln.media.ingest.webrtc.payload import RtpPayloadError, h264_access_unit, opus_head, opus_samples, vp8_frame
from kiln.media.ingest.webrtc.reorder import Frame, FrameBuffer, RtpIn
from kiln.media.model import Codec, MediaKind, Packet, Track

log = logging.getLogger(__name__)

GATE_S = 1.0
KEYFRAME_INTERVAL_S = 0.5
# Browsers send a keyframe only when asked (libwebrtc's own interval is minutes), while LL-HLS cuts
# segments and parts at keyframes and a new viewer or recording starts at one: ask for one this often.
KEYFRAME_EVERY_S = 1.0
MAX_PENDING = 400  # frames held at the start gate (≈ 1 s of 30 fps video and 50 pps audio, with room)


class MediaSink(Protocol):
    """Where described tracks and timed packets go (the LiveStream)."""

    def on_track(self, track: Track) -> None: ...

    def on_packet(self, packet: Packet) -> None: ...


@dataclass
class TrackCounters:
    frames: int = 0
    bytes: int = 0
    dropped_frames: int = 0      # waiting for a keyframe, broken payload, or out of order
    payload_errors: int = 0
    keyframe_requests: int = 0   # PLIs this track asked for


@dataclass(slots=True)
class _Unit:
    """A depacketized frame waiting for its timestamp."""

    ext: int
    arrival: float
    data: bytes
    keyframe: bool
    duration: int
    config: bytes | None


@dataclass
class InboundTrack:
    id: int
    codec: Codec
    clock: TrackClock
    buffer: FrameBuffer
    channels: int = 0
    counters: TrackCounters = field(default_factory=TrackCounters)
    track: Track | None = None
    waiting_key: bool = True
    last_pts: int = -1
    last_key_at: float | None = None   # arrival of the last keyframe that left
    _sps: bytes | None = None
    _pps: bytes | None = None
    _avcc: bytes = b""

    @property
    def kind(self) -> MediaKind:
        return self.codec.kind

    def unit(self, frame: Frame, sink: MediaSink) -> _Unit | None:
        """The frame as model bytes, or None when it must be dropped (sets ``waiting_key`` for video)."""
        if frame.after_loss and self.kind is MediaKind.VIDEO:
            self.waiting_key = True
        try:
            if self.codec is Codec.H264:
                return self._h264(frame, sink)
            if self.codec is Codec.VP8:
                return self._vp8(frame, sink)
            return self._opus(frame, sink)
        except (RtpPayloadError, CodecConfigError) as exc:
            self.counters.payload_errors += 1
            self.counters.dropped_frames += 1
            if self.kind is MediaKind.VIDEO:
                self.waiting_key = True
            log.debug("webrtc frame dropped track=%d codec=%s reason=%s", self.id, self.codec.value, exc)
            return None

    def _gate_key(self, keyframe: bool) -> bool:
        if self.waiting_key and not keyframe:
            self.counters.dropped_frames += 1
            return False
        if keyframe:
            self.waiting_key = False
        return True

    def _h264(self, frame: Frame, sink: MediaSink) -> _Unit | None:
        au = h264_access_unit(frame.payloads)
        self._sps = au.sps or self._sps
        self._pps = au.pps or self._pps
        config: bytes | None = None
        if au.keyframe and self._sps is not None and self._pps is not None:
            avcc = build_avcc([self._sps], [self._pps])
            if avcc != self._avcc:
                self._describe(describe_track(self.id, Codec.H264, avcc, self.clock.time_base), sink)
                config = avcc if self._avcc else None
                self._avcc = avcc
        if not self._avcc:  # no parameter sets yet: nothing can decode this
            self.counters.dropped_frames += 1
            self.waiting_key = True
            return None
        if not self._gate_key(au.keyframe):
            return None
        return _Unit(0, frame.arrival, to_length_prefixed(au.nals), au.keyframe, 0, config)

    def _vp8(self, frame: Frame, sink: MediaSink) -> _Unit | None:
        vp8 = vp8_frame(frame.payloads)
        if vp8.keyframe and (self.track is None or (self.track.width, self.track.height) != (vp8.width, vp8.height)):
            self._describe(Track(self.id, MediaKind.VIDEO, Codec.VP8, self.clock.time_base, width=vp8.width,
                                 height=vp8.height, codec_string="vp8"), sink)
        if self.track is None:  # no keyframe seen yet: the size is unknown
            self.counters.dropped_frames += 1
            return None
        if not self._gate_key(vp8.keyframe):
            return None
        return _Unit(0, frame.arrival, vp8.data, vp8.keyframe, 0, None)

    def _opus(self, frame: Frame, sink: MediaSink) -> _Unit | None:
        data = b"".join(frame.payloads)
        if not data:
            raise RtpPayloadError("empty Opus packet")
        if self.track is None:
            self._describe(describe_track(self.id, Codec.OPUS, opus_head(self.channels or 2), self.clock.time_base),
                           sink)
        return _Unit(0, frame.arrival, data, True, opus_samples(data), None)

    def _describe(self, track: Track, sink: MediaSink) -> None:
        self.track = track
        sink.on_track(track)


class IngestPipeline:
    """Every track of one publisher, their shared clock, and the start gate."""

    def __init__(self, sink: MediaSink, *, expected_tracks: int = 1, gate_s: float = GATE_S,
                 keyframe_interval_s: float = KEYFRAME_INTERVAL_S, keyframe_every_s: float = KEYFRAME_EVERY_S) -> None:
        self.sink = sink
        self.expected_tracks = expected_tracks  # m-lines negotiated: the gate waits for each one's SR
        self.gate_s = gate_s
        self.keyframe_interval_s = keyframe_interval_s
        self.keyframe_every_s = keyframe_every_s  # 0: only at the start and after losses
        self.clock = SessionClock()
        self.tracks: dict[int, InboundTrack] = {}
        self._pending: list[tuple[InboundTrack, _Unit]] = []
        self._first_arrival: float | None = None
        self._last_pli = -1e9
        self._want_key = False
        self.closed = False

    def add_track(self, codec: Codec, clock_rate: int, channels: int = 0) -> int:
        if codec not in (Codec.H264, Codec.VP8, Codec.OPUS):
            raise ValueError(f"{codec.value} cannot be received over WebRTC here")
        track_id = len(self.tracks)
        video = codec.kind is MediaKind.VIDEO
        self.tracks[track_id] = InboundTrack(track_id, codec, TrackClock(clock_rate), FrameBuffer(
            video, max_wait_s=0.2 if video else 0.08, capacity=512 if video else 32), channels,
                                             waiting_key=video)
        return track_id

    @property
    def gate_open(self) -> bool:
        return self.clock.zero is not None

    def sender_report(self, track_id: int, rtp_ts: int, ntp: int, local: float) -> None:
        track = self.tracks.get(track_id)
        if track is not None:
            self.clock.sender_report(track.clock, rtp_ts, ntp, local)

    def rtp(self, track_id: int, packet: RtpIn) -> bool:
        """Feed one RTP packet; True when a keyframe request (PLI) should go to the publisher now."""
        track = self.tracks.get(track_id)
        if track is None or self.closed:
            return False
        for frame in track.buffer.push(packet):
            unit = track.unit(frame, self.sink)
            if unit is None:
                continue
            unit.ext = track.clock.unwrap.extend(frame.timestamp)
            self._admit(track, unit)
        if self._first_arrival is None:
            self._first_arrival = packet.arrival
        if not self.gate_open and self._pending and self._gate_ready(packet.arrival):
            self._open_gate()
        return self._keyframe_due(track, packet.arrival)

    def request_keyframe(self) -> None:
        """A consumer needs a keyframe (e.g. a new viewer): the next video packet asks for one, within
        the same rate limit as loss recovery."""
        self._want_key = True

    def _keyframe_due(self, track: InboundTrack, now: float) -> bool:
        if track.kind is not MediaKind.VIDEO:
            return False
        stale = bool(self.keyframe_every_s) and track.last_key_at is not None and \
            now - track.last_key_at >= self.keyframe_every_s
        if not (track.waiting_key or self._want_key or stale):
            return False
        if now - self._last_pli < self.keyframe_interval_s:
            return False
        self._last_pli = now
        self._want_key = False
        track.counters.keyframe_requests += 1
        return True

    def _gate_ready(self, now: float) -> bool:
        assert self._first_arrival is not None
        if now - self._first_arrival >= self.gate_s or len(self._pending) >= MAX_PENDING:
            return True
        return len(self.tracks) >= self.expected_tracks and all(t.clock.sr is not None
                                                                 for t in self.tracks.values())

    def _admit(self, track: InboundTrack, unit: _Unit) -> None:
        if self.gate_open:
            self.clock.anchor(track.clock, unit.ext, unit.arrival)
            self._emit(track, unit)
        else:
            self._pending.append((track, unit))

    def _open_gate(self) -> None:
        firsts: dict[int, _Unit] = {}
        for track, unit in self._pending:
            firsts.setdefault(track.id, unit)
        for track_id, unit in firsts.items():
            self.clock.anchor(self.tracks[track_id].clock, unit.ext, unit.arrival)
        self.clock.zero = min(self.tracks[i].clock.seconds(u.ext) for i, u in firsts.items())
        pending, self._pending = self._pending, []
        pending.sort(key=lambda item: item[0].clock.seconds(item[1].ext))
        for track, unit in pending:
            self._emit(track, unit)

    def _emit(self, track: InboundTrack, unit: _Unit) -> None:
        pts = max(self.clock.ticks(track.clock, unit.ext), track.last_pts + 1)
        track.last_pts = pts
        if unit.keyframe and track.kind is MediaKind.VIDEO:
            track.last_key_at = unit.arrival
        track.counters.frames += 1
        track.counters.bytes += len(unit.data)
        self.sink.on_packet(Packet(track.id, pts, pts, Fraction(1, track.clock.rate), unit.data,
                                   keyframe=unit.keyframe, duration=unit.duration, config=unit.config,
                                   arrival=unit.arrival))
