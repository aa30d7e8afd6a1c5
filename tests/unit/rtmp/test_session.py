"""The publish-side session driven byte for byte as a client would, through an in-memory transport.

No sockets: the connection is an ``asyncio.Protocol``, so the test plays the transport (collects what
the server writes, records pause/resume/close) and reads the server's replies with Kiln's own chunk
reader and AMF0 decoder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
from typing import Any

import pytest

from kiln.media.formats import amf0
from kiln.media.formats.flv import FlvConverter
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
from kiln.media.formats.rtmp.messages import (
    ACKNOWLEDGEMENT,
    COMMAND_AMF0,
    DATA_AMF0,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    WINDOW_ACK_SIZE,
    RtmpMessage,
)
from kiln.media.ingest.contract import PublishRejected, Refusal
from kiln.media.ingest.rtmp.handler import RtmpPublish
from kiln.media.ingest.rtmp.session import RtmpConnection, SessionConfig
from kiln.media.model import Packet, Track
from tests.unit.rtmp.media import make_flv, publish_stream, sorted_tags


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.paused = False
        self.pauses = 0
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default


class RecordingSink:
    def __init__(self) -> None:
        self.meta: list[dict[str, Any]] = []
        self.tracks: list[Track] = []
        self.packets: list[Packet] = []
        self.closes: list[str] = []

    def on_metadata(self, meta: dict[str, Any]) -> None:
        self.meta.append(meta)

    def on_track(self, track: Track) -> None:
        self.tracks.append(track)

    def on_packet(self, packet: Packet) -> None:
        self.packets.append(packet)

    def on_close(self, reason: str) -> None:
        self.closes.append(reason)


class Handler:
    def __init__(self, reject: PublishRejected | None = None, gate: asyncio.Event | None = None) -> None:
        self.requests: list[RtmpPublish] = []
        self.sinks: list[RecordingSink] = []
        self.reject = reject
        self.gate = gate

    async def on_publish(self, request: RtmpPublish) -> RecordingSink:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.reject is not None:
            raise self.reject
        sink = RecordingSink()
        self.sinks.append(sink)
        return sink


class Client:
    """Plays an ffmpeg-like publisher against one RtmpConnection."""

    def __init__(self, handler: Handler, **config: Any) -> None:
        self.handler = handler
        self.loop = asyncio.get_running_loop()
        self.conn = RtmpConnection(handler, SessionConfig(**config), self.loop, lambda c: None, lambda t: None)
        self.transport = MemoryTransport()
        self.conn.connection_made(self.transport)
        self.writer = ChunkWriter(128)
        self.reader = ChunkReader()
        self.read_pos = 0

    def handshake(self) -> None:
        self.conn.data_received(b"\x03" + bytes(HANDSHAKE_SIZE))
        assert len(self.transport.written) == 1 + 2 * HANDSHAKE_SIZE
        self.read_pos = len(self.transport.written)
        self.conn.data_received(os.urandom(HANDSHAKE_SIZE))

    def command(self, name: str, txn: float, *args: Any, stream_id: int = 0) -> bytes:
        return self.writer.write(3, COMMAND_AMF0, 0, stream_id, amf0.encode(name, txn, *args))

    def connect_bytes(self, app: str = "app", tc_url: str = "rtmp://127.0.0.1:1935/app", **extra: Any) -> bytes:
        obj = {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url, **extra}
        return self.command("connect", 1.0, obj)

    def publish_bytes(self, name: str = "stream") -> bytes:
        return (self.command("releaseStream", 2.0, None, name) + self.command("FCPublish", 3.0, None, name)
                + self.command("createStream", 4.0, None) + self.command("publish", 5.0, None, name, "live",
                                                                         stream_id=1))

    def replies(self) -> list[RtmpMessage]:
        data = bytes(self.transport.written[self.read_pos:])
        self.read_pos = len(self.transport.written)
        return self.reader.feed(data)

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)


def commands_of(messages: list[RtmpMessage]) -> list[list[Any]]:
    return [amf0.decode_all(m.payload) for m in messages if m.type_id == COMMAND_AMF0]


def media_bytes(chunk_size: int = 4096) -> tuple[bytes, list[Any]]:
    flv = make_flv()
    tags = sorted_tags(flv)
    return publish_stream(tags, chunk_size), tags


def test_full_publish_in_one_write() -> None:
    async def scenario() -> None:
        handler = Handler()
        client = Client(handler)
        client.handshake()
        media, tags = media_bytes()
        # everything at once: the media that follows "publish" must wait for the handler, then replay in order
        client.conn.data_received(client.connect_bytes() + client.publish_bytes("stream?token=abc") + media)
        assert client.transport.paused
        await client.settle()
        assert not client.transport.paused
        replies = client.replies()
        kinds = [m.type_id for m in replies]
        assert kinds[:2] == [WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH]
        assert client.reader.chunk_size == 4096  # the reader applied the server's Set Chunk Size
        cmds = commands_of(replies)
        assert cmds[0][0] == "_result" and cmds[0][3]["code"] == "NetConnection.Connect.Success"
        assert [c[0] for c in cmds if c[0] == "onFCPublish"] == ["onFCPublish"]
        assert ["_result", 4.0, None, 1.0] in cmds                     # createStream -> stream id 1
        start = next(c for c in cmds if c[0] == "onStatus")
        assert start[3]["code"] == "NetStream.Publish.Start"
        assert USER_CONTROL in kinds                                  # StreamBegin before the status
        request = handler.requests[0]
        assert (request.app, request.stream, request.query, request.host) == ("app", "stream", "token=abc",
                                                                              "127.0.0.1")
        assert request.peer == ("127.0.0.1", 50000) and request.session is client.conn
        sink = handler.sinks[0]
        assert [t.id for t in sink.tracks] == [0, 1]
        # the same packets as converting the tags directly: nothing lost or reordered by the replay
        direct = FlvConverter()
        expected = [r for t in tags if t.type_id in (8, 9)
                    for r in [(direct.convert_video if t.type_id == 9 else direct.convert_audio)(t.timestamp, t.body)]
                    if isinstance(r, Packet)]
        assert [(p.track_id, p.dts, p.pts, p.data, p.config) for p in sink.packets] == \
            [(p.track_id, p.dts, p.pts, p.data, p.config) for p in expected]
        client.conn.data_received(client.command("FCUnpublish", 6.0, None, "stream")
                                  + client.command("deleteStream", 7.0, None, 1.0))
        client.conn.connection_lost(None)
        assert sink.closes == ["unpublished"]
    asyncio.run(scenario())


def test_metadata_before_and_after_publish() -> None:
    async def scenario() -> None:
        handler = Handler()
        client = Client(handler)
        client.handshake()
        meta = client.writer.write(4, DATA_AMF0, 0, 1, amf0.encode("@setDataFrame", "onMetaData",
                                                                   amf0.EcmaArray(width=320.0, videocodecid=7.0)))
        client.conn.data_received(client.connect_bytes() + meta + client.publish_bytes())
        await client.settle()
        client.conn.data_received(client.writer.write(4, DATA_AMF0, 0, 1, amf0.encode("onMetaData", {"a": 1.0})))
        assert handler.sinks[0].meta == [{"width": 320.0, "videocodecid": 7.0}, {"a": 1.0}]
        assert type(handler.sinks[0].meta[0]) is dict
    asyncio.run(scenario())


@pytest.mark.parametrize("kind, code", [
    (Refusal.REFUSED, "NetStream.Publish.Rejected"),
    (Refusal.NOT_FOUND, "NetStream.Publish.Rejected"),
    (Refusal.CONFLICT, "NetStream.Publish.BadName"),
])
def test_rejected_publish_tells_the_client_and_closes(kind: Refusal, code: str) -> None:
    async def scenario() -> None:
        handler = Handler(reject=PublishRejected("stream already exists", kind))
        client = Client(handler)
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.publish_bytes())
        await client.settle()
        status = [c for c in commands_of(client.replies()) if c[0] == "onStatus"]
        assert status[-1][3] == {"level": "error", "code": code, "description": "stream already exists"}
        assert client.transport.closed and not client.transport.aborted  # close() flushes the reply first
        assert handler.sinks == []
    asyncio.run(scenario())


def test_disconnect_while_the_handler_decides_still_ends_the_publish() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        handler = Handler(gate=gate)
        client = Client(handler)
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.publish_bytes())
        await client.settle()
        client.conn.connection_lost(ConnectionResetError())
        gate.set()
        await client.settle()
        assert handler.sinks[0].closes == ["disconnected"]
    asyncio.run(scenario())


def test_close_from_another_thread() -> None:
    async def scenario() -> None:
        handler = Handler()
        client = Client(handler)
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.publish_bytes())
        await client.settle()
        thread = threading.Thread(target=client.conn.close, args=("stream deleted",))
        thread.start()
        thread.join()
        await client.settle()
        assert handler.sinks[0].closes == ["closed: stream deleted"]
        assert client.transport.aborted
        client.conn.connection_lost(None)
        assert handler.sinks[0].closes == ["closed: stream deleted"]  # exactly once
    asyncio.run(scenario())


def test_idle_publisher_times_out() -> None:
    async def scenario() -> None:
        handler = Handler()
        client = Client(handler, idle_timeout=0.2)
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.publish_bytes())
        await client.settle()
        await asyncio.sleep(0.5)
        assert handler.sinks[0].closes == ["timeout"]
        assert client.transport.aborted
    asyncio.run(scenario())


def test_handshake_timeout() -> None:
    async def scenario() -> None:
        client = Client(Handler(), handshake_timeout=0.1)
        client.conn.data_received(b"\x03" + bytes(100))
        await asyncio.sleep(0.3)
        assert client.transport.aborted
    asyncio.run(scenario())


def test_protocol_error_ends_the_publish_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        handler = Handler()
        client = Client(handler)
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.publish_bytes())
        await client.settle()
        client.conn.data_received(b"\x44\x00\x00\x00\x00\x00\x05\x09")  # type-1 header on a new csid
        assert client.transport.aborted
        assert handler.sinks[0].closes[0].startswith("protocol error: chunk stream 4 starts with a type-1")
    caplog.set_level(logging.INFO, logger="kiln.media.ingest.rtmp")
    asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # one line, naming the peer and the reason
    assert "peer=127.0.0.1:50000" in warnings[0] and "reason=protocol error: chunk stream 4" in warnings[0]


def test_garbage_instead_of_a_handshake_closes() -> None:
    async def scenario() -> None:
        client = Client(Handler())
        client.conn.data_received(b"GET / HTTP/1.1\r\n\r\n")
        assert client.transport.aborted
    asyncio.run(scenario())


def test_acknowledgements_follow_the_peer_window() -> None:
    async def scenario() -> None:
        client = Client(Handler(), ack_window=1_000_000)
        client.handshake()
        window = client.writer.write(2, WINDOW_ACK_SIZE, 0, 0, struct.pack(">I", 5000))
        client.conn.data_received(client.connect_bytes() + window)
        client.replies()
        media, _ = media_bytes()
        client.conn.data_received(client.publish_bytes() + media[:6000])
        await client.settle()
        acks = [struct.unpack(">I", m.payload)[0] for m in client.replies() if m.type_id == ACKNOWLEDGEMENT]
        assert acks == [client.conn.bytes_received]
    asyncio.run(scenario())


def test_ping_unknown_commands_and_enhanced_connect() -> None:
    async def scenario() -> None:
        client = Client(Handler(), enhanced_rtmp=True)
        client.handshake()
        ping = client.writer.write(2, USER_CONTROL, 0, 0, struct.pack(">HI", 6, 1234))
        client.conn.data_received(client.connect_bytes(fourCcList=["hvc1", "avc1"]) + ping
                                  + client.command("getSomething", 9.0, None) + client.command("onBWDone", 0.0, None))
        replies = client.replies()
        pong = [m.payload for m in replies if m.type_id == USER_CONTROL]
        assert pong == [struct.pack(">HI", 7, 1234)]
        cmds = commands_of(replies)
        assert "hvc1" in cmds[0][2]["fourCcList"]
        assert cmds[1][0] == "_error" and cmds[1][1] == 9.0
        assert len(cmds) == 2  # a command without a transaction id gets no reply
        assert not client.transport.aborted
    asyncio.run(scenario())


def test_play_is_refused_at_once() -> None:
    async def scenario() -> None:
        client = Client(Handler())
        client.handshake()
        client.conn.data_received(client.connect_bytes() + client.command("createStream", 2.0, None)
                                  + client.command("play", 0.0, None, "stream", stream_id=1))
        status = [c for c in commands_of(client.replies()) if c[0] == "onStatus"]
        assert status[0][3]["code"] == "NetStream.Play.Failed"
        assert client.transport.closed
    asyncio.run(scenario())
