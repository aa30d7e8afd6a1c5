"""An app's stream directory: providers, duplicate names, deletes, pull names (OME's texts)."""

from __future__ import annotations

from kiln.domain.errors import Conflict, NotFound, Unreachable
from kiln.domain.settings import AppSettings
from kiln.domain.stream_directory import DeleteStream, OpenStream, RequestPull, StreamDirectory
from kiln.events.streams import StreamEnded, StreamStarted
from tests.unit.domain.given import given

RTMP = {"providers": {"rtmp": {}, "rtspPull": {}}}
NO_BLOCK = {"providers": {"rtmp": {"blockDuplicateStreamName": "false"}}}


def directory(config: dict[str, object] = RTMP) -> StreamDirectory:
    return StreamDirectory("default", "app", AppSettings.parse(config))


def started(name: str = "s", instance: str = "i1", now: float = 1_000.0) -> StreamStarted:
    return StreamStarted("default", "app", name, instance, "Rtmp", "rtmp://peer", now)


def test_open_journals_the_start_with_the_time_passed_in() -> None:
    given(directory()).when(OpenStream("s", "rtmp", "Rtmp", "rtmp://peer", "i1"), now=1_000.0).then(started())


def test_a_disabled_provider_is_refused_with_omes_text() -> None:
    given(directory()).when(OpenStream("s", "srt", "SRT", "srt://peer", "i1")).refused(
        NotFound, "Provider srt is not enabled for the application: [default/app]")


def test_a_second_publisher_of_a_live_name_is_refused_by_default() -> None:
    given(directory(), started()).when(OpenStream("s", "rtmp", "Rtmp", "rtmp://peer", "i2")).refused(
        Conflict, "Stream already exists: [default/app/s]")


def test_without_blocking_a_second_publisher_replaces_the_first() -> None:
    d = directory(NO_BLOCK)
    given(d, started()).when(OpenStream("s", "rtmp", "Rtmp", "rtmp://peer", "i2"), now=2_000.0).then(
        started(instance="i2", now=2_000.0))
    assert d.instance_of("s") == "i2"
    d.apply(StreamEnded("default", "app", "s", "i1", "replaced by a new publisher"))  # the old end comes late
    assert d.instance_of("s") == "i2"


def test_a_name_is_free_again_once_its_instance_ended() -> None:
    d = directory()
    given(d, started(), StreamEnded("default", "app", "s", "i1", "gone")).when(
        OpenStream("s", "rtmp", "Rtmp", "rtmp://peer", "i2")).then(started(instance="i2"))


def test_deleting_an_unknown_stream_is_404_with_omes_text() -> None:
    given(directory()).when(DeleteStream("s")).refused(NotFound, "Could not find the stream: [default/#default#app/s]")
    given(directory(), started()).when(DeleteStream("s")).then()


def test_a_pull_may_not_take_a_live_or_pulled_name() -> None:
    url = "http://kiln.test/v1/vhosts/default/apps/app/streams"
    given(directory(), started("cam")).when(RequestPull("cam", ("rtsp://h/a",), url)).refused(
        Conflict, "Stream already exists")
    d = directory()
    given(d).when(RequestPull("cam", ("rtsp://h/a",), url)).then()
    d.reserve_pull("cam")
    given(d).when(RequestPull("cam", ("rtsp://h/b",), url)).refused(Conflict, "Stream already exists")
    d.release_pull("cam")
    given(d).when(RequestPull("cam", ("rtsp://h/b",), url)).then()


def test_only_rtsp_pulls_through_an_enabled_provider_are_tried() -> None:
    url = "http://kiln.test/v1/vhosts/default/apps/app/streams"
    text = f"Could not pull the stream : {url}"
    for source in ("http://h/a", "srt://h:1", "nonsense"):
        given(directory()).when(RequestPull("cam", (source,), url)).refused(Unreachable, text)
    given(directory()).when(RequestPull("cam", ("RTSPC://h/a",), url)).then()
    given(directory({"providers": {"rtmp": {}}})).when(RequestPull("cam", ("rtsp://h/a",), url)).refused(
        Unreachable, text)


def test_reconfiguring_changes_the_rules_for_the_next_open() -> None:
    d = directory()
    d.settings = AppSettings.parse({"providers": {"srt": {}}})
    given(d).when(OpenStream("s", "rtmp", "Rtmp", "", "i1")).refused(NotFound)
    given(d).when(OpenStream("s", "srt", "SRT", "", "i1")).then(
        StreamStarted("default", "app", "s", "i1", "SRT", "", 1_000.0))


def test_a_name_is_free_as_soon_as_its_instance_is_being_ended() -> None:
    d = directory()
    given(d, started())
    d.release("s", "i0")  # an older instance: nothing changes
    given(d).when(OpenStream("s", "rtmp", "Rtmp", "", "i2")).refused(Conflict)
    d.release("s", "i1")
    given(d).when(OpenStream("s", "rtmp", "Rtmp", "", "i2")).then(
        StreamStarted("default", "app", "s", "i2", "Rtmp", "", 1_000.0))
