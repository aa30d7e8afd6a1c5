"""What each scheduled channel is playing now, for GET scheduledChannels/{stream}'s ``currentProgram``.

Written by the channel's worker thread at every item change, read by HTTP handlers: a read never waits
on the worker or an actor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kiln.media.ingest.schedule.plan import Slot


@dataclass(frozen=True)
class OnAir:
    slot: Slot
    program_end_ms: int | None  # None: the last program or the fallback, which never end
    started_wall: float         # when the worker began the item (Unix time), to tell the position

    def position_ms(self, now: float) -> int:
        """Where in the item's file playback is: its start, the offset joined at, and the time since. A stream://
        item has no position but the time since it began playing (OME: the source's time since its first packet),
        never the program's time at which it was joined (a day into a "duration -1" program is not a position)."""
        since = max(0, int((now - self.started_wall) * 1000))
        if self.slot.item.stream_target is not None:
            return since
        return self.slot.item.start_ms + self.slot.offset_ms + since


class ScheduleBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on_air: dict[tuple[str, str, str], OnAir | None] = {}

    def set(self, key: tuple[str, str, str], on_air: OnAir | None) -> None:
        with self._lock:
            self._on_air[key] = on_air

    def clear(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._on_air.pop(key, None)

    def get(self, key: tuple[str, str, str]) -> OnAir | None:
        with self._lock:
            return self._on_air.get(key)
