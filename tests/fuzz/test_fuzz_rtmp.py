"""Fuzz targets for the RTMP ingest path: handshake, chunk stream, AMF0, FLV tag bodies, and the wire
handler (one ``RtmpConnection`` fed arbitrary bytes through an in-memory transport, as a socket would).

Property of each: success or the parser's own ``ValueError`` subclass, within time and memory bounds
(tests/fuzz/budget.py); the connection ends with a logged reason, never an internal error.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiln.media.formats import amf0
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.flv import FlvConverter
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.errors import RtmpProtocolError
from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE, HandshakeError, ServerHandshake
from kiln.media.formats.rtmp.messages import AGGREGATE, AUDIO, COMMAND_AMF0, DATA_AMF0, SET_CHUNK_SIZE, VIDEO
from kiln.media.ingest.rtmp.session import RtmpConnection, SessionConfig
from tests.fuzz.budget import bounded, fuzz, only
from tests.fuzz.strategies import inputs, mutated, splits
from tests.unit.rtmp.media import make_flv, sorted_tags
from tests.unit.rtmp.test_session import Handler, MemoryTransport

# ---- valid inputs to start from -------------------------------------------------------------------

_TAGS = sorted_tags(make_flv(frames=4))
_HEVC_TAGS = sorted_tags(make_flv("libx265", frames=2, audio=False))
VIDEO_BODIES = [t.body for t in _TAGS + _HEVC_TAGS if t.type_id == VIDEO][:6]
AUDIO_BODIES = [t.body for t in _TAGS if t.type_id == AUDIO][:3]
# Enhanced RTMP: FourCC headers in front of the same configurations and frames
_E_HEVC = [bytes([0x90]) + b"hvc1" + _HEVC_TAGS[0].body[5:],
           bytes([0x91]) + b"hvc1" + b"\0\0\0" + _HEVC_TAGS[1].body[5:],
           bytes([0x93]) + b"hvc1" + _HEVC_TAGS[1].body[5:], bytes([0x97]) + b"\x00\x02\x00\x00" + b"\x11hvc1"]
_E_AUDIO = [bytes([0x90]) + b"mp4a" + AUDIO_BODIES[0][2:], bytes([0x91]) + b"mp4a" + AUDIO_BODIES[1][2:]]
FLV_SEEDS = VIDEO_BODIES + AUDIO_BODIES + _E_HEVC + _E_AUDIO

CONNECT = amf0.encode("connect", 1.0, {"app": "app", "type": "nonprivate", "flashVer": "FMLE/3.0",
                                       "tcUrl": "rtmp://127.0.0.1:1935/app", "fourCcList": ["hvc1", "avc1"]})
AMF_SEEDS = [CONNECT, amf0.encode("publish", 5.0, None, "cam?token=x", "live"),
             amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0, height=180.0, encoder="x")),
             amf0.encode([1.0, "two", True, None, amf0.AmfDate(0.0),
                          amf0.TypedObject("T", {"k": amf0.XmlDocument("<a/>")})])]


def _writer_bytes(messages: list[tuple[int, int, int, bytes]], chunk_size: int = 128) -> bytes:
    writer = ChunkWriter(128)
    out = b""
    for csid, type_id, ts, payload in messages:
        out += writer.write(csid, type_id, ts, 1, payload)
        if type_id == SET_CHUNK_SIZE and len(payload) == 4:
            writer.set_chunk_size(max(1, struct.unpack(">I", payload)[0] & 0x7FFFFFFF))
    return out


CHUNK_SEEDS = [
    _writer_bytes([(3, COMMAND_AMF0, 0, CONNECT), (2, SET_CHUNK_SIZE, 0, struct.pack(">I", 4096)),
                   *[(6 if t.type_id == VIDEO else 4, t.type_id, t.timestamp, t.body) for t in _TAGS[:6]]]),
    _writer_bytes([(64, VIDEO, 70_000_000, VIDEO_BODIES[0]), (400, AUDIO, 0xFFFFFF + 5, AUDIO_BODIES[0]),
                   (3, AGGREGATE, 0, bytes([VIDEO]) + len(VIDEO_BODIES[1]).to_bytes(3, "big") + bytes(7)
                    + VIDEO_BODIES[1] + struct.pack(">I", len(VIDEO_BODIES[1]) + 11))]),
]


# ---- handshake --------------------------------------------------------------------------------------

HANDSHAKE_SEEDS = [b"\x03" + bytes(2 * HANDSHAKE_SIZE) + CHUNK_SEEDS[0][:64],
                   b"\x03" + bytes(4) + b"\x0a\x00\x0c\x02" + bytes(range(256)) * 6 + bytes(HANDSHAKE_SIZE)]


@fuzz(1.0)
@given(st.one_of(st.binary(max_size=4000), mutated(HANDSHAKE_SEEDS)).flatmap(splits))
def test_handshake(pieces: list[bytes]) -> None:
    def run() -> None:
        hs = ServerHandshake()
        sent = b""
        for piece in pieces:
            if hs.done:
                break
            sent += hs.feed(piece)
        assert len(sent) in (0, 1 + 2 * HANDSHAKE_SIZE)
        if hs.done:
            assert len(hs.leftover) <= sum(map(len, pieces))
    only(HandshakeError, run)


# ---- chunk stream -----------------------------------------------------------------------------------

@fuzz(2.0)
@given(inputs(CHUNK_SEEDS, max_random=2048).flatmap(splits), st.sampled_from([1 << 10, 64 << 10, 16 << 20]))
def test_chunk_reader(pieces: list[bytes], max_message: int) -> None:
    reader = ChunkReader(max_message)

    def run() -> None:
        for piece in pieces:
            for message in reader.feed(piece):
                assert len(message.payload) <= max_message
            # memory: partial messages never exceed the reader's own limit, whatever lengths were announced
            assert reader._buffered <= 2 * max_message
    only(RtmpProtocolError, run)


# ---- AMF0 -------------------------------------------------------------------------------------------

def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


# Well-formed AMF0 built from a grammar (random bytes rarely get past the first marker): containers
# nest, and references (0x07) point at containers by index, including the ones still open (cycles)
_AMF_LEAF = st.one_of(
    st.sampled_from([b"\x05", b"\x06", b"\x0d", b"\x01\x01", b"\x02\x00\x0aonMetaData", b"\x0b" + bytes(10)]),
    st.integers(0, 3).map(lambda i: b"\x07" + _u16(i)),
    st.floats(allow_nan=True).map(lambda f: b"\x00" + struct.pack(">d", f)),
    st.text(max_size=8).map(lambda s: b"\x02" + _u16(len(s.encode())) + s.encode()),
)


def _props(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(st.tuples(st.sampled_from([b"a", b"b", b"width", b"\xff"]), children), max_size=4).map(
        lambda kvs: b"".join(_u16(len(k)) + k + v for k, v in kvs) + b"\x00\x00\x09")


AMF_VALUE = st.recursive(_AMF_LEAF, lambda children: st.one_of(
    _props(children).map(lambda p: b"\x03" + p),
    _props(children).map(lambda p: b"\x08" + _u16(0) + _u16(2) + p),
    _props(children).map(lambda p: b"\x10\x00\x01T" + p),
    st.lists(children, max_size=4).map(lambda items: b"\x0a" + struct.pack(">I", len(items)) + b"".join(items)),
), max_leaves=24)
AMF_BYTES = st.one_of(inputs(AMF_SEEDS), st.lists(AMF_VALUE, min_size=1, max_size=3).map(b"".join))


def _tree_size(value: Any, budget: int, depth: int = 0) -> int:
    """Nodes a JSON-like walk visits (what onMetaData handling and logging do), stopping at ``budget``."""
    if depth > amf0.MAX_DEPTH + 1:
        return 1
    if isinstance(value, amf0.TypedObject):
        value = value.fields
    children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
    size = 1
    for child in children:
        size += _tree_size(child, budget - size, depth + 1)
        if size > budget:
            break
    return size


@fuzz(3.0)
@given(AMF_BYTES)
def test_amf0_decode(data: bytes) -> None:
    values = only(amf0.AmfError, amf0.decode_all, data)
    if values is not None:
        # references make the decoded values a graph: walking it as a tree must stay proportional to the input
        budget = 4 * len(data) + 1024
        with bounded():
            assert _tree_size(values, budget) <= budget, "AMF0 references expand into an unbounded tree"


# ---- FLV tag bodies ---------------------------------------------------------------------------------

@fuzz(3.0)
@given(st.booleans(), st.lists(st.tuples(st.booleans(), st.integers(0, 0xFFFFFFFF),
                                          st.one_of(st.binary(max_size=64), mutated(FLV_SEEDS))), max_size=12))
def test_flv_converter(enhanced: bool, bodies: list[tuple[bool, int, bytes]]) -> None:
    """A sequence, so a corrupt configuration is followed by frames that rely on it."""
    converter = FlvConverter(enhanced)

    def run() -> None:
        for video, ts, body in bodies:
            try:
                (converter.convert_video if video else converter.convert_audio)(ts, body)
            except (RtmpProtocolError, CodecConfigError):
                pass  # the session closes the connection on these; keep feeding to reach later states
    only((), run)


# ---- the wire handler -------------------------------------------------------------------------------

class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


PREAMBLE = b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(HANDSHAKE_SIZE)
_PUBLISH = _writer_bytes([(3, COMMAND_AMF0, 0, CONNECT), (3, COMMAND_AMF0, 0, amf0.encode("createStream", 2.0, None)),
                          (3, COMMAND_AMF0, 0, amf0.encode("publish", 3.0, None, "cam", "live")),
                          (5, DATA_AMF0, 0, AMF_SEEDS[2])])
MESSAGE = st.tuples(st.sampled_from([3, 4, 5, 6, 2, 70, 400]),
                    st.sampled_from([8, 9, 9, 8, 18, 20, 15, 17, 22, 4, 5, 6, 3, 1, 0, 255]),
                    st.integers(0, 0xFFFFFFFF),
                    st.one_of(AMF_BYTES, mutated(FLV_SEEDS), st.binary(max_size=16)))
WIRE = st.one_of(
    st.lists(MESSAGE, max_size=10).map(lambda ms: PREAMBLE + _PUBLISH + _writer_bytes(ms)),
    mutated([PREAMBLE + _PUBLISH + CHUNK_SEEDS[0][len(_writer_bytes([(3, COMMAND_AMF0, 0, CONNECT)])):]]),
    st.binary(max_size=4000).map(lambda b: PREAMBLE + b),
).flatmap(splits)


@fuzz(1.0)
@given(WIRE, st.booleans(), st.booleans())
def test_wire_handler(pieces: list[bytes], enhanced: bool, refuse: bool) -> None:
    errors = _ErrorLog()
    logging.getLogger("kiln").addHandler(errors)

    async def scenario() -> None:
        from kiln.media.ingest.contract import PublishRejected, Refusal

        handler = Handler(reject=PublishRejected(Refusal.REFUSED, "fuzz") if refuse else None)
        loop = asyncio.get_running_loop()
        conn = RtmpConnection(handler, SessionConfig(enhanced_rtmp=enhanced, max_message_size=1 << 20), loop,
                              lambda c: None, lambda t: None)
        transport = MemoryTransport()
        conn.connection_made(transport)
        for piece in pieces:
            conn.data_received(piece)
            for _ in range(3):
                await asyncio.sleep(0)  # let a publish decision run, as the loop would between reads
        conn.connection_lost(None)
        for sink in handler.sinks:
            assert len(sink.closes) == 1, "a publish ends exactly once"

    try:
        with bounded():
            asyncio.run(scenario())
    finally:
        logging.getLogger("kiln").removeHandler(errors)
    assert not errors.records, f"{errors.records[0].getMessage()}: the session raised an unexpected error"
