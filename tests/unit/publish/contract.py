"""The publisher contract suite, written once and subclassed for every publisher (push per protocol,
record, thumbnail; RTMP and SRT pushes in ``tests/e2e/test_publisher_contract.py``).

Each subclass says how to make its publisher for an output stream, how a viewer makes it put
something out (only thumbnails need asking), and how to see from outside that it let go of its
destination. The suite attaches it to a real live output fed with a generated H.264 + AAC clip on
a thread, and checks what the contract promises: counters grow while attached; ``detach(reason)``
stops it, leaves no thread or descriptor behind, and a second ``detach`` does nothing.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kiln.media.publish.contract import Publisher
from kiln.media.publish.push.select import select_tracks
from kiln.media.publish.push.session import PushCounters, PushPlan, PushSession
from kiln.media.stream.live import LiveStream, OutputStream
from tests.unit.transcode.clip import Clip, make_clip

BYPASS = {"name": "bypass", "outputStreamName": "${OriginStreamName}",
          "encodes": {"videos": [{"bypass": "true"}], "audios": [{"bypass": "true"}]}}
SPEED = 4  # media seconds fed per wall-clock second
TS_SYNC = 0x47


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def open_descriptors() -> dict[str, str]:
    """This process's open file descriptors and what they are (the listing's own one left out)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the directory listing itself, closed by now
            continue
    return found


class LiveFeed:
    """A started live stream default/app/cam whose ingest gets a generated clip, looped, on a thread."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.clip: Clip = make_clip(320, 180, seconds=2.0, fps=15, gop=15)
        self.live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[profile])
        for track in (self.clip.video, self.clip.audio):
            self.live.on_track(track)
        assert self.live.started
        self.output: OutputStream = next(iter(self.live.outputs.values()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-live-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        packets = self.clip.packets
        period = packets[-1].dts + 100  # ms; the clip's packets are in a 1/1000 time base
        cycle = 0
        while not self._stop.is_set():
            begun = time.monotonic()
            for p in packets:
                due = begun + p.dts / 1000 / SPEED
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                shift = cycle * period
                self.live.ingest(replace(p, pts=p.pts + shift, dts=p.dts + shift, arrival=time.monotonic()))
            cycle += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.live.end("test over")
        self.live.transcoder.join(10)


class PublisherContract(ABC):
    """Subclass per publisher; fill in :meth:`make` and :meth:`assert_let_go`."""

    profile: dict[str, Any] = BYPASS
    has_worker = True  # push and record run a thread; a thumbnail publisher has none

    @abstractmethod
    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        """A publisher for ``feed.output``, not yet attached (its destination ready to receive)."""

    @abstractmethod
    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        """After detach: what its destination sees (connection closed, file finished...)."""

    def use(self, publisher: Publisher) -> None:
        """What a viewer does for the publisher to put something out; pushes and recordings need nothing."""
        return None

    @pytest.fixture
    def feed(self) -> Iterator[LiveFeed]:
        feed = LiveFeed(self.profile)
        yield feed
        feed.close()

    def _bytes_out(self, publisher: Publisher) -> int:
        self.use(publisher)
        return publisher.counters.bytes_out

    def test_counters_grow_while_attached(self, feed: LiveFeed, tmp_path: Path) -> None:
        publisher = self.make(feed, tmp_path)
        assert not publisher.attached
        publisher.attach(feed.output)
        try:
            assert publisher.attached
            wait_until(lambda: self._bytes_out(publisher) > 0, "the first bytes out")
            first = publisher.counters.bytes_out
            wait_until(lambda: self._bytes_out(publisher) > first, "more bytes out")
        finally:
            publisher.detach("test over")

    def test_detach_stops_it_and_lets_go_of_threads_and_descriptors(self, feed: LiveFeed, tmp_path: Path) -> None:
        publisher = self.make(feed, tmp_path)
        threads, descriptors = set(threading.enumerate()), open_descriptors()
        publisher.attach(feed.output)
        wait_until(lambda: self._bytes_out(publisher) > 0, "the first bytes out")
        if self.has_worker:
            assert set(threading.enumerate()) - threads, "the worker runs on a thread of its own"

        publisher.detach("stopped by the test")

        assert not publisher.attached
        assert set(threading.enumerate()) - threads == set()
        settled = publisher.counters.bytes_out
        time.sleep(0.5)  # the feed goes on: a detached publisher puts nothing more out
        assert self._bytes_out(publisher) == settled
        self.assert_let_go(publisher, tmp_path)
        # checked once the destination saw the end (its side of a connection closes too); libsrt's
        # collector thread frees a closed SRT socket's UDP port within a second or two
        deadline = time.monotonic() + 5
        while self._opened_since(descriptors) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self._opened_since(descriptors) == {}

    @staticmethod
    def _opened_since(before: dict[str, str]) -> dict[str, str]:
        return {fd: what for fd, what in open_descriptors().items() if before.get(fd) != what}

    def test_a_second_detach_does_nothing(self, feed: LiveFeed, tmp_path: Path) -> None:
        publisher = self.make(feed, tmp_path)
        publisher.attach(feed.output)
        wait_until(lambda: self._bytes_out(publisher) > 0, "the first bytes out")
        publisher.detach("first")
        settled = publisher.counters.bytes_out
        publisher.detach("second")
        assert not publisher.attached and publisher.counters.bytes_out == settled


class PushContract(PublisherContract):
    """A push session to a destination of the test; it must never report an error."""

    protocol = "mpegts"
    states: list[tuple[str, str]]

    @abstractmethod
    def destination(self) -> str:
        """Where the push goes: a listener the subclass runs."""

    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        self.states = []
        tracks = select_tracks(feed.output.track_list(), self.protocol, [], []).tracks
        assert len(tracks) == 2
        plan = PushPlan(self.protocol, self.destination(), tracks)
        return PushSession("contract", plan, feed.output, PushCounters(),
                           lambda state, reason: self.states.append((state, reason)))

    def assert_states(self) -> None:
        assert self.states == [("connecting", ""), ("pushing", "")]
