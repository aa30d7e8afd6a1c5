"""The clock push and SRT playback sessions share: where a session starts, the zero point every
track is put on, and which packets are dropped."""

from __future__ import annotations

from fractions import Fraction

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.session_clock import SessionClock

VIDEO = Track(0, MediaKind.VIDEO, Codec.H264, Fraction(1, 90_000))
AUDIO = Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48_000))


def packet(track: Track, seconds: float, keyframe: bool = False) -> Packet:
    ticks = round(seconds / track.time_base)
    return Packet(track.id, ticks, ticks, track.time_base, b"x", keyframe)


def test_with_video_the_session_starts_at_a_video_keyframe_and_every_track_counts_from_it() -> None:
    clock = SessionClock([VIDEO, AUDIO])
    assert clock.offset(packet(AUDIO, 10.0)) is None          # audio before the keyframe: not sent
    assert clock.offset(packet(VIDEO, 10.0)) is None          # a video delta frame: not sent
    assert clock.offset(packet(VIDEO, 10.5, keyframe=True)) == 945_000
    assert clock.offset(packet(AUDIO, 10.6)) == 504_000       # the same zero point in audio's time base


def test_audio_only_starts_at_the_first_packet() -> None:
    clock = SessionClock([AUDIO])
    assert clock.offset(packet(AUDIO, 3.0)) == 144_000


def test_a_dts_that_does_not_increase_or_falls_before_zero_is_dropped() -> None:
    clock = SessionClock([VIDEO, AUDIO])
    assert clock.offset(packet(VIDEO, 5.0, keyframe=True)) == 450_000
    assert clock.offset(packet(VIDEO, 5.0)) is None           # same dts again
    assert clock.offset(packet(VIDEO, 4.9)) is None           # going back
    assert clock.offset(packet(AUDIO, 4.0)) is None           # before the zero point
    assert clock.offset(packet(VIDEO, 5.04)) == 450_000       # tracks keep their own last dts
