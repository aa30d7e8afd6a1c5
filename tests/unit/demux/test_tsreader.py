"""The TS hand-over between a socket and PyAV: bounded, never blocking the producer, ending with a reason."""

from __future__ import annotations

import io
import threading
import time
from fractions import Fraction

import av
import pytest

from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.tsreader import TS_PACKET_SIZE, TsDemuxWorker, TsFeed, TsHooks, ts_sync_offset
from kiln.media.model import Codec, MediaKind, Packet
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import LiveStream

VIDEO_OPTIONS = {
    "libx264": {"g": "15", "bf": "0", "preset": "ultrafast"},
    "libx265": {"preset": "ultrafast", "x265-params": "keyint=15:bframes=0:log-level=error"},
}


def make_ts(frames: int = 30, *, video: str = "libx264", audios: tuple[str, ...] = ("aac",),
            ts_offset_s: float | None = None) -> bytes:
    """About ``frames``/30 s of 64x64 video + one 48 kHz stereo track per ``audios`` entry in MPEG-TS, in memory.

    ``ts_offset_s`` shifts every timestamp (the muxer's ``output_ts_offset``), modulo the 33-bit TS clock.
    """
    out = io.BytesIO()
    video_in = av.open("testsrc2=size=64x64:rate=30", format="lavfi")
    options = {} if ts_offset_s is None else {"output_ts_offset": f"{ts_offset_s:.6f}"}
    with av.open(out, "w", format="mpegts", options=options) as container:
        video_stream = container.add_stream(video, rate=30, options=VIDEO_OPTIONS[video])
        video_stream.width, video_stream.height, video_stream.pix_fmt = 64, 64, "yuv420p"
        audio_streams = [container.add_stream(codec, rate=48000, layout="stereo") for codec in audios]
        for index, frame in enumerate(video_in.decode(video=0)):
            if index == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            container.mux(video_stream.encode(frame))
        for number, audio in enumerate(audio_streams):
            audio_in = av.open(f"sine=frequency={1000 + 500 * number}:sample_rate=48000", format="lavfi")
            samples = 0
            for frame in audio_in.decode(audio=0):
                if samples >= frames * 1600:
                    break
                samples += frame.samples
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
            audio_in.close()
        container.mux(video_stream.encode(None))
    video_in.close()
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


def test_one_read_carries_every_queued_message_that_fits() -> None:
    feed = TsFeed("t")
    messages = [bytes([n]) * 1316 for n in range(5)]
    for message in messages:
        feed.push(message)
    feed.close("done")
    first = feed.read(3000)  # two whole messages and the start of the third, in order
    rest = feed.read(10_000)
    assert (len(first), len(rest)) == (3000, 5 * 1316 - 3000)
    assert first + rest == b"".join(messages)
    assert feed.read(10_000) == b""


def test_an_empty_datagram_is_not_the_end_of_input() -> None:
    feed = TsFeed("t")
    assert feed.push(b"") and feed.push(b"abc")
    assert feed.read(100) == b"abc"
    feed.close("done")
    assert feed.read(100) == b""


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
        self.packets = Subscriber("unit", max_packets=100_000)

    def open_stream(self, kinds: set[MediaKind]) -> LiveStream:
        if self.refuse:
            raise PublishRejected(self.refuse)
        self.kinds = kinds
        self.stream = LiveStream("default", "app", "s", source_type="SRT", source_url="srt://x/app/s", profiles=[])
        self.stream.input.subscribe(self.packets)  # every packet the hub gets, as a consumer would
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


# -- what the TS carries --------------------------------------------------------------------------
WRAP_S = 2**33 / 90000  # the 33-bit TS clock wraps after this many seconds (about 26.5 hours)


def run_worker(data: bytes, reason: str = "disconnected") -> tuple[Glue, LiveStream, list[Packet]]:
    """Feed ``data`` as 1316-byte messages, end the input, and return what reached the stream's input hub."""
    glue = Glue()
    worker = TsDemuxWorker("unit", glue.hooks()).start()
    for chunk in chunks(data):
        assert worker.push(chunk)
    worker.finish(reason)
    worker.join(30)
    assert not worker.alive and glue.ended == [reason]
    assert glue.stream is not None and glue.stream.ended_reason == reason
    return glue, glue.stream, glue.packets.drain()


def by_track(packets: list[Packet]) -> dict[int, list[Packet]]:
    tracks: dict[int, list[Packet]] = {}
    for p in packets:
        tracks.setdefault(p.track_id, []).append(p)
    return tracks


def assert_dts_increasing(packets: list[Packet]) -> None:
    for track_id, items in by_track(packets).items():
        dts = [p.dts for p in items]
        assert dts[0] >= 0, track_id
        assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), (track_id, dts)
        assert all(p.pts >= p.dts for p in items), track_id


