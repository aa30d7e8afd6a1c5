"""Channels that would feed themselves: scheduled channels (a ``stream://`` item) and multiplex channels (their
sources) naming each other in a loop, in any mix, on real workers, live streams and hubs. Closing such a loop would
make each channel replay what it sent a moment ago for ever; the channel that would close it refuses: a schedule
item counts as failing (its fallback plays), a multiplex waits for its sources (``Pulling``), as OME's does for a
source it cannot take; both log the loop."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.events.multiplex import Multiplex, SourceStream, TrackMapping
from kiln.events.schedules import ChannelStream, Item, Program, Schedule
from kiln.media.ingest.multiplex.board import MuxBoard, MuxState
from kiln.media.ingest.multiplex.worker import MuxHooks, MuxWorker
from kiln.media.ingest.schedule.board import ScheduleBoard
from kiln.media.ingest.schedule.worker import ScheduleHooks, ScheduleWorker
from kiln.media.stream.live import LiveStream
from kiln.media.stream.loops import ChannelFeeds
from kiln.media.stream.registry import StreamRegistry
from tests.unit.ingest.test_multiplex_worker import wait_until
from tests.unit.ingest.test_schedule_worker import BYPASS, Camera, make_av


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """red.mp4 (the scheduled channels' fallback) and cam.mp4 (a camera's), H.264 and AAC."""
    root = tmp_path_factory.mktemp("loops")
    make_av(root / "red.mp4", "color=red:s=160x90:r=20", "sine=f=440:r=48000", 2)
    make_av(root / "cam.mp4", "testsrc2=s=192x108:r=20", "anoisesrc=r=48000:a=0.3", 10)
    return root


class Server:
    """The streams of one server: scheduled channels in app ``tv``, multiplex channels in app ``mux``, each opening
    its stream in one registry (the control plane's side of the ingest contract), one board per kind."""

    def __init__(self, media: Path) -> None:
        self.media = media
        self.registry = StreamRegistry()
        self.schedules = ScheduleBoard()
        self.muxes = CountingBoard()
        self.feeds = ChannelFeeds()
        self.workers: list[ScheduleWorker | MuxWorker] = []

    def scheduled(self, name: str, plays: str) -> ScheduleWorker:
        """A scheduled channel whose program plays ``plays`` (a stream URL) for ever, red.mp4 its fallback."""
        channel = LiveStream("default", "tv", name, source_type="Scheduled", source_url="", profiles=[BYPASS])
        self.registry.add(channel)
        program = Program("p", "", 946684800000, True, (Item(plays, 0, -1),))
        worker = ScheduleWorker("default/tv", Schedule(ChannelStream(name), (Item("file://red.mp4"),), (program,)),
                                self.media, ScheduleHooks(lambda close: channel, lambda r: None), self.schedules,
                                self.registry, self.feeds)
        self.workers.append(worker)
        return worker

    def multiplex(self, name: str, *takes: str) -> MuxWorker:
        """A multiplex channel taking the video and audio of each stream URL in ``takes``: a scheduled channel's
        (or a camera's) output names them ``bypass_video``/``bypass_audio``, a multiplex's as this one does (the
        first source's ``video``/``audio``, the next ``video1``/``audio1``...)."""
        sources = tuple(SourceStream(f"s{i}", url, tuple(
            TrackMapping(("" if "/mux/" in url else "bypass_") + kind, kind + (str(i) if i else ""))
            for kind in ("video", "audio"))) for i, url in enumerate(takes))

        def open_stream(close: Callable[[str], None]) -> LiveStream:
            stale = self.registry.get("default", "mux", name)
            if stale is not None:
                self.registry.remove(stale)
            live = LiveStream("default", "mux", name, source_type="Multiplex", source_url="", profiles=[],
                              close_ingest=close)
            self.registry.add(live)
            return live

        worker = MuxWorker("default/mux", Multiplex(name, True, sources), self.registry,
                           MuxHooks(open_stream, lambda reason: None), self.muxes, retry_s=0.05, feeds=self.feeds)
        self.workers.append(worker)
        return worker

    def on(self, worker: ScheduleWorker | MuxWorker) -> bool:
        """Whether a channel takes what it names: a scheduled channel on its program's item, a multiplex playing."""
        if isinstance(worker, MuxWorker):
            return self.muxes.get(worker.key)[0] is MuxState.PLAYING
        on_air = self.schedules.get(worker.key)
        return on_air is not None and on_air.slot.program is not None

    def __enter__(self) -> Server:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.close("test over")
        for worker in self.workers:
            assert worker.join(5)


class CountingBoard(MuxBoard):
    """Counts how often each channel showed its state (each try of a waiting multiplex shows it)."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: Counter[tuple[str, str, str]] = Counter()

    def set(self, key: tuple[str, str, str], state: MuxState, message: str = "") -> None:
        self.shown[key] += 1
        super().set(key, state, message)


def rotations(names: tuple[str, ...]) -> list[str]:
    """A loop as a channel names it, from each of its channels: "a -> b -> a", "b -> a -> b"."""
    return [" -> ".join(f"default/{n}" for n in (*names[i:], *names[:i], names[i])) for i in range(len(names))]


LOOPS = {  # name -> the channels of the loop in order, each taking the next (the last the first)
    "a-m-a": ("tv/a", "mux/m"),
    "a-m1-m2-a": ("tv/a", "mux/m1", "mux/m2"),
    "a-b-m-a": ("tv/a", "tv/b", "mux/m"),
    "a-m-b-a": ("tv/a", "mux/m", "tv/b"),
}


@pytest.mark.parametrize("loop", list(LOOPS.values()), ids=list(LOOPS))
def test_scheduled_and_multiplex_channels_in_a_loop_never_close_it(
        media: Path, loop: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    """Every channel takes the next (a multiplex's source, a scheduled channel's program item): the loop closes only
    if every one takes what it names. The one that would close it refuses and says so; the others play."""
    server = Server(media)
    for index, where in enumerate(loop):
        app, name = where.split("/")
        following = f"stream://default/{loop[(index + 1) % len(loop)]}"
        if app == "tv":
            server.scheduled(name, following)
        else:
            server.multiplex(name, following)
    with server:
        def on() -> list[bool]:
            return [server.on(w) for w in server.workers]

        wait_until(lambda: sum(on()) == len(loop) - 1, "all but one channel taking what it names", timeout=10)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert not all(on()), "the loop closed: every channel takes the next"
            time.sleep(0.05)
    assert any(f"loop={text}" in caplog.text for text in rotations(loop)), caplog.text


def test_a_multiplex_changed_to_take_a_channel_that_plays_it_never_closes_the_loop(
        media: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Scheduled ``a`` plays multiplex ``m`` of a camera; then ``m``'s file changes to take ``a`` (a new worker in the
    old one's place, as the stream supervisor does). ``a`` loses ``m`` and plays its fallback, ``m`` takes ``a``: the
    loop never closes, whichever of the two looks first."""
    server = Server(media)
    camera = Camera(media, server.registry).start()
    a = server.scheduled("a", "stream://default/mux/m")
    first = server.multiplex("m", "stream://default/app/cam")
    try:
        with server:
            wait_until(lambda: server.on(a) and server.on(first), "a playing m, m playing the camera", timeout=10)
            first.close("file changed")
            second = server.multiplex("m", "stream://default/tv/a")
            second.start()
            assert first.join(5)
            server.workers.remove(first)
            wait_until(lambda: server.on(second) and not server.on(a), "m taking a, a on its fallback", timeout=10)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                assert not (server.on(a) and server.on(second)), "the loop closed: a plays m, which takes a"
                time.sleep(0.05)
    finally:
        camera.stop()
    assert any(f"loop={text}" in caplog.text for text in rotations(("tv/a", "mux/m"))), caplog.text


def test_a_scheduled_channel_plays_a_multiplex_that_does_not_come_back(
        media: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Not every path through a multiplex is a loop: a channel playing a multiplex of a camera plays it."""
    server = Server(media)
    camera = Camera(media, server.registry).start()
    server.scheduled("a", "stream://default/mux/m")
    server.multiplex("m", "stream://default/app/cam", "stream://default/tv/b")
    server.scheduled("b", "stream://default/app/cam")
    try:
        with server:
            wait_until(lambda: all(server.on(w) for w in server.workers), "every channel taking what it names",
                       timeout=10)
    finally:
        camera.stop()
    assert "loop=" not in caplog.text


@pytest.mark.parametrize("loop", [("m",), ("m1", "m2"), ("m1", "m2", "m3")], ids=["m-m", "m1-m2-m1", "m1-m2-m3-m1"])
def test_multiplex_channels_in_a_loop_wait_and_say_which(
        media: Path, loop: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    """A multiplex taking itself, or others that take it back: none can start (each waits for the next), as in OME;
    the wait names the loop (not "Wait for stream m1", which would come for ever), and the log says it once."""
    server = Server(media)
    camera = Camera(media, server.registry).start()
    for index, name in enumerate(loop):  # each also takes a camera that is live, so only the loop holds it
        server.multiplex(name, "stream://default/app/cam", f"stream://default/mux/{loop[(index + 1) % len(loop)]}")
    try:
        with server:
            for index, worker in enumerate(server.workers):
                state, message = wait_until(lambda w=worker: server.muxes.get(w.key)[1].endswith(")")
                                            and server.muxes.get(w.key), f"{worker.name} naming the loop")
                assert state is MuxState.PULLING
                following = f"stream://default/mux/{loop[(index + 1) % len(loop)]}"
                named = next(r for r in rotations(tuple(f"mux/{n}" for n in loop))
                             if r.startswith(f"default/mux/{worker.name} "))
                assert message == (f"Multiplex Channel : #default#mux/{worker.name}: Failed to mirror stream "
                                   f"{following} (a loop back to this channel: {named})")
            # several tries each (one every 0.05 s): still one warning per channel
            wait_until(lambda: all(server.muxes.shown[w.key] > 5 for w in server.workers), "five tries each")
    finally:
        camera.stop()
    assert not any(server.registry.get("default", "mux", name) for name in loop)  # none ever opened its stream
    warnings = [m for r in caplog.records if "multiplex source leads back to this channel" in (m := r.getMessage())]
    assert len(warnings) == len(loop), warnings
