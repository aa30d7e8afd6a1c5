"""Cutting one variant's packets into MPEG-TS segments at keyframes, and the window players see.

A segment is cut before a keyframe of the cut track (the variant's video, else its audio) once the
open segment holds at least ``SegmentDuration`` of it, so every segment starts with a keyframe and
lasts about the target. Each segment is muxed by its own muxer, so it starts with PAT/PMT and plays
on its own. Finished segments replace an immutable tuple: HTTP readers on the event loop read it
without a lock while the worker thread cuts the next one.

With DVR (``dvr_window`` seconds, 0 = off) the listed window is the newest segments lasting at most
MaxDuration; segments older than the live window keep only their listing facts here, their bytes
are handed to ``on_spill`` (the DVR store) and ``on_drop`` is told when they leave the DVR window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from kiln.media.model import Packet

log = logging.getLogger(__name__)

SPARE_SEGMENTS = 2  # kept beyond the listed window, for a player that read the playlist just before a cut


class SegmentMuxer(Protocol):
    def write(self, packet: Packet) -> None:
        """Mux one packet into the open segment."""

    def finish(self) -> bytes:
        """Close the segment; its TS bytes."""


@dataclass(frozen=True)
class TsSegment:
    number: int
    duration: float  # seconds, measured on the cut track
    data: bytes
    spilled: bool = False  # DVR: the bytes live on disk, ``data`` is empty


class TsSegmenter:
    """One variant's segments: fed packets by the worker thread, read by the HTTP side."""

    def __init__(self, cut_track_id: int, track_ids: frozenset[int], segment_duration: float, segment_count: int,
                 open_muxer: Callable[[], SegmentMuxer], *, dvr_window: float = 0.0,
                 on_spill: Callable[[TsSegment], None] | None = None,
                 on_drop: Callable[[TsSegment], None] | None = None) -> None:
        self.cut_track_id = cut_track_id
        self.track_ids = track_ids
        self.segment_duration = segment_duration
        self.segment_count = segment_count
        self._open_muxer = open_muxer
        self.dvr_window = dvr_window
        self._on_spill = on_spill
        self._on_drop = on_drop
        self._muxer: SegmentMuxer | None = None
        self._start: Fraction | None = None   # cut-track time the open segment starts at
        self._last: Fraction | None = None    # latest cut-track time seen in the open segment
        self._next_number = 0
        self.segments: tuple[TsSegment, ...] = ()
        self.finished = False

    def push(self, packet: Packet) -> None:
        if self.finished or packet.track_id not in self.track_ids:
            return
        on_cut_track = packet.track_id == self.cut_track_id
        t = Fraction(packet.dts) * packet.time_base
        if on_cut_track and packet.keyframe:
            if self._muxer is not None and self._start is not None and t - self._start >= self.segment_duration:
                self._close(t)
            if self._muxer is None:
                self._muxer = self._open_muxer()
                self._start = t
        if self._muxer is None:
            return  # nothing before the first keyframe of the cut track
        if on_cut_track:
            end = t + Fraction(packet.duration) * packet.time_base
            self._last = end if self._last is None else max(self._last, end)
        self._muxer.write(packet)

    def finish(self) -> None:
        """The stream ended: the open segment becomes the last one."""
        if self.finished:
            return
        if self._muxer is not None and self._last is not None:
            self._close(self._last)
        self._muxer = None
        self.finished = True

    def listed(self) -> tuple[TsSegment, ...]:
        """The segments a media playlist lists: the newest ``segment_count``, or with DVR the window."""
        if self.dvr_window <= 0:
            return self.segments[-self.segment_count:]
        return self.segments[self._dvr_start(self.segments):]

    def _dvr_start(self, segments: tuple[TsSegment, ...]) -> int:
        """Index of the oldest segment of the DVR window: the newest segments lasting at most
        MaxDuration (never fewer than SegmentCount)."""
        total, start = 0.0, len(segments)
        while start > 0:
            total += segments[start - 1].duration
            if total > self.dvr_window and len(segments) - start >= self.segment_count:
                break
            start -= 1
        return start

    def segment(self, number: int) -> TsSegment | None:
        for seg in self.segments:
            if seg.number == number:
                return seg
        return None

    def _close(self, end: Fraction) -> None:
        assert self._muxer is not None and self._start is not None
        data = self._muxer.finish()
        seg = TsSegment(self._next_number, float(max(end - self._start, Fraction(0))), data)
        self._next_number += 1
        self._muxer = None
        self._start = None
        self._last = None
        keep = self.segment_count + SPARE_SEGMENTS
        if self.dvr_window <= 0:
            self.segments = (*self.segments, seg)[-keep:]
        else:
            self.segments = self._dvr_keep((*self.segments, seg), keep)
        log.debug("hls segment number=%d duration=%.3f bytes=%d", seg.number, seg.duration, len(data))

    def _dvr_keep(self, segments: tuple[TsSegment, ...], live: int) -> tuple[TsSegment, ...]:
        """The DVR window plus SPARE_SEGMENTS older ones; only the newest ``live`` keep their bytes."""
        start = max(0, self._dvr_start(segments) - SPARE_SEGMENTS)
        for old in segments[:start]:
            if self._on_drop is not None:
                self._on_drop(old)
        kept = list(segments[start:])
        for i in range(max(0, len(kept) - live)):
            if not kept[i].spilled:
                if self._on_spill is not None:
                    self._on_spill(kept[i])
                kept[i] = TsSegment(kept[i].number, kept[i].duration, b"", spilled=True)
        return tuple(kept)
