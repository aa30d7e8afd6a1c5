"""The chunk reader against hand-built chunks (spec §5.3 layouts), the writer, and hostile input."""

from __future__ import annotations

import random
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.errors import RtmpProtocolError
from kiln.media.formats.rtmp.messages import AGGREGATE, AUDIO, VIDEO, RtmpMessage, split_aggregate
from tests.unit.rtmp.media import make_flv, publish_stream, sorted_tags


def basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([(fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def h0(csid: int, ts: int, length: int, type_id: int, sid: int, ext: int | None = None) -> bytes:
    field = 0xFFFFFF if ext is not None else ts
    out = basic(0, csid) + field.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes([type_id]) \
        + struct.pack("<I", sid)
    return out + (struct.pack(">I", ext) if ext is not None else b"")


def h1(csid: int, delta: int, length: int, type_id: int) -> bytes:
    return basic(1, csid) + delta.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes([type_id])


def h2(csid: int, delta: int, ext: int | None = None) -> bytes:
    field = 0xFFFFFF if ext is not None else delta
    return basic(2, csid) + field.to_bytes(3, "big") + (struct.pack(">I", ext) if ext is not None else b"")


def h3(csid: int, ext: int | None = None) -> bytes:
    return basic(3, csid) + (struct.pack(">I", ext) if ext is not None else b"")


def set_chunk_size(size: int) -> bytes:
    return h0(2, 0, 4, 1, 0) + struct.pack(">I", size)


def read(data: bytes, split: int | None = None, **kwargs: int) -> list[RtmpMessage]:
    reader = ChunkReader(**kwargs)
    if split is None:
        return reader.feed(data)
    out = []
    for i in range(0, len(data), split):
        out += reader.feed(data[i:i + split])
    return out


def summary(messages: list[RtmpMessage]) -> list[tuple[int, int, int, bytes, int]]:
    return [(m.type_id, m.timestamp, m.stream_id, m.payload, m.csid) for m in messages]


@pytest.mark.parametrize("split", [None, 1, 3, 17])
def test_spec_example_1_audio_with_header_compression(split: int | None) -> None:
    # §5.3.2.2 example 1: one type-0 header, one type-2 delta, then type-3 headers reuse the delta
    payload = [bytes([i]) * 32 for i in range(4)]
    data = h0(3, 1000, 32, AUDIO, 12345) + payload[0] + h2(3, 20) + payload[1] + h3(3) + payload[2] \
        + h3(3) + payload[3]
    assert [(m.timestamp, m.payload, m.stream_id) for m in read(data, split)] == \
        [(1000 + 20 * i, payload[i], 12345) for i in range(4)]


@pytest.mark.parametrize("split", [None, 1, 128])
def test_spec_example_2_message_split_in_chunks(split: int | None) -> None:
    body = bytes(range(256)) + bytes(51)  # 307 bytes at the default chunk size of 128
    data = h0(4, 1000, 307, VIDEO, 12346) + body[:128] + h3(4) + body[128:256] + h3(4) + body[256:]
    assert summary(read(data, split)) == [(VIDEO, 1000, 12346, body, 4)]


def test_type_1_header_changes_length_and_type() -> None:
    data = h0(5, 100, 3, AUDIO, 1) + b"abc" + h1(5, 33, 2, VIDEO) + b"de" + h3(5) + b"fg"
    assert [(m.type_id, m.timestamp, m.payload) for m in read(data)] == \
        [(AUDIO, 100, b"abc"), (VIDEO, 133, b"de"), (VIDEO, 166, b"fg")]


def test_type_3_after_type_0_repeats_the_timestamp_as_delta() -> None:
    # FFmpeg's reading (and writing) of this case: the type-0 timestamp is the implied delta
    data = h0(6, 40, 1, AUDIO, 1) + b"a" + h3(6) + b"b"
    assert [m.timestamp for m in read(data)] == [40, 80]


@pytest.mark.parametrize("csid", [2, 63, 64, 319, 320, 65599])
def test_one_two_and_three_byte_chunk_stream_ids(csid: int) -> None:
    body = bytes(200)
    data = h0(csid, 7, 200, VIDEO, 1) + body[:128] + h3(csid) + body[128:]
    assert summary(read(data, 1)) == [(VIDEO, 7, 1, body, csid)]


def test_extended_timestamps_in_every_header_type() -> None:
    big = 0x01234567
    body = bytes(range(200))
    data = (h0(4, 0, 200, VIDEO, 1, ext=big) + body[:128] + h3(4, ext=big) + body[128:]   # continuation repeats it
            + h2(4, 0, ext=0x01000000) + body[:128] + h3(4, ext=0x01000000) + body[128:]  # extended delta
            + h3(4, ext=0x01000000) + body[:128] + h3(4, ext=0x01000000) + body[128:])    # new message, same delta
    assert [(m.timestamp, m.payload) for m in read(data, 5)] == \
        [(big, body), (big + 0x01000000, body), (big + 0x02000000, body)]


def test_extended_timestamp_ends_when_a_header_fits_24_bits() -> None:
    data = h0(4, 0, 1, AUDIO, 1, ext=0x02000000) + b"a" + h2(4, 10) + b"b" + h3(4) + b"c"
    assert [m.timestamp for m in read(data)] == [0x02000000, 0x0200000A, 0x02000014]


def test_timestamps_wrap_at_32_bits() -> None:
    data = h0(4, 0, 1, AUDIO, 1, ext=0xFFFFFFF0) + b"a" + h2(4, 0x20) + b"b"
    assert [m.timestamp for m in read(data)] == [0xFFFFFFF0, 0x10]


def test_chunk_size_change_mid_stream() -> None:
    body = bytes(range(256)) * 4
    data = h0(4, 0, 1024, VIDEO, 1) + body[:128]
    for start in range(128, 1024, 128):
        data += h3(4) + body[start:start + 128]
    data += set_chunk_size(4096) + h1(4, 33, 1024, VIDEO) + body  # now one chunk
    reader = ChunkReader()
    assert [m.payload for m in reader.feed(data)] == [body, body]
    assert reader.chunk_size == 4096


def test_interleaved_chunk_streams() -> None:
    a, b = bytes([1]) * 300, bytes([2]) * 150
    data = (h0(4, 10, 300, VIDEO, 1) + a[:128] + h0(6, 20, 150, AUDIO, 1) + b[:128]
            + h3(4) + a[128:256] + h3(6) + b[128:] + h3(4) + a[256:])
    assert [(m.csid, m.payload) for m in read(data, 7)] == [(6, b), (4, a)]


def test_abort_discards_a_partial_message() -> None:
    data = (h0(4, 0, 300, VIDEO, 1) + bytes(128) + h0(2, 0, 4, 2, 0) + struct.pack(">I", 4)
            + h0(4, 50, 3, VIDEO, 1) + b"new")
    reader = ChunkReader()
    assert [(m.timestamp, m.payload) for m in reader.feed(data)] == [(50, b"new")]
    assert reader._buffered == 0


def test_a_header_read_alone_buffers_nothing_and_a_body_read_whole_is_sliced() -> None:
    # publishers such as ffmpeg write a message's header and its body apart: each often arrives in its own read
    reader = ChunkReader()
    audio = bytes(range(100))
    assert reader.feed(h0(4, 0, 100, AUDIO, 1)) == [] and reader._buffered == 0
    (msg,) = reader.feed(audio)
    assert (msg.type_id, msg.payload, type(msg.payload)) == (AUDIO, audio, bytes) and reader._buffered == 0
    video = bytes(300)
    assert reader.feed(h0(6, 40, 300, VIDEO, 1)) == [] and reader._buffered == 0
    assert reader.feed(video[:128] + h3(6) + video[128:200]) == [] and reader._buffered == 200
    (msg,) = reader.feed(video[200:256] + h3(6) + video[256:])
    assert (msg.type_id, msg.timestamp, msg.payload) == (VIDEO, 40, video) and reader._buffered == 0


def test_mid_message_says_whether_a_read_ended_inside_a_message() -> None:
    # the paced session reads once more at once when it did (kiln.media.ingest.rtmp.session._poll)
    reader = ChunkReader()
    assert not reader.mid_message
    header = h0(4, 0, 100, AUDIO, 1)
    reader.feed(header[:3])                      # inside a chunk header
    assert reader.mid_message
    reader.feed(header[3:])                      # a header alone: its payload is still to come
    assert reader.mid_message
    reader.feed(bytes(60))                       # part of the payload
    assert reader.mid_message
    assert len(reader.feed(bytes(40))) == 1 and not reader.mid_message
    video = bytes(300)
    reader.feed(h0(6, 40, 300, VIDEO, 1) + video[:128])  # a whole first chunk: the message goes on
    assert reader.mid_message
    reader.feed(h3(6) + video[128:256] + h3(6) + video[256:])
    assert not reader.mid_message


def test_zero_length_message() -> None:
    assert [(m.type_id, m.payload) for m in read(h0(3, 0, 0, 20, 0) + h0(3, 0, 1, 20, 0) + b"x")] == \
        [(20, b""), (20, b"x")]


def test_bytes_received_counts_everything() -> None:
    reader = ChunkReader()
    reader.feed(b"\x03\x00")
    reader.feed(b"\x00\x00")
    assert reader.bytes_received == 4


@pytest.mark.parametrize("size", [0, 0x80000000, 0xFFFFFFFF])
def test_set_chunk_size_out_of_range_is_rejected(size: int) -> None:
    with pytest.raises(RtmpProtocolError, match="Set Chunk Size"):
        read(set_chunk_size(size))


def test_largest_chunk_size_is_accepted_and_memory_stays_bounded() -> None:
    reader = ChunkReader(max_message_size=1 << 20)
    reader.feed(set_chunk_size(0x7FFFFFFF))
    assert reader.chunk_size == 0x7FFFFFFF
    # a message that announces 1 MiB but delivers 1 KiB holds 1 KiB, not 1 MiB or 2 GiB
    assert reader.feed(h0(4, 0, 1 << 20, VIDEO, 1) + bytes(1024)) == []
    assert reader._buffered == 1024


def test_message_length_limit() -> None:
    with pytest.raises(RtmpProtocolError, match="exceeds the 1000-byte limit"):
        read(h0(4, 0, 1001, VIDEO, 1), max_message_size=1000)


@pytest.mark.parametrize("first", [h1(4, 0, 1, VIDEO), h2(4, 0), h3(4)])
def test_a_chunk_stream_must_start_with_type_0(first: bytes) -> None:
    with pytest.raises(RtmpProtocolError, match="starts with a type"):
        read(first + b"x")


def test_new_header_inside_an_unfinished_message_is_rejected() -> None:
    with pytest.raises(RtmpProtocolError, match="unfinished message"):
        read(h0(4, 0, 200, VIDEO, 1) + bytes(128) + h0(4, 0, 1, VIDEO, 1) + b"x")


def test_chunk_stream_count_is_bounded() -> None:
    data = b"".join(h0(csid, 0, 1, AUDIO, 1) + b"a" for csid in range(3, 70))
    with pytest.raises(RtmpProtocolError, match="chunk streams"):
        read(data, max_chunk_streams=64)


def test_writer_header_compression_and_continuations() -> None:
    writer = ChunkWriter(128)
    first = writer.write(4, AUDIO, 1000, 1, b"a" * 10)
    assert first[:1] == b"\x04" and len(first) == 12 + 10          # type 0
    assert writer.write(4, AUDIO, 1020, 1, b"b" * 10)[:1] == b"\x84"  # type 2: same length and type
    assert writer.write(4, AUDIO, 1040, 1, b"c" * 10)[:1] == b"\xc4"  # type 3: same delta
    assert writer.write(4, VIDEO, 1040, 1, b"d" * 5)[:1] == b"\x44"   # type 1: new length/type
    big = writer.write(5, VIDEO, 0x01000000, 1, bytes(300))
    assert big.count(b"\xc5\x01\x00\x00\x00") == 2                  # continuations repeat the extended time


def test_aggregate_messages_split_into_their_tags() -> None:
    def tag(kind: int, ts: int, body: bytes) -> bytes:
        return bytes([kind]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") \
            + bytes([ts >> 24]) + b"\x00\x00\x00" + body + struct.pack(">I", 11 + len(body))
    agg = RtmpMessage(AGGREGATE, 5000, 1, tag(VIDEO, 100, b"v1") + tag(AUDIO, 120, b"a1"), 4)
    assert [(m.type_id, m.timestamp, m.payload) for m in split_aggregate(agg)] == \
        [(VIDEO, 5000, b"v1"), (AUDIO, 5020, b"a1")]
    with pytest.raises(RtmpProtocolError):
        split_aggregate(RtmpMessage(AGGREGATE, 0, 1, tag(VIDEO, 0, b"xx")[:-6], 4))


messages_strategy = st.lists(
    st.tuples(st.sampled_from([3, 4, 5, 6, 64, 400]), st.sampled_from([AUDIO, VIDEO, 18, 20]),
              st.integers(0, 0x02000000), st.integers(0, 3), st.binary(max_size=700)),
    max_size=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages_strategy, st.sampled_from([1, 60, 128, 4096]), st.integers(1, 500), st.randoms())
def test_writer_reader_round_trip(messages: list[tuple[int, int, int, int, bytes]], chunk_size: int, split: int,
                                  rnd: random.Random) -> None:
    writer = ChunkWriter(128)
    data = [writer.write(2, 1, 0, 0, struct.pack(">I", chunk_size))]
    writer.set_chunk_size(chunk_size)
    expected = []
    clocks: dict[int, int] = {}
    for csid, kind, step, sid, payload in messages:
        ts = (clocks.get(csid, 0) + step) & 0xFFFFFFFF
        clocks[csid] = ts
        data.append(writer.write(csid, kind, ts, sid, payload))
        expected.append((kind, ts, sid, payload, csid))
    stream = b"".join(data)
    reader = ChunkReader()
    got = []
    pos = 0
    while pos < len(stream):
        step = rnd.randint(1, split)
        got += reader.feed(stream[pos:pos + step])
        pos += step
    assert summary(got) == expected


def _interleave(messages: list[tuple[int, bytes]], rnd: random.Random) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Chunks of messages on different csids mixed at chunk level, in order per csid (as the spec allows)."""
    queues: dict[int, list[bytes]] = {}
    expected: dict[int, list[bytes]] = {}
    for csid, payload in messages:
        chunks = [h0(csid, 0, len(payload), VIDEO, 1) + payload[:128]]
        chunks += [h3(csid) + payload[i:i + 128] for i in range(128, len(payload), 128)]
        queues.setdefault(csid, []).extend(chunks)
        expected.setdefault(csid, []).append(payload)
    out = []
    while any(queues.values()):
        csid = rnd.choice([c for c, q in queues.items() if q])
        out.append(queues[csid].pop(0))
    return b"".join(out), [(c, p) for c, ps in expected.items() for p in ps]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([4, 5, 6, 7]), st.binary(min_size=0, max_size=600)), max_size=12),
       st.randoms())
def test_interleaved_chunks_reassemble_per_stream(messages: list[tuple[int, bytes]], rnd: random.Random) -> None:
    # one message per csid: a chunk stream carries its messages one after another, never mixed
    data, expected = _interleave(list(dict(messages).items()), rnd)
    got = read(data, rnd.randint(1, 300))
    assert sorted((m.csid, m.payload) for m in got) == sorted(expected)


def _hostile(data: bytes, split: int) -> None:
    reader = ChunkReader(max_message_size=1 << 16)
    start = time.thread_time()  # CPU time: bounded work per input, whatever the machine's load
    try:
        for i in range(0, len(data), split):
            reader.feed(data[i:i + split])
            assert reader._buffered <= 2 * (1 << 16)
            assert len(reader._pending) <= 18
    except RtmpProtocolError:
        pass
    assert time.thread_time() - start < 1.0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_random_bytes_raise_only_protocol_errors(data: bytes, split: int) -> None:
    _hostile(data, split)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_publish_stream_raises_only_protocol_errors(data: st.DataObject) -> None:
    stream = bytearray(_captured()[:20_000])
    for _ in range(data.draw(st.integers(1, 10))):
        pos = data.draw(st.integers(0, len(stream) - 1))
        stream[pos] = data.draw(st.integers(0, 255))
    _hostile(bytes(stream), data.draw(st.integers(1, 4096)))


_CAPTURE: list[bytes] = []


def _captured() -> bytes:
    if not _CAPTURE:
        _CAPTURE.append(publish_stream(sorted_tags(make_flv()), chunk_size=128))
    return _CAPTURE[0]


def test_captured_publish_stream_reads_back_every_tag() -> None:
    tags = sorted_tags(make_flv())
    got = read(_captured(), 1000)
    assert [(m.type_id, m.timestamp, m.payload) for m in got] == [(t.type_id, t.timestamp, t.body) for t in tags]
