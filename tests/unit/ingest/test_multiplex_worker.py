"""A multiplex channel's worker on real live streams and hubs: it waits for its sources, takes their tracks by
variant name, feeds its own stream with them retimed onto one clock, and waits again when a source goes away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from kiln.events.multiplex import Multiplex, Playlist, Rendition, SourceStream, TrackMapping
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.multiplex.board import MuxBoard, MuxState
from kiln.media.ingest.multiplex.worker import MuxHooks, MuxWorker
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.hub import CallbackSubscriber, Subscriber
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import StreamRegistry

MS = Fraction(1, 1000)
BYPASS = {"name": "bypass", "outputStreamName": "${OriginStreamName}", "encodes": {
    "videos": [{"name": "bypass_video", "bypass": True}], "audios": [{"name": "bypass_audio", "bypass": True}]}}
MUX = Multiplex("abr", True, (
    SourceStream("small", "stream://default/app/small", (TrackMapping("bypass_audio", "small_audio"),
                                                         TrackMapping("bypass_video", "small_video"))),
    SourceStream("big", "stream://default/app/big", (TrackMapping("bypass_video", "big_video"),))),
    (Playlist("ABR", "abr", renditions=(Rendition("360p", "big_video", "small_audio"),
                                        Rendition("180p", "small_video", "small_audio"))),))


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def source(name: str, width: int, base_ms: int) -> LiveStream:
    """A started source stream (its own encoder's clock starts at ``base_ms``) with a video and an audio track."""
    live = LiveStream("default", "app", name, source_type="Rtmp", source_url="", profiles=[BYPASS])
    live.expected = {MediaKind.VIDEO, MediaKind.AUDIO}
    live.on_track(Track(0, MediaKind.VIDEO, Codec.H264, MS, width=width, height=width * 9 // 16))
    live.on_track(Track(1, MediaKind.AUDIO, Codec.AAC, Fraction(1, 48000), sample_rate=48000, channels=2))
    feed(live, base_ms, 0)
    assert live.started
    return live


def feed(live: LiveStream, base_ms: int, frame: int) -> None:
    """One video frame (a keyframe every tenth) and the audio frame at the same moment."""
    ms = base_ms + frame * 50
    live.ingest(Packet(0, ms, ms, MS, b"v%d" % frame, keyframe=frame % 10 == 0))
    live.ingest(Packet(1, ms * 48, ms * 48, Fraction(1, 48000), b"a%d" % frame))


class Channel:
    """The control plane's side of the ingest contract for the channel: a LiveStream per open."""

    def __init__(self) -> None:
        self.opened: list[LiveStream] = []
        self.finished: list[str] = []
        self.packets: list[Packet] = []
        self._lock = threading.Lock()

    def open_stream(self, close: Callable[[str], None]) -> LiveStream:
        live = LiveStream("default", "mux", "abr", source_type="Multiplex", source_url="", profiles=[],
                          close_ingest=close)
        live.on_started = self._watch
        self.opened.append(live)
        return live

    def _watch(self, live: LiveStream) -> None:
        out = live.outputs["abr"]
        sub = Subscriber("test")
        out.hub.subscribe(sub)

        def drain() -> None:
            while (p := sub.get(1.0)) is not None or not sub.ended:
                if p is not None:
                    with self._lock:
                        self.packets.append(p)

        threading.Thread(target=drain, daemon=True).start()


def test_the_channel_waits_for_its_sources_then_feeds_their_renamed_tracks_on_one_clock() -> None:
    registry = StreamRegistry()
    board = MuxBoard()
    channel = Channel()
    worker = MuxWorker("default/mux", MUX, registry, MuxHooks(channel.open_stream, channel.finished.append), board,
                       retry_s=0.05)
    worker.start()
    try:
        key = ("default", "mux", "abr")
        state, message = wait_until(lambda: board.get(key)[0] is MuxState.PULLING and board.get(key), "pulling")
        assert message == "Multiplex Channel : #default#mux/abr: Wait for stream small"
        small = source("small", 320, 1_000_000)  # two encoders whose clocks have nothing in common
        registry.add(small)
        assert wait_until(lambda: board.get(key)[1].endswith("Wait for stream big"), "waiting for the second")
        big = source("big", 640, 5_000)
        registry.add(big)
        wait_until(lambda: board.get(key)[0] is MuxState.PLAYING, "playing")
        live = channel.opened[0]
        assert [(t.id, t.name, t.width) for t in live.outputs["abr"].track_list() if t.kind is not MediaKind.DATA] \
            == [(0, "small_video", 320), (1, "small_audio", 0), (2, "big_video", 640)]  # in the sources' track order
        assert live.outputs["abr"].playlists()[0]["renditions"][0] == {"name": "360p", "video": "big_video",
                                                                       "audio": "small_audio"}
        for frame in range(1, 21):
            feed(small, 1_000_000, frame)
            feed(big, 5_000, frame)
        packets = wait_until(lambda: len(channel.packets) >= 60 and list(channel.packets), "packets")
        small_video = [p for p in packets if p.track_id == 0]
        small_audio = [p for p in packets if p.track_id == 1]
        big_video = [p for p in packets if p.track_id == 2]
        assert [p.data for p in small_video[:2]] == [b"v0", b"v1"] and big_video[0].data == b"v0"
        # a source's tracks keep their distance: its audio and video stay in sync
        assert small_audio[0].dts / 48 == small_video[0].dts
        # both sources on the channel's clock, placed by when their first packets arrived (not 995 s apart)
        arrived_ms = (big_video[0].arrival - small_video[0].arrival) * 1000
        assert abs(big_video[0].dts - small_video[0].dts - arrived_ms) <= 1
        assert all(b.dts > a.dts for a, b in zip(small_video, small_video[1:], strict=False))

        big.end("unpublished")  # a source goes away: the channel's stream ends and it waits again
        wait_until(lambda: live.ended_reason is not None, "the channel's stream ended")
        assert live.ended_reason == "source stream ended: stream://default/app/big"
        wait_until(lambda: board.get(key) == (MuxState.PULLING,
                                              "Multiplex Channel : #default#mux/abr: Wait for stream big"),
                   "waiting for the source again")
        registry.remove(big)
        big2 = source("big", 640, 0)
        registry.add(big2)
        wait_until(lambda: len(channel.opened) == 2 and board.get(key)[0] is MuxState.PLAYING, "playing again")
        assert small.outputs["small"].hub.subscribers and big2.outputs["big"].hub.subscribers
    finally:
        worker.close("test over")
        assert worker.join(5)
    assert channel.finished == ["test over"]
    assert not small.outputs["small"].hub.subscribers  # the channel let go of its sources
    assert channel.opened[-1].ended_reason == "test over"


class RecordingBoard(MuxBoard):
    """Keeps every state the worker showed (a GET may come at any moment)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[MuxState, str]] = []

    def set(self, key: tuple[str, str, str], state: MuxState, message: str = "") -> None:
        self.seen.append((state, message))
        super().set(key, state, message)


def test_a_refused_stream_is_asked_for_again_and_shown_meanwhile() -> None:
    registry = StreamRegistry()
    registry.add(source("small", 320, 0))
    registry.add(source("big", 640, 0))
    board = RecordingBoard()
    channel = Channel()
    refusals = ["Duplicate stream name"]

    def open_stream(close: Callable[[str], None]) -> LiveStream:
        if refusals:
            raise PublishRejected(refusals.pop())
        return channel.open_stream(close)

    worker = MuxWorker("default/mux", MUX, registry, MuxHooks(open_stream, channel.finished.append), board,
                       retry_s=0.05)
    worker.start()
    try:
        wait_until(lambda: len(channel.opened) == 1 and board.get(("default", "mux", "abr"))[0] is MuxState.PLAYING,
                   "playing after the refusal")
    finally:
        worker.close("test over")
        assert worker.join(5)
    refused = "Multiplex Channel : #default#mux/abr: Failed to publish stream (Duplicate stream name)"
    assert (MuxState.PULLING, refused) in board.seen


def test_without_bypass_transcoder_the_tracks_go_through_the_apps_output_profiles() -> None:
    registry = StreamRegistry()
    registry.add(source("small", 320, 0))
    dup = Multiplex("dup", False, (MUX.sources[0],))
    opened: list[LiveStream] = []

    def open_stream(close: Callable[[str], None]) -> LiveStream:
        live = LiveStream("default", "other", "dup", source_type="Multiplex", source_url="", profiles=[BYPASS],
                          close_ingest=close)
        opened.append(live)
        return live

    worker = MuxWorker("default/other", dup, registry, MuxHooks(open_stream, lambda _reason: None), retry_s=0.05)
    worker.start()
    try:
        live = wait_until(lambda: opened and opened[0].started and opened[0], "the stream started")
        out = live.outputs["dup"]  # the app's profile names the output and its tracks, as any input's
        assert [(t.name, t.bypass) for t in out.tracks if t.kind is not MediaKind.DATA] == [
            ("bypass_video", True), ("bypass_audio", True)]
        assert [t.name for t in live.tracks.values()] == ["", ""]
    finally:
        worker.close("test over")
        assert worker.join(5)


def test_a_channel_that_falls_behind_never_slows_its_sources_and_starts_again() -> None:
    registry = StreamRegistry()
    small, big = source("small", 320, 0), source("big", 640, 0)
    registry.add(small)
    registry.add(big)
    channel = Channel()
    release = threading.Event()

    def open_stream(close: Callable[[str], None]) -> LiveStream:
        live = channel.open_stream(close)
        if len(channel.opened) == 1:  # the first stream's consumer is stuck: the channel's thread waits in it
            live.input.subscribe(CallbackSubscriber("stuck", lambda _p: release.wait(10) and None))
        return live

    worker = MuxWorker("default/mux", MUX, registry, MuxHooks(open_stream, channel.finished.append),
                       retry_s=0.05, queue_packets=20)
    worker.start()
    try:
        wait_until(lambda: channel.opened and channel.opened[0].started, "the first stream")
        wait_until(lambda: small.outputs["small"].hub.subscribers and big.outputs["big"].hub.subscribers,
                   "the channel taking its sources' packets")
        began = time.monotonic()
        for frame in range(1, 61):
            feed(small, 0, frame)
            feed(big, 0, frame)
        assert time.monotonic() - began < 1.0  # the sources' threads never waited on the channel
        release.set()
        first = channel.opened[0]
        wait_until(lambda: first.ended_reason is not None, "the stuck stream ended")
        assert first.ended_reason == "slow consumer"
        wait_until(lambda: len(channel.opened) == 2 and channel.opened[1].started, "the channel started again")
    finally:
        release.set()
        worker.close("test over")
        assert worker.join(5)
