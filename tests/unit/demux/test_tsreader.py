"""The TS hand-over between a socket and PyAV: bounded, never blocking the producer, ending with a reason."""

from __future__ import annotations

import io
import threading
import time
from fractions import Fraction

import av
import pytest

from kiln.media.demux.tsreader import TS_PACKET_SIZE, TsDemuxWorker, TsFeed, TsHooks, ts_sync_offset
from kiln.media.model import Codec, MediaKind
from kiln.media.rtmp.publish import PublishRejected
from kiln.media.stream import LiveStream


def make_ts(frames: int = 30) -> bytes:
    """About one second of 64x64 H.264 + 48 kHz stereo AAC in MPEG-TS, made in memory."""
    out = io.BytesIO()
    video_in = av.open("testsrc2=size=64x64:rate=30", format="lavfi")
    audio_in = av.open("sine=frequency=1000:sample_rate=48000", format="lavfi")
    with av.open(out, "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=30, options={"g": "15", "bf": "0", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = container.add_stream("aac", rate=48000, layout="stereo")
        for index, frame in enumerate(video_in.decode(video=0)):
            if index == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            container.mux(video.encode(frame))
        samples = 0
        for frame in audio_in.decode(audio=0):
            if samples >= frames * 1600:
                break
            samples += frame.samples
            container.mux(audio.encode(frame))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    video_in.close()
    audio_in.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def ts_bytes() -> bytes:
    return make_ts()


def chunks(data: bytes, size: int = 1316) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# -- sync detection ---------------------------------------------------------------------------
def test_sync_offset_found_aligned_and_shifted(ts_bytes: bytes) -> None:
    assert ts_sync_offset(ts_bytes[:4 * TS_PACKET_SIZE]) == 0
    assert ts_sync_offset(ts_bytes[5:5 + 4 * TS_PACKET_SIZE]) == TS_PACKET_SIZE - 5


def test_sync_offset_refuses_other_bytes() -> None:
    assert ts_sync_offset(b"\x00" * 2000) is None
    assert ts_sync_offset(b"G" + b"\x00" * 500) is None  # one sync byte is not a run
    assert ts_sync_offset(b"") is None


# -- the feed ---------------------------------------------------------------------------------
def test_read_never_returns_more_than_asked() -> None:
    feed = TsFeed("t")
    feed.push(b"a" * 1000)
    feed.close("done")
    assert [len(feed.read(300)) for _ in range(5)] == [300, 300, 300, 100, 0]


def test_close_drains_then_ends_and_refuses_more() -> None:
    feed = TsFeed("t")
    assert feed.push(b"abc") and feed.push(b"def")
    feed.close("disconnected")
    assert not feed.push(b"late")
    assert feed.read(100) + feed.read(100) == b"abcdef"
    assert feed.read(100) == b"" and feed.closed_reason == "disconnected"


def test_discarding_close_ends_at_once() -> None:
    feed = TsFeed("t")
    feed.push(b"x" * 100)
    feed.close("server shutdown", discard=True)
    assert feed.read(100) == b""


def test_overflow_drops_newest_and_counts_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    feed = TsFeed("t", max_bytes=3000)
    began = time.monotonic()
    results = [feed.push(b"y" * 1316) for _ in range(5)]
    assert time.monotonic() - began < 0.5
    assert results == [True] * 5  # the input is still open; the drops are counted and logged
    assert (feed.dropped_messages, feed.dropped_bytes) == (3, 3 * 1316)
    assert "ts input overflow" in caplog.text
    feed.close("done")
    assert len(feed.read(10_000)) + len(feed.read(10_000)) == 2 * 1316


def test_silence_closes_the_feed() -> None:
    feed = TsFeed("t", idle_timeout_s=0.2)
    feed.push(b"z")
    began = time.monotonic()
    assert feed.read(10) == b"z"
    assert feed.read(10) == b""
    assert 0.1 <= time.monotonic() - began < 2
    assert feed.closed_reason == "no data for 200 ms"
    assert not feed.push(b"more")  # the sender's next data belongs to a new stream


def test_blocked_reader_wakes_on_push() -> None:
    feed = TsFeed("t")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(feed.read(10)))
    reader.start()
    feed.push(b"hello")
    reader.join(5)
    assert got == [b"hello"]


