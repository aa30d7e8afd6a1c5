"""Publishing connections read on the pacer's tick (kiln.media.ingest.rtmp.pacer), over real loopback sockets.

The session tests drive RtmpConnection through an in-memory transport; pacing reads the socket itself
(with a high SO_RCVLOWAT), so these run the real RtmpServer on both event loops Kiln supports.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from kiln.media.formats import amf0
from kiln.media.formats.flv import FlvConverter
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
from kiln.media.formats.rtmp.messages import COMMAND_AMF0
from kiln.media.ingest.rtmp.server import RtmpServer
from kiln.media.ingest.rtmp.session import PACED_LOWAT
from kiln.media.model import Packet
from tests.unit.rtmp.media import command
from tests.unit.rtmp.test_session import Handler, media_bytes

TIMEOUT = 20.0


def run(loop_name: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop_name == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(scenario())
    else:
        asyncio.run(scenario())


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Publisher:
    """An ffmpeg-like publisher on a real socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkWriter(128)
        self.replies = ChunkReader()

    @classmethod
    async def connect(cls, port: int) -> Publisher:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pub = cls(reader, writer)
        writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))
        await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
        writer.write(os.urandom(HANDSHAKE_SIZE))
        return pub

    def command(self, name: str, txn: float, *args: Any, stream_id: int = 0) -> None:
        self.writer.write(command(self.chunks, name, txn, *args, stream_id=stream_id))

    async def answer(self, name: str, txn: float | None = None) -> list[Any]:
        """Read replies until the command ``name`` (with transaction ``txn``, if given) arrives."""
        async def read() -> list[Any]:
            while True:
                for msg in self.replies.feed(await self.reader.read(65536) or b""):
                    if msg.type_id == COMMAND_AMF0:
                        values = amf0.decode_all(msg.payload)
                        if values[0] == name and (txn is None or values[1] == txn):
                            return values
                if self.reader.at_eof():
                    raise AssertionError(f"connection closed before {name}")
        return await asyncio.wait_for(read(), TIMEOUT)

    async def publish(self, stream: str) -> None:
        self.command("connect", 1.0, {"app": "app", "tcUrl": "rtmp://127.0.0.1/app"})
        self.command("createStream", 2.0, None)
        self.command("publish", 3.0, None, stream, "live", stream_id=1)
        status = await self.answer("onStatus")
        assert status[3]["code"] == "NetStream.Publish.Start"


def expected_packets(tags: list[Any]) -> list[tuple[Any, ...]]:
    direct = FlvConverter()
    out = []
    for t in tags:
        if t.type_id in (8, 9):
            r = (direct.convert_video if t.type_id == 9 else direct.convert_audio)(t.timestamp, t.body)
            if isinstance(r, Packet):
                out.append((r.track_id, r.dts, r.pts, r.data, r.config))
    return out


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
@pytest.mark.parametrize("tick", [0.02, 0.0])
def test_a_publish_read_on_ticks_loses_nothing_and_commands_follow_it(loop_name: str, tick: float) -> None:
    async def scenario() -> None:
        handler = Handler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=tick)
        await server.start()
        try:
            pub = await Publisher.connect(server.port)
            await pub.publish("s")
            assert server.paced == (1 if tick else 0)
            media, tags = media_bytes()
            for start in range(0, len(media), 1500):  # small writes, as a live publisher's arrive
                pub.writer.write(media[start:start + 1500])
                await pub.writer.drain()
            sink = handler.sinks[0]
            want = expected_packets(tags)
            await until(lambda: len(sink.packets) >= len(want), "every packet")
            assert [(p.track_id, p.dts, p.pts, p.data, p.config) for p in sink.packets] == want
            # unpublished: no longer paced, and a command is answered on readiness again
            pub.command("FCUnpublish", 6.0, None, "s")
            pub.command("deleteStream", 7.0, None, 1.0)
            await until(lambda: sink.closes == ["unpublished"], "the unpublish")
            assert server.paced == 0
            pub.command("createStream", 8.0, None)
            assert (await pub.answer("_result", 8.0))[3] == 2.0
            pub.writer.close()
            await until(lambda: not server.sessions, "the connection to close")
        finally:
            await server.close()
    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_a_paced_publisher_leaving_ends_its_publish(loop_name: str) -> None:
    async def scenario() -> None:
        handler = Handler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=0.02)
        await server.start()
        try:
            pubs = [await Publisher.connect(server.port) for _ in range(3)]
            for i, pub in enumerate(pubs):
                await pub.publish(f"s{i}")
            assert server.paced == 3
            media, _ = media_bytes()
            pubs[0].writer.write(media[:5000])
            pubs[0].writer.close()  # EOF with bytes still unread: the publish ends the usual way
            pubs[1].writer.transport.abort()
            await until(lambda: [s.closes for s in handler.sinks[:2]] == [["disconnected"]] * 2, "two publishes ended")
            assert server.paced == 1 and len(server.sessions) == 1
        finally:
            await server.close()
        assert handler.sinks[2].closes == ["closed: server shutdown"]
        assert server.paced == 0
    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_a_burst_past_the_low_water_mark_is_read_before_the_tick(loop_name: str) -> None:
    async def scenario() -> None:
        handler = Handler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=3600.0)  # a tick that never comes
        await server.start()
        try:
            pub = await Publisher.connect(server.port)
            await pub.publish("s")
            assert server.paced == 1
            media, _ = media_bytes()
            burst = media * (1 + (PACED_LOWAT * 2) // len(media))
            pub.writer.write(burst[:PACED_LOWAT * 2])
            await pub.writer.drain()
            sink = handler.sinks[0]
            await until(lambda: len(sink.packets) > 0, "packets read by the transport without a tick")
        finally:
            await server.close()
    run(loop_name, scenario)
