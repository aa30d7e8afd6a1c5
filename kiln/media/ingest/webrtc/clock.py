"""RTP timestamps → one timeline for every track of a publisher (A/V sync from RTCP sender reports).

Each track's RTP clock starts at a random value and runs at its own rate; only an RTCP sender report
(SR) says which RTP time matches which wall time of the sender. The session's timeline is this
machine's monotonic clock: the first SR of the session fixes the sender-NTP → local offset, a track
with an SR is anchored through it, and a track without one (yet) is anchored at its first frame's
arrival. Anchors never move afterwards, so timestamps never jump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_seconds(ntp: int) -> float:
    """A 64-bit NTP timestamp in Unix seconds."""
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


@dataclass
class RtpUnwrapper:
    """32-bit RTP timestamps → a monotonic-ish 64-bit count (handles wrap-around and small reorders)."""

    _last: int | None = None

    def extend(self, ts: int) -> int:
        if self._last is None:
            self._last = ts
            return ts
        base = self._last & ~0xFFFFFFFF
        ext = base | ts
        if ext - self._last > 0x80000000:
            ext -= 0x100000000
        elif self._last - ext > 0x80000000:
            ext += 0x100000000
        if ext > self._last:
            self._last = ext
        return ext


@dataclass
class TrackClock:
    """One track's RTP clock, anchored to the session timeline once."""

    rate: int
    unwrap: RtpUnwrapper = field(default_factory=RtpUnwrapper)
    sr: tuple[int, float] | None = None        # (extended RTP time, sender Unix seconds) of the latest SR
    anchor: tuple[int, float] | None = None    # (extended RTP time, session seconds)

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, self.rate)

    def seconds(self, ext: int) -> float:
        assert self.anchor is not None
        return self.anchor[1] + (ext - self.anchor[0]) / self.rate


@dataclass
class SessionClock:
    """The timeline every track of one publisher shares."""

    offset: float | None = None   # sender Unix seconds − local monotonic seconds, fixed by the first SR
    zero: float | None = None     # session seconds that become timestamp 0

    def sender_report(self, track: TrackClock, rtp_ts: int, ntp: int, local: float) -> None:
        sender = ntp_seconds(ntp)
        if self.offset is None:
            self.offset = sender - local
        track.sr = (track.unwrap.extend(rtp_ts), sender)

    def anchor(self, track: TrackClock, ext: int, arrival: float) -> None:
        """Fix ``track``'s anchor: through its SR when it has one, else at this frame's arrival."""
        if track.anchor is not None:
            return
        if track.sr is not None and self.offset is not None:
            track.anchor = (track.sr[0], track.sr[1] - self.offset)
        else:
            track.anchor = (ext, arrival)

    def ticks(self, track: TrackClock, ext: int) -> int:
        """The frame's timestamp in ``track.time_base`` units from the session's zero."""
        assert self.zero is not None
        return round((track.seconds(ext) - self.zero) * track.rate)