@pytest.fixture(scope="module")
def many_audios_ts() -> bytes:
    return make_ts(audios=("aac", "aac", "libmp3lame", "libopus"))


def test_several_audio_tracks_each_carry_packets(many_audios_ts: bytes) -> None:
    glue, stream, packets = run_worker(many_audios_ts)
    audio = [t for t in stream.tracks.values() if t.kind is MediaKind.AUDIO]
    assert sorted(t.codec.value for t in audio) == ["AAC", "AAC", "MP3", "OPUS"]
    assert all((t.sample_rate, t.channels) == (48000, 2) for t in audio)
    counts = {track_id: len(items) for track_id, items in by_track(packets).items()}
    for track in audio:  # ~1 s of 1024/1152/960-sample frames each
        assert counts.get(track.id, 0) >= 40, (track.codec, counts)
        assert stream.meters[track.id].packets == counts[track.id]
    assert glue.kinds == {MediaKind.VIDEO, MediaKind.AUDIO}
    assert_dts_increasing(packets)


def test_h265_is_described_with_its_size() -> None:
    _, stream, packets = run_worker(make_ts(video="libx265"))
    video = [t for t in stream.tracks.values() if t.kind is MediaKind.VIDEO]
    assert [(t.codec, t.width, t.height) for t in video] == [(Codec.H265, 64, 64)]
    assert video[0].config[:1] == b"\x01"  # an hvcC record, not Annex-B
    frames = by_track(packets)[video[0].id]
    assert len(frames) >= 25 and frames[0].keyframe
    assert 19 in nal_types(frames[0].data) or 20 in nal_types(frames[0].data)  # an IDR picture


def nal_types(data: bytes) -> list[int]:
    """H.265 NAL unit types of a 4-byte length-prefixed access unit (fails on Annex-B or a bad length)."""
    types, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        assert 0 < size <= len(data) - at - 4
        types.append(data[at + 4] >> 1 & 0x3F)
        at += 4 + size
    return types


def test_timestamps_keep_increasing_across_the_33_bit_wrap() -> None:
    data = make_ts(60, ts_offset_s=WRAP_S - 0.8)  # 2 s that start 0.8 s before the clock wraps
    _, stream, packets = run_worker(data)
    assert_dts_increasing(packets)
    video = next(t for t in stream.tracks.values() if t.kind is MediaKind.VIDEO)
    dts = [p.dts for p in by_track(packets)[video.id]]
    assert dts[0] < 2**33 < dts[-1]  # counted on past the wrap instead of restarting at 0
    assert 1.8 <= (dts[-1] - dts[0]) / 90000 <= 2.1
    assert len(dts) >= 55


def test_concatenated_segments_with_unrelated_timestamps_stay_continuous() -> None:
    """Three 1 s segments: at 100 s, back to 0 s, then forward to 5000 s (an encoder restarting twice)."""
    data = make_ts(ts_offset_s=100) + make_ts(ts_offset_s=0) + make_ts(ts_offset_s=5000)
    _, stream, packets = run_worker(data)
    assert_dts_increasing(packets)
    tracks = by_track(packets)
    assert set(tracks) == set(stream.tracks) and len(tracks) == 2
    for track in stream.tracks.values():
        items = tracks[track.id]
        span_s = (items[-1].dts - items[0].dts) / 90000
        assert 2.5 <= span_s <= 3.6, (track.codec, span_s)  # three seconds of media, no jump kept
        steps = [b.dts - a.dts for a, b in zip(items, items[1:], strict=False)]
        assert max(steps) <= 0.4 * 90000, track.codec  # the splices became (at most) small gaps
    video = next(t for t in stream.tracks.values() if t.kind is MediaKind.VIDEO)
    assert len(tracks[video.id]) >= 80  # the stream kept going through both discontinuities


def test_a_stream_that_stops_mid_packet_ends_cleanly(ts_bytes: bytes, caplog: pytest.LogCaptureFixture) -> None:
    truncated = ts_bytes[:len(ts_bytes) - TS_PACKET_SIZE // 2]  # the last TS packet is cut in half
    assert len(truncated) % TS_PACKET_SIZE
    glue, stream, packets = run_worker(truncated, reason="disconnected")
    assert stream.meters and len(by_track(packets)) == 2
    assert_dts_increasing(packets)
    assert "Traceback" not in caplog.text and "ts demux failed" not in caplog.text


def test_garbage_after_the_probe_does_not_crash_the_worker(ts_bytes: bytes,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    noise = bytes((i * 37 + 11) % 256 for i in range(50_000))
    _, stream, packets = run_worker(ts_bytes[:len(ts_bytes) // 2] + noise + ts_bytes[len(ts_bytes) // 2:])
    assert_dts_increasing(packets)
    assert stream.bytes_in > 0
    assert "ts demux failed" not in caplog.text
