"""Per-track measurements shown by the streams API (rest-spec §8.3): bitrate, frame rate, GOP.

Measured on media time (dts), so a burst of buffered packets does not inflate the rates, and
"latest" values cover the last second of media. Updated by the ingest thread, read by HTTP;
single attribute writes are atomic in CPython, and readers tolerate a value that is one packet old.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol


class MeteredPacket(Protocol):
    """What a meter reads of a packet (kiln.media.model.Packet has it; metrics imports no media)."""

    @property
    def time_base(self) -> Fraction: ...
    @property
    def pts(self) -> int: ...
    @property
    def dts(self) -> int: ...
    @property
    def keyframe(self) -> bool: ...
    @property
    def data(self) -> bytes: ...


@dataclass
class TrackMeter:
    """Owned by one track of one stream; written only by the thread that feeds that track."""

    packets: int = 0
    bytes: int = 0
    first_dts_ms: float | None = None
    last_dts_ms: float = 0.0
    has_bframes: bool = False
    keyframes: int = 0
    frames_since_key: int = 0
    last_gop: int = 0
    gop_total_frames: int = 0
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _window_bytes: int = 0
    _time_base: Fraction | None = None   # the time base of the last packet, and its ms conversion
    _ms_num: int = 1
    _ms_den: int = 1

    def add(self, packet: MeteredPacket) -> None:
        # once per packet of every track, twice with an encode: plain attribute reads, no Fraction
        # properties (dts * num * 1000 / den, as Packet.dts_ms computes it, bit for bit)
        tb = packet.time_base
        if tb is not self._time_base:
            self._time_base = tb
            self._ms_num = tb.numerator * 1000
            self._ms_den = tb.denominator
        dts = packet.dts
        dts_ms = dts * self._ms_num / self._ms_den
        size = len(packet.data)
        if dts_ms > self.last_dts_ms:
            self.last_dts_ms = dts_ms
        if self.first_dts_ms is None:
            self.first_dts_ms = dts_ms
        self.packets += 1
        self.bytes += size
        if packet.pts != dts:
            self.has_bframes = True
        if packet.keyframe:
            if self.keyframes:
                self.last_gop = frames = self.frames_since_key
                self.gop_total_frames += frames
            self.keyframes += 1
            self.frames_since_key = 1
        else:
            self.frames_since_key += 1
        window = self._window
        window.append((dts_ms, size))
        oldest = window[0]
        if dts_ms - oldest[0] > 1000.0:  # usually one packet leaves the last second as one comes in
            window_bytes = self._window_bytes + size - window.popleft()[1]
            while dts_ms - window[0][0] > 1000.0:
                window_bytes -= window.popleft()[1]
            self._window_bytes = window_bytes
        else:
            self._window_bytes += size

    @property
    def duration_s(self) -> float:
        if self.first_dts_ms is None:
            return 0.0
        return max(0.0, (self.last_dts_ms - self.first_dts_ms) / 1000.0)

    @property
    def bitrate_avg(self) -> int:
        d = self.duration_s
        return int(self.bytes * 8 / d) if d > 0 else 0

    @property
    def bitrate_latest(self) -> int:
        if len(self._window) < 2:
            return 0
        span = (self._window[-1][0] - self._window[0][0]) / 1000.0
        return int(self._window_bytes * 8 / span) if span > 0 else 0

    @property
    def framerate_avg(self) -> float:
        d = self.duration_s
        return (self.packets - 1) / d if d > 0 and self.packets > 1 else 0.0

    @property
    def framerate_latest(self) -> float:
        if len(self._window) < 2:
            return 0.0
        span = (self._window[-1][0] - self._window[0][0]) / 1000.0
        return (len(self._window) - 1) / span if span > 0 else 0.0

    @property
    def key_frame_interval_avg(self) -> float:
        """Frames per GOP over complete GOPs; 0 until a second keyframe closes the first GOP."""
        gops = self.keyframes - 1
        return self.gop_total_frames / gops if gops > 0 else 0.0

    @property
    def key_frame_interval_latest(self) -> int:
        return self.last_gop if self.keyframes > 1 else 0
