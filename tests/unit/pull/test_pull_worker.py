"""The pull worker's lifecycle on a real demuxer (a generated MPEG-TS file stands in for a camera):
it tells its owner through its hooks how the pull ended, refuses on the ingest contract's
PublishRejected, and reports a bug as an internal error instead of dying silently."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.pull_source import PullSource
from kiln.media.ingest.rtsp.properties import PullProperties
from kiln.media.ingest.rtsp.worker import PullHooks, PullWorker, open_source
from kiln.media.stream.live import LiveStream


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two seconds of H.264 in MPEG-TS."""
    path = tmp_path_factory.mktemp("pull") / "camera.ts"
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25"})
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        for i in range(50):
            frame = av.VideoFrame(160, 90, "yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return str(path)


class Owner:
    """What the streams actor gives a pull: its hooks, and what they were told."""

    def __init__(self, open_stream: Callable[[str, Callable[[str], None]], LiveStream]) -> None:
        self.connected: list[str] = []
        self.finished: Future[str] = Future()
        self.hooks = PullHooks(open_stream, self.connected.append, self.finished.set_result)


def live(url: str, close: Callable[[str], None]) -> LiveStream:
    return LiveStream("default", "app", "cam", source_type="RtspPull", source_url=url, profiles=[],
                      close_ingest=close)


def pull_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kiln-pull-")]


def test_a_pull_streams_until_closed_and_says_why_it_ended(camera: str) -> None:
    streams: list[LiveStream] = []

    def open_stream(url: str, close: Callable[[str], None]) -> LiveStream:
        streams.append(live(url, close))
        return streams[-1]

    owner, waiter = Owner(open_stream), Future[bool]()
    worker = PullWorker("default/app", "cam", [camera], PullProperties(), owner.hooks, waiter).start()
    assert waiter.result(10) is True
    assert owner.connected == [camera]
    deadline = time.monotonic() + 10
    while not streams[0].tracks and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.close("deleted by API")
    assert owner.finished.result(10) == "deleted by API"
    worker.join(5)
    assert pull_threads() == []
    assert [t.codec.value for t in streams[0].tracks.values()] == ["H264"]
    assert all(s.ended_reason is not None for s in streams)  # every round's stream was ended


def test_a_refused_stream_ends_the_pull_as_refused(camera: str) -> None:
    def refuse(url: str, close: Callable[[str], None]) -> LiveStream:
        raise PublishRejected("Stream already exists")

    owner, waiter = Owner(refuse), Future[bool]()
    worker = PullWorker("default/app", "cam", [camera], PullProperties(), owner.hooks, waiter).start()
    assert owner.finished.result(10) == "stream refused by the application (Stream already exists)"
    assert waiter.result(1) is False and owner.connected == []
    worker.join(5)
    assert pull_threads() == []


def test_a_bug_is_logged_and_ends_the_pull_as_an_internal_error(camera: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    def broken(url: str, close: Callable[[str], None]) -> LiveStream:
        raise KeyError("a bug")

    owner, waiter = Owner(broken), Future[bool]()
    with caplog.at_level(logging.ERROR, logger="kiln.media.worker"):
        worker = PullWorker("default/app", "cam", [camera], PullProperties(), owner.hooks, waiter).start()
        assert owner.finished.result(10) == "internal error"
        worker.join(5)
    assert waiter.result(1) is False
    assert any("worker crashed name=kiln-pull-cam" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_source_that_cannot_be_opened_runs_out_of_retries_and_says_what_it_answered(tmp_path: Path) -> None:
    owner, waiter = Owner(live), Future[bool]()
    worker = PullWorker("default/app", "cam", [str(tmp_path / "missing.ts")], PullProperties(retry_count=0),
                        owner.hooks, waiter).start()
    assert owner.finished.result(10) == "could not connect to any url (No such file or directory)"
    assert waiter.result(1) is False
    worker.join(5)


def test_each_url_of_the_last_round_is_named_by_position_with_its_answer(tmp_path: Path) -> None:
    (tmp_path / "empty.ts").write_bytes(b"")
    urls = [f"file:{tmp_path}/secret-missing.ts", str(tmp_path / "empty.ts")]
    owner, waiter = Owner(live), Future[bool]()
    worker = PullWorker("default/app", "cam", urls, PullProperties(retry_count=0), owner.hooks, waiter).start()
    reason = owner.finished.result(10)
    assert reason.startswith("could not connect to any url (url 1: No such file or directory; url 2: "), reason
    assert "secret" not in reason and str(tmp_path) not in reason  # URLs may carry credentials
    worker.join(5)


def test_a_source_that_never_answers_is_called_a_timeout() -> None:
    from kiln.media.ingest.rtsp.worker import OPEN_TIMEOUT_S, connect_failure

    # FFmpeg reports its own open timeout as invalid data; the time it took tells them apart
    invalid = av.error.InvalidDataError(1094995529, "Invalid data found when processing input", "rtsp://u:p@h/x")
    assert connect_failure(invalid, OPEN_TIMEOUT_S + 0.01) == f"no answer within {OPEN_TIMEOUT_S:g}s"
    assert connect_failure(invalid, 0.2) == "Invalid data found when processing input"
    assert connect_failure(ConnectionRefusedError(111, "Connection refused"), 0.0) == "Connection refused"


SMALL = {"name": "small", "outputStreamName": "${OriginStreamName}",
         "encodes": {"videos": [{"name": "small", "codec": "h264", "width": 80, "height": 46, "bitrate": "50000",
                                 "preset": "faster"}]}}
LADDER = {"name": "ladder", "outputStreamName": "${OriginStreamName}_ladder",
          "encodes": {"videos": [{"name": "src", "bypass": "true"}]}}


def started_pull(camera: str, relay: bool | None) -> LiveStream:
    """A pull of ``camera`` into an app whose profiles transcode (and bypass into a second output), with an
    Origin's ``<Relay>`` as given; returned once started and the pull is over."""
    streams: list[LiveStream] = []

    def open_stream(url: str, close: Callable[[str], None]) -> LiveStream:
        streams.append(LiveStream("default", "app", "cam", source_type="RtspPull", source_url=url,
                                  profiles=[SMALL, LADDER], close_ingest=close))
        return streams[-1]

    owner, waiter = Owner(open_stream), Future[bool]()
    worker = PullWorker("default/app", "cam", [camera], PullProperties(relay=relay), owner.hooks, waiter).start()
    assert waiter.result(10) is True
    deadline = time.monotonic() + 10
    while not streams[0].started and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.close("deleted by API")
    assert owner.finished.result(10) == "deleted by API"
    worker.join(5)
    assert streams[0].started
    return streams[0]


def test_an_rtsp_pull_with_relay_true_is_served_as_it_comes_without_the_apps_profiles(camera: str) -> None:
    """OME's StreamRepresentationType::Relay: the one output is the input under the pull's name, every track a
    bypass of the camera's, no playlist of its own, and no encoder opened for the profiles that would transcode."""
    stream = started_pull(camera, relay=True)
    [output] = stream.snapshot().outputs
    assert output.name == "cam" and output.playlists == ()
    media = [t for t in output.tracks if t.kind != "Data"]
    assert [(t.kind, t.codec, t.bypass, t.width, t.height) for t in media] == [("Video", "H264", True, 160, 90)]
    assert [t.id for t in media] == list(stream.tracks)  # the input's own track ids
    assert stream.transcoder.workers == {}


@pytest.mark.parametrize("relay", [None, False])
def test_an_rtsp_pull_without_relay_goes_through_the_apps_output_profiles(camera: str, relay: bool | None) -> None:
    stream = started_pull(camera, relay=relay)
    outputs = {o.name: o for o in stream.snapshot().outputs}
    assert sorted(outputs) == ["cam", "cam_ladder"]
    [small] = [t for t in outputs["cam"].tracks if t.kind == "Video"]
    assert (small.codec, small.bypass, small.width, small.height) == ("H264", False, 80, 46)
    [bypass] = [t for t in outputs["cam_ladder"].tracks if t.kind == "Video"]
    assert (bypass.bypass, bypass.width, bypass.height) == (True, 160, 90)
    assert len(stream.transcoder.workers) == 1


def test_a_pull_closed_while_its_source_was_being_opened_opens_no_stream(camera: str) -> None:
    """Its app deleted while FFmpeg was still opening the source (a slow camera): once the source answers, the pull
    lets it go and ends; it asks its owner (the app's actor, gone or joining this thread) to open no stream."""
    opening, go_on = threading.Event(), threading.Event()
    sources: list[PullSource] = []

    def slow_open(url: str, read_timeout: float) -> PullSource:
        opening.set()
        assert go_on.wait(10)
        sources.append(open_source(url, read_timeout))  # the real source, opened once the close was asked
        return sources[-1]

    opened: list[str] = []

    def open_stream(url: str, close: Callable[[str], None]) -> LiveStream:
        opened.append(url)
        return live(url, close)

    owner, waiter = Owner(open_stream), Future[bool]()
    worker = PullWorker("default/app", "cam", [camera], PullProperties(), owner.hooks, waiter,
                        connect=slow_open).start()
    assert opening.wait(10)
    worker.close("app deleted")
    go_on.set()
    assert owner.finished.result(10) == "app deleted"
    worker.join(5)
    assert pull_threads() == []
    assert opened == [] and owner.connected == [] and waiter.result(1) is False
    assert len(sources) == 1 and not holding(camera)  # the source it reached was let go


def holding(path: str) -> bool:
    """Whether this process has ``path`` open."""
    fds = Path("/proc/self/fd")
    return any(os.path.realpath(fd) == os.path.realpath(path) for fd in fds.iterdir())
