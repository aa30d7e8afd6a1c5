"""Increasing per-track timestamps from MPEG-TS's 33-bit clock, across wrap-arounds and discontinuities.

The rule, in the TS clock's own ticks (1/90000 s):

- **Wrap-around.** PTS/DTS are 33-bit counters that wrap every 2^33 ticks (about 26.5 hours). A dts is
  taken modulo 2^33 (which undoes whatever one-off correction lavf applied) and unwrapped to the value
  nearest the track's previous dts (a track's first dts: nearest the newest timeline's latest dts); a pts
  is unwrapped nearest its dts. A wrap is invisible: timestamps keep counting past 2^33.
- **Discontinuity.** A track whose unwrapped dts goes backwards, or forwards by more than
  ``JUMP_AHEAD_S``, has left its timeline (encoder restart, splice, concatenated TS, a sender that reset
  its clock). If another track already opened a newer timeline that this dts fits (from ``JOIN_BEHIND_S``
  before to ``JUMP_AHEAD_S`` after that timeline's latest dts) the track joins it, so the tracks keep their
  relative sync; otherwise it opens a new timeline whose offset puts this dts at the furthest point any
  track has reached (its last dts plus duration). Packets of a track still on the old timeline keep the
  old offset, so interleaved late packets are not taken for another jump.
- **Guard.** A dts that is still not above its track's previous one becomes previous + 1 (pts is kept
  >= dts): no consumer ever sees a track's dts stand still or go backwards.

The first timeline keeps the source's own timestamps (offset 0), like every other ingest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

WRAP_BITS = 33
TICKS_PER_S = 90_000
JUMP_AHEAD_S = 10  # ffmpeg's -dts_delta_threshold: a larger forward step is a new timeline, not a gap
JOIN_BEHIND_S = 5  # how far a track's first new dts may trail the timeline another track opened
MAX_TIMELINES = 4  # older ones no track is on any more are forgotten


@dataclass
class _Timeline:
    serial: int
    offset: int  # added to unwrapped input timestamps
    latest: int  # newest unwrapped dts seen on it


@dataclass
class _TrackClock:
    timeline: _Timeline
    unwrapped: int  # previous unwrapped input dts
    dts: int  # previous output dts
    end: int  # previous output dts plus its duration


class TsClock:
    """Maps one TS input's (dts, pts) per track to continuous output timestamps (same ticks)."""

    def __init__(self, label: str = "", *, wrap_bits: int = WRAP_BITS, ticks_per_s: int = TICKS_PER_S) -> None:
        self.label = label
        self.wrap = 1 << wrap_bits
        self.jump_ahead = JUMP_AHEAD_S * ticks_per_s
        self.join_behind = JOIN_BEHIND_S * ticks_per_s
        self.discontinuities = 0
        self._timelines: list[_Timeline] = []
        self._tracks: dict[int, _TrackClock] = {}

    def place(self, track_id: int, dts: int, pts: int, duration: int = 0) -> tuple[int, int]:
        """(dts, pts) for the output; ``duration`` (ticks, 0 when unknown) tells where the track got to."""
        raw = dts % self.wrap
        clock = self._tracks.get(track_id)
        if clock is None:
            timeline, unwrapped = self._first(track_id, raw)
        else:
            timeline, unwrapped = clock.timeline, self._nearest(raw, clock.unwrapped)
            if not clock.unwrapped <= unwrapped <= clock.unwrapped + self.jump_ahead:
                timeline, unwrapped = self._switch(track_id, clock, raw, unwrapped)
        timeline.latest = max(timeline.latest, unwrapped)
        out_dts = unwrapped + timeline.offset
        out_pts = out_dts + self._signed((pts - dts) % self.wrap)
        previous = clock.dts if clock is not None else None
        if previous is not None and out_dts <= previous:
            out_dts = previous + 1
            out_pts = max(out_pts, out_dts)
        step = out_dts - previous if previous is not None else 1
        self._tracks[track_id] = _TrackClock(timeline, unwrapped, out_dts, out_dts + (duration or step))
        return out_dts, out_pts

    def extend(self, track_id: int, dts: int, end: int) -> None:
        """One input packet became several (ADTS frames): the track's last output dts and end."""
        clock = self._tracks.get(track_id)
        if clock is not None:
            clock.dts, clock.end = max(clock.dts, dts), max(clock.end, end)

    def end_of(self, track_id: int) -> int | None:
        """Where the track got to (its last output dts plus duration), None before its first packet."""
        clock = self._tracks.get(track_id)
        return clock.end if clock is not None else None

    # -- helpers --------------------------------------------------------------------------------
    def _signed(self, delta: int) -> int:
        return delta - self.wrap if delta >= self.wrap // 2 else delta

    def _nearest(self, raw: int, reference: int) -> int:
        return reference + self._signed((raw - reference) % self.wrap)

    def _fits(self, timeline: _Timeline, unwrapped: int) -> bool:
        return timeline.latest - self.join_behind <= unwrapped <= timeline.latest + self.jump_ahead

    def _first(self, track_id: int, raw: int) -> tuple[_Timeline, int]:
        if not self._timelines:
            timeline = _Timeline(0, 0, raw)
            self._timelines.append(timeline)
            return timeline, raw
        newest = self._timelines[-1]
        unwrapped = self._nearest(raw, newest.latest)
        if self._fits(newest, unwrapped):
            return newest, unwrapped
        return self._open(track_id, None, unwrapped), unwrapped

    def _switch(self, track_id: int, clock: _TrackClock, raw: int, unwrapped: int) -> tuple[_Timeline, int]:
        for timeline in reversed(self._timelines):
            if timeline.serial <= clock.timeline.serial:
                break
            candidate = self._nearest(raw, timeline.latest)
            if self._fits(timeline, candidate):
                log.info("ts timestamps rejoin input=%s track=%d timeline=%d", self.label, track_id, timeline.serial)
                return timeline, candidate
        return self._open(track_id, clock, unwrapped), unwrapped

    def _open(self, track_id: int, clock: _TrackClock | None, unwrapped: int) -> _Timeline:
        furthest = max((c.end for c in self._tracks.values()), default=unwrapped)
        timeline = _Timeline(self._timelines[-1].serial + 1, furthest - unwrapped, unwrapped)
        self._timelines = [*self._timelines[-(MAX_TIMELINES - 1):], timeline]
        self.discontinuities += 1
        log.info("ts timestamp discontinuity input=%s track=%d from_dts=%s to_dts=%d continues_at=%d timeline=%d",
                 self.label, track_id, clock.unwrapped if clock is not None else "-", unwrapped, furthest,
                 timeline.serial)
        return timeline
