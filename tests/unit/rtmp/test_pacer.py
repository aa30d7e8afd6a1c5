"""Publishing connections read on the pacer's tick (kiln.media.ingest.rtmp.pacer) once enough publish, over real
loopback sockets (most tests set the threshold to one publisher).

The session tests drive RtmpConnection through an in-memory transport; pacing reads the socket itself
(with a high SO_RCVLOWAT), so these run the real RtmpServer on both event loops Kiln supports.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from kiln.media.formats import amf0
from kiln.media.formats.flv import FlvConverter
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
from kiln.media.formats.rtmp.messages import AUDIO, COMMAND_AMF0, DATA_AMF0, SET_CHUNK_SIZE, VIDEO
from kiln.media.ingest.rtmp.pacer import PACE_AT, UNPACE_BELOW, ReadPacer
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
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=tick, pace_at=1, unpace_below=1)
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
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=0.02, pace_at=1, unpace_below=1)
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
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=3600.0,  # a tick that never comes
                             pace_at=1, unpace_below=1)
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


def media_parts(parts: int) -> tuple[list[bytes], list[int], list[Any]]:
    """The test publish cut at message boundaries into ``parts`` writes, and how many packets the first k parts
    hold (one chunk writer, so each part continues the chunk stream where the previous one stopped)."""
    _, tags = media_bytes()
    writer = ChunkWriter(128)
    head = writer.write(2, SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 4096))
    writer.set_chunk_size(4096)
    cuts = [len(tags) * i // parts for i in range(parts + 1)]
    out, counts = [], []
    for i in range(parts):
        chunk = b"".join(writer.write({VIDEO: 6, AUDIO: 4, DATA_AMF0: 5}[t.type_id], t.type_id, t.timestamp, 1, t.body)
                         for t in tags[cuts[i]:cuts[i + 1]])
        out.append((head if i == 0 else b"") + chunk)
        counts.append(len(expected_packets(tags[:cuts[i + 1]])))
    return out, counts, tags


async def write_small(pub: Publisher, data: bytes) -> None:
    for start in range(0, len(data), 1500):  # small writes, as a live publisher's arrive
        pub.writer.write(data[start:start + 1500])
        await pub.writer.drain()


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_below_the_threshold_a_publish_is_read_on_arrival_not_on_the_tick(loop_name: str) -> None:
    async def scenario() -> None:
        handler = Handler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=3600.0)  # the default threshold
        await server.start()
        try:
            pubs = [await Publisher.connect(server.port) for _ in range(PACE_AT - 1)]
            for i, pub in enumerate(pubs):
                await pub.publish(f"s{i}")
            assert server.paced == 0
            parts, counts, tags = media_parts(3)
            sink = handler.sinks[0]
            for part, count in zip(parts, counts, strict=True):  # each part well under the low-water mark
                start = time.monotonic()
                await write_small(pubs[0], part)
                await until(lambda c=count: len(sink.packets) >= c, "the part's packets")  # type: ignore[misc]
                assert time.monotonic() - start < TIMEOUT < 3600.0  # read on arrival: a tick never came
            assert [(p.track_id, p.dts, p.pts, p.data, p.config) for p in sink.packets] == expected_packets(tags)
        finally:
            await server.close()
    run(loop_name, scenario)


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_publishers_move_onto_the_tick_and_back_in_order_with_hysteresis(loop_name: str) -> None:
    async def scenario() -> None:
        handler = Handler()
        # a tick that never comes: a paced socket's few bytes wait in the kernel until pacing stops
        server = RtmpServer(handler, host="127.0.0.1", port=0, read_tick=3600.0, pace_at=3, unpace_below=2)
        await server.start()
        try:
            parts, counts, tags = media_parts(4)
            assert max(len(p) for p in parts[1:3]) < PACED_LOWAT
            pubs = [await Publisher.connect(server.port) for _ in range(3)]
            await pubs[0].publish("s0")
            sink = handler.sinks[0]
            await write_small(pubs[0], parts[0])
            await until(lambda: len(sink.packets) == counts[0], "part 1, read on arrival")
            await pubs[1].publish("s1")
            assert server.paced == 0
            await pubs[2].publish("s2")  # the third: every publisher is read on the tick now
            assert server.paced == 3
            await write_small(pubs[0], parts[1])  # waits in the kernel for a tick
            pubs[2].writer.close()  # down to two: not below unpace_below, still paced
            await until(lambda: handler.sinks[2].closes == ["disconnected"], "publisher 3 to leave")
            assert server.paced == 2
            assert len(sink.packets) == counts[0]  # part 2 was not read: nothing but a tick reads it
            await write_small(pubs[0], parts[2])
            pubs[1].writer.transport.abort()  # down to one: read on arrival again (a command would wait for a tick)
            await until(lambda: handler.sinks[1].closes == ["disconnected"], "publisher 2 to leave")
            assert server.paced == 0
            await until(lambda: len(sink.packets) == counts[2], "parts 2 and 3, read at the switch")
            await write_small(pubs[0], parts[3])
            await until(lambda: len(sink.packets) == counts[3], "part 4, read on arrival")
            assert [(p.track_id, p.dts, p.pts, p.data, p.config) for p in sink.packets] == expected_packets(tags)
            assert sink.closes == []
            # up again: the first publisher is paced with the newcomers, and EOF still ends its publish at once
            for i in (3, 4):
                pub = await Publisher.connect(server.port)
                await pub.publish(f"s{i}")
                pubs.append(pub)
            assert server.paced == 3
            pubs[0].writer.close()
            await until(lambda: sink.closes == ["disconnected"], "publisher 1's EOF")
        finally:
            await server.close()
    run(loop_name, scenario)


class Member:
    def __init__(self) -> None:
        self.paced: list[bool] = []
        self.polls = 0

    def poll(self) -> None:
        self.polls += 1

    def pace(self, on: bool) -> None:
        self.paced.append(on)


def test_the_pacer_switches_at_pace_at_and_back_below_unpace_below_only() -> None:
    async def scenario() -> None:
        pacer = ReadPacer(asyncio.get_running_loop(), 0.001)
        members = [Member() for _ in range(PACE_AT + 1)]
        for i, m in enumerate(members[:PACE_AT - 1]):
            pacer.add(i, m.poll, m.pace)
        assert not pacer.pacing and len(pacer) == 0 and all(m.paced == [] for m in members)
        pacer.add(PACE_AT - 1, members[PACE_AT - 1].poll, members[PACE_AT - 1].pace)
        assert pacer.pacing and len(pacer) == PACE_AT
        assert all(m.paced == [True] for m in members[:PACE_AT])
        await until(lambda: all(m.polls >= 2 for m in members[:PACE_AT]), "ticks")
        # one leaving and joining at the threshold moves nobody else
        for _ in range(3):
            pacer.remove(0)
            pacer.add(0, members[0].poll, members[0].pace)
        assert pacer.switches == 1 and members[1].paced == [True] and members[0].paced == [True] * 4
        for i in range(PACE_AT - UNPACE_BELOW):
            pacer.remove(i)
        assert pacer.pacing and len(pacer) == UNPACE_BELOW
        pacer.remove(PACE_AT - UNPACE_BELOW)
        assert not pacer.pacing and len(pacer) == 0 and pacer.switches == 2
        assert members[PACE_AT - 1].paced == [True, False]
        ticks = pacer.ticks
        await asyncio.sleep(0.05)  # no timer left running once nobody is paced
        assert pacer.ticks == ticks
        pacer.close()
    asyncio.run(scenario())
