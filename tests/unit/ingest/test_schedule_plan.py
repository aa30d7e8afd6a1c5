"""What a scheduled channel plays at a given time: programs, repeat, joining late, fallback, idle."""

from __future__ import annotations

from kiln.events.schedules import ChannelStream, Item, Program, Schedule
from kiln.media.ingest.schedule.board import OnAir
from kiln.media.ingest.schedule.plan import LIVE_FOREVER_MS, Idle, Slot, on_air, unimplemented

T0 = 1_700_000_000_000  # a program's start, in Unix ms
A, B, F1, F2 = (Item(f"file://{n}.mp4") for n in ("a", "b", "f1", "f2"))
LENGTHS = {A.url: 3000, B.url: 2000, F1.url: 1500, F2.url: 4000}


def length(item: Item) -> int:
    return LENGTHS.get(item.url, 0)


def schedule(*programs: Program, fallback: tuple[Item, ...] | None = None) -> Schedule:
    return Schedule(ChannelStream("tv"), fallback, programs)


def program(at: int, repeat: bool, *items: Item, name: str = "p") -> Program:
    return Program(name, "", at, repeat, items)


def test_items_play_back_to_back_from_the_scheduled_time() -> None:
    p = program(T0, False, A, B)
    s = schedule(p)
    assert on_air(s, T0, length) == Slot(p, 0, A, 0, 3000)
    assert on_air(s, T0 + 3000, length) == Slot(p, 1, B, 0, 2000)
    assert on_air(s, T0 + 4200, length) == Slot(p, 1, B, 1200, 800)  # joined late: mid-item


def test_a_channel_less_than_a_second_late_starts_at_the_first_item() -> None:
    p = program(T0, False, A, B)
    assert on_air(schedule(p), T0 + 900, length) == Slot(p, 0, A, 0, 3000)


def test_a_repeating_program_starts_over_and_one_that_does_not_goes_off_air() -> None:
    once, again = program(T0, False, A, B), program(T0, True, A, B)
    assert on_air(schedule(again), T0 + 5000, length) == Slot(again, 0, A, 0, 3000)
    assert on_air(schedule(again), T0 + 5000 * 7 + 3500, length) == Slot(again, 1, B, 500, 1500)
    assert on_air(schedule(once), T0 + 5000, length) == Idle(None)


def test_a_program_ends_when_the_next_begins_cutting_its_item() -> None:
    first, second = program(T0, True, A, name="1"), program(T0 + 4000, True, B, name="2")
    s = schedule(first, second)
    assert on_air(s, T0 + 3000, length) == Slot(first, 0, A, 0, 1000)  # the next program begins in 1 s
    assert on_air(s, T0 + 4000, length) == Slot(second, 0, B, 0, 2000)
    assert on_air(s, T0 - 10, length) == Idle(T0)  # before the first: nothing until it begins


def test_the_fallback_plays_when_nothing_is_on_air_in_turn_and_until_a_program_begins() -> None:
    p = program(T0 + 60_000, False, A)
    s = schedule(p, fallback=(F1, F2))
    assert on_air(s, T0, length) == Slot(None, 0, F1, 0, 1500)
    assert on_air(s, T0 + 1500, length, fallback_next=1) == Slot(None, 1, F2, 0, 4000)
    assert on_air(s, T0 + 5500, length, fallback_next=2) == Slot(None, 0, F1, 0, 1500)
    assert on_air(s, T0 + 59_000, length, fallback_next=1) == Slot(None, 1, F2, 0, 1000)
    assert on_air(s, T0 + 60_000, length) == Slot(p, 0, A, 0, 3000)
    assert on_air(s, T0 + 63_000, length) == Slot(None, 0, F1, 0, 1500)  # played through, not repeated


def test_items_that_cannot_play_are_skipped() -> None:
    missing = Item("file://missing.mp4")
    p = program(T0, True, missing, A)
    assert on_air(schedule(p), T0, length) == Slot(p, 1, A, 0, 3000)  # no fallback program to play instead
    s = schedule(program(T0, True, missing), fallback=(missing, F2))
    assert on_air(s, T0, length) == Slot(None, 1, F2, 0, 4000)
    assert on_air(schedule(fallback=(missing,)), T0, length) == Idle(None)


