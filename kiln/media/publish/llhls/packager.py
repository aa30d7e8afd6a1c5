"""Cutting one track into LL-HLS parts and segments (media-spec §2.7), as fMP4 fragments.

Rules (OME's): the part target is the configured ChunkDuration rounded to a whole number of
frames of this track. A part is closed when its duration reaches the target (within half a frame:
the nearest whole number of frames). A segment is closed when its duration plus the pending part
reaches SegmentDuration and — for video — the next frame is a keyframe (audio: at any part
boundary). A segment is its parts concatenated.

A sample's exact duration is only known when the next sample arrives; waiting for it would hold every
part back by one frame (33 ms at 30 fps), so a sample is added with the duration the frame rate
predicts and corrected when the next one arrives, and the part that sample completes is closed at
once. Only a part's last sample keeps the prediction; the next part's tfdt is the true decode time, so
a misprediction is a gap or overlap of a tick or so, which players absorb.

PROGRAM-DATE-TIME is the ingest time of the media: each packet's arrival wall time minus its decode
time gives the wall time of decode time zero, and the earliest such value is kept. Anchoring on the
first packet alone made every PDT as late as that packet was (a publisher's first frames come late:
connection setup, its muxer's interleaving), about 0.1 s in the LL-HLS bench.

Pure logic: no I/O, no clocks except the wall time passed in; the owner (LlhlsStream) runs it on
the event loop and wakes blocked requests when ``on_part`` fires.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction

from kiln.media.formats.bmff.emsg import build_emsg_v1
from kiln.media.formats.bmff.fragment import build_track_fragment, sample_flags
from kiln.media.formats.bmff.init import build_init_segment
from kiln.media.model import MediaKind, Packet, Track

log = logging.getLogger(__name__)

GRACE_SEGMENTS = 3
EMSG_SCHEME = "https://aomedia.org/emsg/ID3"
EMSG_VALUE = "OvenMediaEngine"


@dataclass
class Part:
    segment: int
    index: int
    start: int           # decode time of the first sample, in the track timescale
    duration: int        # in the track timescale
    independent: bool
    data: bytes | memoryview  # a view into its segment's bytes once the segment is complete

    def seconds(self, timescale: int) -> float:
        return self.duration / timescale


@dataclass
class Segment:
    number: int
    start: int
    wall_start: float            # PROGRAM-DATE-TIME (Unix seconds)
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    spilled: bool = False        # DVR: the bytes moved to disk, only the listing facts stay here
    _data: bytes | None = None
    _duration: int = 0  # the parts' durations, added as they come: asked per playlist and per DVR trim

    @property
    def duration(self) -> int:
        return self._duration

    def add_part(self, part: Part) -> None:
        self.parts.append(part)
        self._duration += part.duration

    def spill(self) -> bytes:
        """Hand the bytes over (to the DVR store) and keep only what a playlist lists."""
        data = self.data
        self.parts = []
        self._data = None
        self.spilled = True
        return data

    def seal(self) -> None:
        """The segment is complete: its bytes become one object and each part a view into it, so a
        segment that is also downloaded whole is held once, not as parts plus a joined copy."""
        joined = b"".join(p.data for p in self.parts)
        view = memoryview(joined)
        at = 0
        for part in self.parts:
            size = len(part.data)
            part.data = view[at:at + size]
            at += size
        self._data = joined

    @property
    def data(self) -> bytes:
        if self._data is None or not self.complete:
            joined = b"".join(p.data for p in self.parts)
            if not self.complete:
                return joined
            self._data = joined
        return self._data


@dataclass
class PendingEvent:
    """A timed-metadata event (an ID3 tag) waiting for the part whose time span holds it."""

    time_ms: int          # -1 = write at the next part's start
    event_id: int
    message: bytes


@dataclass(slots=True)
class _Sample:
    dts: int
    pts: int
    keyframe: bool
    data: bytes


class TrackPackager:
    def __init__(self, track: Track, *, chunk_duration: float, segment_duration: float, segment_count: int,
                 first_segment_number: int = 0, on_part: Callable[[TrackPackager, Part], None] | None = None,
                 on_segment: Callable[[TrackPackager, Segment], None] | None = None,
                 event_ids: Callable[[], int] | None = None, dvr_window: float = 0.0,
                 on_spill: Callable[[TrackPackager, Segment, bytes], None] | None = None,
                 on_drop: Callable[[TrackPackager, Segment], None] | None = None,
                 spill_grace: bool = False) -> None:
        self.track = track
        tb = track.time_base
        self._time_base = tb
        self.timescale = tb.denominator
        self._tick = tb.numerator
        self.chunk_duration = chunk_duration
        self.segment_duration = segment_duration
        self.segment_count = max(3, segment_count)
        self.on_part = on_part
        self.on_segment = on_segment
        # DVR (seconds listed; 0 = off): completed segments beyond the live window are spilled
        # (``on_spill`` takes their bytes) and stay listed until they leave the window (``on_drop``)
        self.dvr_window = dvr_window
        self.on_spill = on_spill
        self.on_drop = on_drop
        # without DVR: the grace segments (no longer listed, still downloadable) spill too, so memory
        # holds only the listed window and the growing segment
        self.spill_grace = spill_grace
        self._video = track.kind is MediaKind.VIDEO
        # audio with a known frame size: the exact sample duration, fixed for the track (0.0: measured)
        self._fixed_frame = (track.samples_per_frame * self.timescale / track.sample_rate
                             if track.kind is MediaKind.AUDIO and track.sample_rate and track.samples_per_frame
                             else 0.0)
        self.mp4_track_id = track.id + 1  # ISO-BMFF track_ID 0 is invalid; Kiln's ids start at 0
        self.init_segment = build_init_segment(replace(track, id=self.mp4_track_id), timescale=self.timescale)
        self.segments: deque[Segment] = deque()
        self.first_segment_number = first_segment_number
        self.next_segment_number = first_segment_number
        self.sequence_number = 1
        self.last: _Sample | None = None  # the newest sample; its duration is a prediction until the next one
        self.current: list[tuple[_Sample, int]] = []  # (sample, duration)
        self.current_duration = 0
        self.frame_duration = 0
        self._frame_estimate = 0.0  # smoothed sample duration in ticks (not rounded: 33.3 ms at 30 fps in ms)
        self._keyframe_dts: int | None = None  # the newest keyframe, and the interval before it (0: unknown)
        self._keyframe_interval = 0
        self._tail_ms: int | None = None  # decode time (ms) of the last emitted part's last sample
        self.max_part_duration = 0
        self.max_segment_duration = 0
        self.events: list[PendingEvent] = []
        self.concluded = False
        self._wall0: float | None = None
        self._dts0 = 0
        self._event_ids = event_ids

    # -- timing helpers --
    def ticks(self, value: int, time_base: Fraction) -> int:
        """A packet timestamp in this track's timescale. Runs twice per packet: the packet almost always
        carries its track's own time base object (RTMP: ``MS``), so identity is tried before the
        integers, and ``Fraction`` arithmetic (or its ``__eq__``, an ABC ``isinstance``) is never used."""
        if time_base is self._time_base:
            return value * self._tick
        num, den = time_base.numerator, time_base.denominator
        if num == self._time_base.numerator and den == self._time_base.denominator:
            return value * self._tick
        scaled = value * num * self.timescale
        return scaled // den if scaled >= 0 else -(-scaled // den)  # truncated toward zero, as int(Fraction)

    @property
    def part_target(self) -> int:
        """ChunkDuration rounded to whole frames of this track (in the timescale). Asked for every packet,
        so remembered until the chunk duration or the frame duration (by more than 1 %) changes."""
        frame = self._fixed_frame or self._frame_estimate
        known = self._part_target_frame
        if self._part_target_chunk != self.chunk_duration or abs(frame - known) > 0.01 * known:
            self._part_target_chunk, self._part_target_frame = self.chunk_duration, frame
            self._part_target = self._compute_part_target(frame)
        return self._part_target

    _part_target_chunk = -1.0
    _part_target_frame = 0.0
    _part_target = 0

    @property
    def sample_duration(self) -> float:
        """The expected duration of the next sample, in ticks (0.0 while unknown): exact for audio whose
        frame size is known, else the smoothed measured frame duration."""
        return self._fixed_frame or self._frame_estimate

    def _compute_part_target(self, frame: float) -> int:
        target = self.chunk_duration * self.timescale
        if frame <= 0:
            return int(target)
        # OME: N = round(ChunkDuration / frame duration) frames; 15 frames at 30 fps, not 14 of an
        # integer-truncated 33 ms
        return round(max(1, round(target / frame)) * frame)

    @property
    def part_target_seconds(self) -> float:
        return self.part_target / self.timescale

    # -- input --
    def push(self, packet: Packet, wall_time: float) -> None:
        """Runs for every packet of every LL-HLS stream on the event loop: per-track facts are looked up
        once (``_video``, ``_fixed_frame``), timestamps in the track's own time base skip ``ticks``."""
        if self.concluded:
            return
        video = self._video
        if packet.time_base is self._time_base:
            tick = self._tick
            sample = _Sample(packet.dts * tick, packet.pts * tick, packet.keyframe, packet.data)
        else:
            sample = _Sample(self.ticks(packet.dts, packet.time_base), self.ticks(packet.pts, packet.time_base),
                             packet.keyframe, packet.data)
        if self._wall0 is None:
            if video and not sample.keyframe:
                return  # a track starts at a keyframe
            self._wall0, self._dts0 = wall_time, sample.dts
        else:
            # the least delayed packet so far dates the timeline (PROGRAM-DATE-TIME)
            self._wall0 = min(self._wall0, wall_time - (sample.dts - self._dts0) / self.timescale)
        if sample.keyframe and video:
            if self._keyframe_dts is not None and sample.dts > self._keyframe_dts:
                self._keyframe_interval = sample.dts - self._keyframe_dts
            self._keyframe_dts = sample.dts
        prev, self.last = self.last, sample
        if prev is not None:
            self._settle(prev, sample.dts - prev.dts)
            if video and sample.keyframe and self._segment_due(sample.dts):
                self._emit_part()
                self._close_segment()
        # a duration the packet carries is exact; otherwise the frame rate predicts it
        frame = self._fixed_frame or self._frame_estimate
        predicted = self.ticks(packet.duration, packet.time_base) if packet.duration > 0 else round(frame)
        self.current.append((sample, predicted))
        duration = self.current_duration = self.current_duration + predicted
        # the part is cut once it holds the target's whole number of frames (tested inline: most packets don't)
        frame = frame or predicted
        if frame > 0 and duration + frame / 2 >= self.part_target:
            self._cut()

    def _settle(self, prev: _Sample, duration: int) -> None:
        """The previous sample's true duration is known: learn the frame rate from it and, while its part
        is still open, replace the prediction it was added with."""
        if duration <= 0:
            duration = self.frame_duration or 1
        elif self._frame_estimate == 0 or duration < self._frame_estimate * 4:
            self._frame_estimate = duration if self._frame_estimate == 0 else (self._frame_estimate * 7 + duration) / 8
            self.frame_duration = round(self._frame_estimate)
        if self.current and self.current[-1][0] is prev:
            self.current_duration += duration - self.current[-1][1]
            self.current[-1] = (prev, duration)

    def _segment_due(self, end: int) -> bool:
        """The open segment reaches SegmentDuration at decode time ``end`` (within half a frame). Measured
        on the timeline, not summed from parts whose last durations were predictions."""
        seg = self.segments[-1] if self.segments and not self.segments[-1].complete else None
        start = seg.start if seg is not None else self.current[0][0].dts if self.current else end
        return end - start + self.sample_duration / 2 >= self.segment_duration * self.timescale

    def _cut(self) -> None:
        """Close the part: ``push`` found it holds the target's whole number of frames (its last sample's
        duration predicted), without waiting for the next frame; audio closes its segment at a part boundary."""
        last, duration = self.current[-1]
        segment_due = self._segment_due(last.dts + duration)
        self._emit_part()
        if not self._video and segment_due:
            self._close_segment()

    def _open_segment(self, start: int) -> Segment:
        wall = (self._wall0 or 0.0) + (start - self._dts0) / self.timescale
        seg = Segment(self.next_segment_number, start, wall)
        self.next_segment_number += 1
        self.segments.append(seg)
        self._retain()
        return seg

    @property
    def memory_segments(self) -> int:
        """Segments whose bytes stay in memory: the live window, the grace segments, the growing one."""
        return self.segment_count + GRACE_SEGMENTS + 1

    def _retain(self) -> None:
        if self.dvr_window <= 0:
            while len(self.segments) > self.memory_segments:
                self._drop_oldest()
            if self.spill_grace:
                self._spill_unlisted()
            return
        in_memory = [s for s in self.segments if not s.spilled]
        for seg in in_memory[:max(0, len(in_memory) - self.memory_segments)]:
            data = seg.spill()
            if self.on_spill is not None:
                self.on_spill(self, seg, data)
        listed = self.dvr_segments()
        first_listed = listed[0].number if listed else self.next_segment_number
        older = sum(1 for s in self.segments if s.number < first_listed)
        for _ in range(older - GRACE_SEGMENTS):
            self._drop_oldest()

    def _spill_unlisted(self) -> None:
        """Completed segments older than the live window (the grace segments) hand their bytes over."""
        done = self.completed_segments()
        for seg in done[:max(0, len(done) - self.segment_count)]:
            if not seg.spilled:
                data = seg.spill()
                if self.on_spill is not None:
                    self.on_spill(self, seg, data)

    def _drop_oldest(self) -> None:
        seg = self.segments.popleft()
        if self.on_drop is not None:
            self.on_drop(self, seg)

    def _emit_part(self) -> None:
        if not self.current:
            return
        samples = self.current
        self.current, duration = [], self.current_duration
        self.current_duration = 0
        start = samples[0][0].dts
        seg = self.segments[-1] if self.segments and not self.segments[-1].complete else self._open_segment(start)
        # trun rows flat, four ints a sample, packed by one struct call (no Sample object per frame)
        rows: list[int] = []
        extend = rows.extend
        sync, non_sync = sample_flags(True), sample_flags(not self._video)
        for s, d in samples:
            extend((d, len(s.data), sync if s.keyframe else non_sync, s.pts - s.dts))
        fragment = build_track_fragment(self.sequence_number, self.mp4_track_id, start, rows,
                                        [s.data for s, _ in samples])
        self.sequence_number += 1
        data = self._events_for(start, duration) + fragment
        self._tail_ms = samples[-1][0].dts * 1000 // self.timescale
        independent = samples[0][0].keyframe or not self._video
        part = Part(seg.number, len(seg.parts), start, duration, independent, data)
        seg.add_part(part)
        self.max_part_duration = max(self.max_part_duration, duration)
        if self.on_part is not None:
            self.on_part(self, part)

    def _close_segment(self) -> None:
        if self.segments and not self.segments[-1].complete and self.segments[-1].parts:
            seg = self.segments[-1]
            seg.complete = True
            seg.seal()
            self.max_segment_duration = max(self.max_segment_duration, seg.duration)
            if self.dvr_window > 0:
                self._retain()  # the window moved: the oldest listed segment may have left it
            if self.on_segment is not None:
                self.on_segment(self, seg)

    def _events_for(self, start: int, duration: int) -> bytes:
        """emsg boxes for queued events whose time falls in [start, start + duration)."""
        if not self.events:
            return b""
        start_ms = start * 1000 // self.timescale
        end_ms = (start + duration) * 1000 // self.timescale
        out: list[bytes] = []
        keep: list[PendingEvent] = []
        for ev in self.events:
            at = start_ms if ev.time_ms < 0 else ev.time_ms
            if self._tail_ms is not None and self._tail_ms <= at < start_ms:
                at = start_ms  # in the previous part's last frame, closed before the event came: the next part
            if at < start_ms:
                log.debug("emsg dropped (older than part) track=%d time_ms=%d part_start_ms=%d", self.track.id,
                          at, start_ms)
                continue
            if at >= end_ms:
                keep.append(ev)
                continue
            out.append(build_emsg_v1(timescale=1000, presentation_time=at, event_duration=0xFFFFFFFF,
                                     event_id=ev.event_id, scheme_id_uri=EMSG_SCHEME, value=EMSG_VALUE,
                                     message_data=ev.message))
        self.events = keep
        return b"".join(out)

    def add_event(self, time_ms: int, message: bytes) -> None:
        event_id = self._event_ids() if self._event_ids is not None else 0
        self.events.append(PendingEvent(time_ms, event_id, message))

    def conclude(self) -> None:
        """concludeHlsLive / stream end: flush what is pending and stop growing."""
        if self.concluded:
            return
        if self.current and self.current[-1][1] <= 0:  # a lone first sample with no duration known
            self.current[-1] = (self.current[-1][0], 1)
            self.current_duration += 1
        self._emit_part()
        self._close_segment()
        self.concluded = True

    # -- queries --
    def next_part(self) -> tuple[int, int]:
        """The (msn, part) expected next, which PRELOAD-HINT announces. A video part is closed before the
        next frame says whether it starts a segment, so a due segment whose next frame the keyframe
        interval predicts to be a keyframe announces the next segment's first part."""
        seg = self.segments[-1] if self.segments and not self.segments[-1].complete else None
        if seg is None:
            return self.next_segment_number, 0
        if not self.current and self.last is not None and self._keyframe_starts_next():
            return self.next_segment_number, 0
        return seg.number, len(seg.parts)

    def _keyframe_starts_next(self) -> bool:
        last, frame = self.last, self.sample_duration
        if last is None or frame <= 0 or not self._keyframe_interval or self._keyframe_dts is None:
            return False
        following = last.dts + round(frame)
        return (abs(self._keyframe_dts + self._keyframe_interval - following) <= frame / 2
                and self._segment_due(following))

    def last_part(self) -> tuple[int, int] | None:
        """(msn, part index) of the newest part."""
        for seg in reversed(self.segments):
            if seg.parts:
                return seg.number, len(seg.parts) - 1
        return None

    def has_part(self, msn: int, part: int) -> bool:
        last = self.last_part()
        if last is None:
            return False
        if msn < last[0]:
            return True
        return msn == last[0] and part <= last[1]

    def segment(self, number: int) -> Segment | None:
        for seg in self.segments:
            if seg.number == number:
                return seg
        return None

    def completed_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.complete]

    def dvr_segments(self) -> list[Segment]:
        """The DVR window: the newest completed segments that together last at most MaxDuration
        (never fewer than SegmentCount)."""
        done = self.completed_segments()
        budget = self.dvr_window * self.timescale
        total, start = 0, len(done)
        while start > 0:
            total += done[start - 1].duration
            if total > budget and len(done) - start >= self.segment_count:
                break
            start -= 1
        return done[start:]

    def live_segments(self) -> list[Segment]:
        """The live window: the newest SegmentCount complete segments plus the growing one."""
        done = self.completed_segments()[-self.segment_count:]
        return done + self._growing()

    def listed_segments(self) -> list[Segment]:
        """Segments a playlist with _HLS_rewind=YES lists: the DVR window when DVR is on, else the
        live window; plus the growing one."""
        if self.dvr_window <= 0:
            return self.live_segments()
        return self.dvr_segments() + self._growing()

    def _growing(self) -> list[Segment]:
        return [s for s in self.segments if not s.complete and s.parts]

    def wall_time(self, ticks: int) -> float:
        return (self._wall0 or 0.0) + (ticks - self._dts0) / self.timescale
