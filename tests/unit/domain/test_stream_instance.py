"""A stream instance: described once, concluded at most once, ended exactly once whatever races."""

from __future__ import annotations

from kiln.domain.errors import Failed
from kiln.domain.stream_instance import ConcludeLive, DescribeTracks, EndInstance, StreamInstance
from kiln.events.streams import HlsLiveConcluded, StreamEnded, StreamStarted, StreamTracksDescribed
from tests.unit.domain.given import given

STARTED = StreamStarted("default", "app", "s", "i1", "Rtmp", "", 1_000.0)
TRACKS = [{"id": 0, "type": "Video", "codec": "H264"}]
ENDED = StreamEnded("default", "app", "s", "i1", "source closed", 1234)


def instance() -> StreamInstance:
    return StreamInstance(STARTED)


def test_tracks_are_described_once() -> None:
    described = StreamTracksDescribed("default", "app", "s", "i1", TRACKS)
    given(instance()).when(DescribeTracks(TRACKS)).then(described)
    given(instance(), described).when(DescribeTracks(TRACKS)).then()


def test_an_ended_instance_is_not_described() -> None:
    given(instance(), ENDED).when(DescribeTracks(TRACKS)).then()


def test_ended_exactly_once_whatever_comes_second() -> None:
    agg = instance()
    given(agg).when(EndInstance("source closed", 1234)).then(ENDED)
    given(agg).when(EndInstance("deleted by API", 2000)).then()
    given(agg).when(EndInstance("server stopping")).then()


def test_concluded_at_most_once() -> None:
    concluded = HlsLiveConcluded("default", "app", "s", "i1")
    agg = instance()
    given(agg).when(ConcludeLive()).then(concluded)
    given(agg).when(ConcludeLive()).then()


def test_an_ended_instance_cannot_be_concluded() -> None:
    given(instance(), ENDED).when(ConcludeLive()).refused(
        Failed, "Internal Server Error - Could not inject ConcludeLive event: [default/app/s]")


def test_events_of_another_instance_are_ignored() -> None:
    other = StreamEnded("default", "app", "s", "i0", "replaced by a new publisher")
    given(instance(), other).when(EndInstance("source closed", 1234)).then(ENDED)