# -- the worker -------------------------------------------------------------------------------
class Glue:
    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.stream: LiveStream | None = None
        self.kinds: set[MediaKind] = set()
        self.ended: list[str] = []
        self.done = threading.Event()

    def open_stream(self, kinds: set[MediaKind]) -> LiveStream:
        if self.refuse:
            raise PublishRejected(self.refuse)
        self.kinds = kinds
        self.stream = LiveStream("default", "app", "s", source_type="SRT", source_url="srt://x/app/s", profiles=[])
        return self.stream

    def on_ended(self, reason: str) -> None:
        self.ended.append(reason)
        self.done.set()

    def hooks(self) -> TsHooks:
        return TsHooks(self.open_stream, self.on_ended)


def test_worker_feeds_the_stream_and_ends_with_the_source_reason(ts_bytes: bytes) -> None:
    glue = Glue()
    worker = TsDemuxWorker("unit", glue.hooks()).start()
    for chunk in chunks(ts_bytes):
        assert worker.push(chunk)
    worker.finish("disconnected")
    worker.join(20)
    assert not worker.alive and glue.ended == ["disconnected"]
    stream = glue.stream
    assert stream is not None and stream.ended_reason == "disconnected"
    assert glue.kinds == {MediaKind.VIDEO, MediaKind.AUDIO}
    codecs = {t.codec for t in stream.tracks.values()}
    assert codecs == {Codec.H264, Codec.AAC}
    video = next(t for t in stream.tracks.values() if t.codec is Codec.H264)
    assert (video.width, video.height) == (64, 64)
    assert stream.meters[video.id].packets >= 25  # all but the frames still in the encoder's flush
    assert stream.bytes_in > 0 and stream.started


def test_refused_stream_ends_and_the_rest_is_discarded(ts_bytes: bytes) -> None:
    glue = Glue(refuse="Stream already exists")
    worker = TsDemuxWorker("unit", glue.hooks()).start()
    for chunk in chunks(ts_bytes):
        worker.push(chunk)
    assert glue.done.wait(20)
    assert glue.ended == ["rejected: Stream already exists"]
    assert worker.alive  # still swallowing input until its source goes away
    assert worker.push(b"\x47" * 1316)
    worker.finish("disconnected")
    worker.join(10)
    assert not worker.alive and glue.stream is None


def test_bytes_that_are_not_ts_are_refused() -> None:
    glue = Glue()
    worker = TsDemuxWorker("unit", glue.hooks(), idle_timeout_s=0.3).start()
    for _ in range(3):
        worker.push(bytes(range(256)) * 5)
    worker.join(10)
    assert glue.ended and glue.ended[0].startswith("input is not MPEG-TS")
    assert glue.stream is None


def test_silence_ends_the_stream(ts_bytes: bytes) -> None:
    glue = Glue()
    worker = TsDemuxWorker("unit", glue.hooks(), idle_timeout_s=0.3).start()
    for chunk in chunks(ts_bytes):
        worker.push(chunk)
    worker.join(20)
    assert glue.ended == ["no data for 300 ms"]
    assert glue.stream is not None and glue.stream.ended_reason == "no data for 300 ms"
    assert not worker.push(b"\x47" * 188)


def test_abort_stops_a_waiting_worker() -> None:
    glue = Glue()
    worker = TsDemuxWorker("unit", glue.hooks()).start()
    worker.abort("server shutdown")
    worker.join(5)
    assert not worker.alive and glue.ended == ["server shutdown"]
