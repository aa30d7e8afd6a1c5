"""What a scheduled channel plays at a given time: pure, so repeat and fallback are tested without a clock.

OME's rules (``schedule.cpp``, ``scheduled_stream.cpp``): a program is on air from its ``scheduled`` time until
the next program's; its items play back to back from the scheduled time, over again when it repeats (joining
mid-item when the channel starts late), and it goes off air once played through otherwise. A ``stream://`` item
(another live stream of the server) lasts its duration, or for ever (``LIVE_FOREVER_MS``) with duration -1, and
cannot play while its stream is not live. When no program is on air the fallback program's items play in turn,
until a program begins; also once the program on air reaches an item that cannot play, unless the item says
``fallbackOnErr`` false (then it is skipped). An item's length is its configured duration, or the rest of its
file (``length`` tells it; 0 when it cannot play: a missing file, a stream that is not live).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiln.events.schedules import Item, Program, Schedule

JOIN_SLACK_MS = 1000  # OME starts a program at its first item when the channel is less than 1 s late
LIVE_FOREVER_MS = 10**13  # a stream:// item of duration -1 plays for as long as its program is on air (~317 years)


@dataclass(frozen=True)
class Slot:
    """Play ``item`` from ``offset_ms`` past its ``start`` for ``play_ms``, then ask again."""

    program: Program | None  # None: the fallback program
    index: int
    item: Item
    offset_ms: int
    play_ms: int


@dataclass(frozen=True)
class Idle:
    """Nothing to play until ``until_ms`` (None: until the schedule changes)."""

    until_ms: int | None


def unimplemented(schedule: Schedule) -> list[str]:
    """What the schedule asks that Kiln does not do, in the words of the startup's warnings (OME's schedule
    fields it cannot play at all, stream:// items, are refused when the schedule is read)."""
    if schedule.stream.bypass_transcoder:
        return ["Stream.BypassTranscoder true: not implemented by Kiln, the application's output profiles apply "
                "(a profile of bypass encodes passes the files through)"]
    return []


def current_program(schedule: Schedule, now_ms: int) -> tuple[Program, int | None] | None:
    """The program on air at ``now_ms`` by the clock (and when it ends), whether or not it has anything left."""
    for index, program in enumerate(schedule.programs):
        end = schedule.program_end_ms(index)
        if program.scheduled_ms <= now_ms and (end is None or now_ms < end):
            return program, end
    return None


def next_start(schedule: Schedule, now_ms: int) -> int | None:
    return min((p.scheduled_ms for p in schedule.programs if p.scheduled_ms > now_ms), default=None)


def _bounded(play_ms: int, now_ms: int, until_ms: int | None) -> int:
    return play_ms if until_ms is None else min(play_ms, until_ms - now_ms)


def on_air(schedule: Schedule, now_ms: int, length: Callable[[Item], int], fallback_next: int = 0) -> Slot | Idle:
    """What to play at ``now_ms``. ``length(item)``: the item's playable ms (0: it cannot play, skipped).
    ``fallback_next``: the fallback item to play if the fallback is on (they take turns, from 0)."""
    found = current_program(schedule, now_ms)
    until = next_start(schedule, now_ms)
    if found is not None:
        program, end = found
        lengths = [max(0, length(item)) for item in program.items]
        total = sum(lengths)
        elapsed = now_ms - program.scheduled_ms
        if elapsed < JOIN_SLACK_MS:
            elapsed = 0
        if _handed_to_fallback(program, lengths, elapsed):
            slot = _fallback_slot(schedule, now_ms, length, fallback_next, until)
            if slot is not None:
                return slot
        if total > 0 and (program.repeat or elapsed < total):
            position = elapsed % total
            for index, ms in enumerate(lengths):
                if position < ms:
                    return Slot(program, index, program.items[index], position,
                                _bounded(ms - position, now_ms, end))
                position -= ms
    return _fallback_slot(schedule, now_ms, length, fallback_next, until) or Idle(until)


def _handed_to_fallback(program: Program, lengths: list[int], elapsed: int) -> bool:
    """OME's ``fallbackOnErr`` (true unless an item says false): once the program reaches an item that cannot
    play, the fallback program plays instead for the rest of the program's time (OME retries the item after
    each fallback item; here it plays again, by the clock, as soon as its file can)."""
    before = 0
    for item, ms in zip(program.items, lengths, strict=True):
        if ms == 0 and item.fallback_on_err:
            return elapsed >= before
        before += ms
    return False


def _fallback_slot(schedule: Schedule, now_ms: int, length: Callable[[Item], int], fallback_next: int,
                   until: int | None) -> Slot | None:
    """The fallback program's next item that can play (they take turns), or None."""
    if not schedule.fallback:
        return None
    count = len(schedule.fallback)
    for step in range(count):
        index = (fallback_next + step) % count
        ms = length(schedule.fallback[index])
        if ms > 0:
            return Slot(None, index, schedule.fallback[index], 0, _bounded(ms, now_ms, until))
    return None