def test_an_item_that_cannot_play_hands_the_rest_of_its_program_to_the_fallback_as_ome_fallback_on_err() -> None:
    missing = Item("file://missing.mp4")  # fallbackOnErr: OME's default, true
    p = program(T0, True, A, missing, B)
    s = schedule(p, program(T0 + 60_000, False, B, name="next"), fallback=(F1, F2))
    assert on_air(s, T0 + 1000, length) == Slot(p, 0, A, 1000, 2000)  # before it: the program plays
    assert on_air(s, T0 + 3000, length) == Slot(None, 0, F1, 0, 1500)  # reached: the fallback, in turn
    assert on_air(s, T0 + 4500, length, fallback_next=1) == Slot(None, 1, F2, 0, 4000)
    assert on_air(s, T0 + 58_000, length, fallback_next=1) == Slot(None, 1, F2, 0, 2000)  # to the next program
    assert on_air(s, T0 + 60_000, length).program is not None  # which plays
    LENGTHS[missing.url] = 1000  # its file came back: the program plays again, by the clock
    try:
        assert on_air(s, T0 + 3500, length) == Slot(p, 1, missing, 500, 500)
    finally:
        del LENGTHS[missing.url]


def test_an_item_that_says_fallback_on_err_false_is_skipped_and_without_a_fallback_any_is() -> None:
    skipped = Item("file://missing.mp4", fallback_on_err=False)
    p = program(T0, True, A, skipped, B)
    assert on_air(schedule(p, fallback=(F1,)), T0 + 3000, length) == Slot(p, 2, B, 0, 2000)
    handed = program(T0, True, A, Item("file://missing.mp4"), B)
    assert on_air(schedule(handed), T0 + 3000, length) == Slot(handed, 2, B, 0, 2000)  # no fallback to hand to
    broken_fallback = schedule(handed, fallback=(Item("file://gone.mp4"),))
    assert on_air(broken_fallback, T0 + 3000, length) == Slot(handed, 2, B, 0, 2000)


def test_bypass_transcoder_is_said_to_be_unimplemented() -> None:
    assert unimplemented(schedule()) == []
    bypass = Schedule(ChannelStream("tv", bypass_transcoder=True))
    assert unimplemented(bypass) == ["Stream.BypassTranscoder true: not implemented by Kiln, the application's "
                                     "output profiles apply (a profile of bypass encodes passes the files through)"]


CAM, CAM_FOREVER = Item("stream://default/app/cam", 0, 5000), Item("stream://default/app/cam2", 0, -1)


def test_a_live_item_plays_its_duration_or_for_ever_while_its_stream_is_live_and_the_fallback_while_not() -> None:
    live = {CAM.url: 5000, CAM_FOREVER.url: LIVE_FOREVER_MS}  # what the worker's lengths say while both are live

    def lengths(item: Item) -> int:
        return live.get(item.url, LENGTHS.get(item.url, 0))

    p = program(T0, True, A, CAM)
    s = schedule(p, fallback=(F1,))
    assert on_air(s, T0 + 3000, lengths) == Slot(p, 1, CAM, 0, 5000)
    assert on_air(s, T0 + 8000, lengths) == Slot(p, 0, A, 0, 3000)  # and round again
    forever = program(T0, True, A, CAM_FOREVER)
    assert on_air(schedule(forever), T0 + 3000 + 86_400_000, lengths) == Slot(
        forever, 1, CAM_FOREVER, 86_400_000, LIVE_FOREVER_MS - 86_400_000)  # a day later: still the live stream
    del live[CAM.url]  # its stream is not live: the fallback plays from when the program reaches it
    assert on_air(s, T0 + 1000, lengths) == Slot(p, 0, A, 1000, 2000)
    assert on_air(s, T0 + 3000, lengths) == Slot(None, 0, F1, 0, 1500)
    skipped = program(T0, True, A, Item(CAM.url, 0, 5000, fallback_on_err=False))
    assert on_air(schedule(skipped, fallback=(F1,)), T0 + 3000, lengths) == Slot(skipped, 0, A, 0, 3000)


def test_a_live_items_position_is_the_time_since_it_began_playing() -> None:
    p = program(T0, True, A, CAM_FOREVER)
    joined = OnAir(Slot(p, 1, CAM_FOREVER, 86_400_000, LIVE_FOREVER_MS - 86_400_000), None, 1000.0)
    assert joined.position_ms(1002.5) == 2500  # not a day and 2.5 s
    file_item = OnAir(Slot(p, 0, Item("file://a.mp4", 500), 1000, 2000), None, 1000.0)
    assert file_item.position_ms(1002.5) == 4000  # a file's: its start, the offset joined at, the time since
