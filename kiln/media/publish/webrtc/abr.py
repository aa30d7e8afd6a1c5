"""``webrtcAutoAbr``: which rendition a viewer's estimated bandwidth carries (pure).

Renditions are ranked by their video bitrate (configured, else measured). The highest one whose
bitrate fits in ``HEADROOM`` of the estimate is chosen; the lowest when none fits. Going up needs
``UP_CHECKS`` estimates in a row that allow it, so one optimistic report does not flap the viewer.
"""

from __future__ import annotations

from collections.abc import Callable

from kiln.media.publish.webrtc.choose import Rendition

HEADROOM = 0.85
UP_CHECKS = 2


class AutoAbr:
    def __init__(self, renditions: tuple[Rendition, ...], bitrate_of: Callable[[Rendition], int]) -> None:
        self.renditions = renditions
        self.bitrate_of = bitrate_of
        self._up_votes = 0

    def target(self, estimate_bps: int) -> Rendition:
        ranked = sorted(self.renditions, key=self.bitrate_of)
        fitting = [r for r in ranked if self.bitrate_of(r) <= estimate_bps * HEADROOM]
        return fitting[-1] if fitting else ranked[0]

    def decide(self, current: Rendition, estimate_bps: int | None) -> Rendition | None:
        """The rendition to switch to now, or None to stay."""
        if estimate_bps is None or len(self.renditions) < 2:
            return None
        target = self.target(estimate_bps)
        if target is current:
            self._up_votes = 0
            return None
        if self.bitrate_of(target) > self.bitrate_of(current):
            self._up_votes += 1
            if self._up_votes < UP_CHECKS:
                return None
        self._up_votes = 0
        return target
