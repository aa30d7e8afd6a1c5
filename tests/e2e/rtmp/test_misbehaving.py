"""Misbehaving clients cost only their own connection, while a real ffmpeg publisher keeps going."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kiln.media.formats.rtmp.messages import AUDIO
from kiln.media.ingest.rtmp.server import RtmpServer
from tests.e2e.rtmp.peers import (
    Peers,
    RawClient,
    RecordingHandler,
    ffmpeg_publish,
    run,
    set_chunk_size_bytes,
)

pytestmark = pytest.mark.e2e


async def _garbage_before_handshake(port: int) -> None:
    client = await RawClient.connect(port)
    client.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await client.closed_by_server()
    client.close()


async def _truncated_chunk(port: int) -> None:
    client = await RawClient.connect(port)
    await client.handshake()
    message = client.chunks.write(6, AUDIO, 0, 1, bytes(500))
    client.writer.write(message[:200])  # a chunk cut short, then silence: the idle timeout must end it
    await client.writer.drain()
    assert await client.closed_by_server()
    client.close()


async def _absurd_chunk_size(port: int) -> None:
    client = await RawClient.connect(port)
    await client.handshake()
    client.writer.write(set_chunk_size_bytes(client.chunks, 0x80000000))
    assert await client.closed_by_server()
    client.close()


async def _huge_message_length(port: int) -> None:
    client = await RawClient.connect(port)
    await client.handshake()
    # a type-0 header announcing a 16,777,215-byte message: over the limit set below
    client.writer.write(b"\x06\x00\x00\x00\xff\xff\xff\x09\x01\x00\x00\x00" + bytes(64))
    assert await client.closed_by_server()
    client.close()


async def _until(predicate: Callable[[], bool], timeout_s: float = 5) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout_s)


def test_bad_clients_close_alone_while_a_publisher_keeps_going() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, max_message_size=1 << 20, idle_timeout=1.0)
        await server.start()
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/good", 4,
                                                      realtime=True))
                sink = (await handler.wait_accepted())[0]
                await sink.wait_packets(20)
                for bad in (_garbage_before_handshake, _truncated_chunk, _absurd_chunk_size, _huge_message_length):
                    before = len(sink.packets)
                    await bad(server.port)
                    await _until(lambda: len(server.sessions) == 1)  # only the bad connection went away
                    await sink.wait_packets(before + 10)  # and the good publisher is still flowing
                assert await ff.wait(60) == 0, ff.stderr
                await sink.closed.wait()
        finally:
            await server.close()
        assert sink.closes == ["unpublished"]
        assert 115 <= len(sink.video()) <= 122
        assert handler.requests[0].stream == "good" and len(handler.requests) == 1
    run(scenario)


def test_silent_client_is_closed_by_the_handshake_timeout() -> None:
    async def scenario() -> None:
        server = RtmpServer(RecordingHandler(), host="127.0.0.1", port=0, handshake_timeout=0.5)
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            silent = await RawClient.connect(server.port)
            half = await RawClient.connect(server.port)
            half.writer.write(b"\x03" + bytes(100))  # C0 and a bit of C1, then nothing
            assert await silent.closed_by_server(5) and await half.closed_by_server(5)
            assert 0.4 <= loop.time() - started < 3
            silent.close()
            half.close()
            assert not server.sessions
        finally:
            await server.close()
    run(scenario)


def test_publisher_that_goes_silent_ends_with_timeout() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, idle_timeout=1.0)
        await server.start()
        try:
            client = await RawClient.connect(server.port)
            await client.publish(server.port, "app", "quiet")
            sink = (await handler.wait_accepted())[0]
            await asyncio.wait_for(sink.closed.wait(), 5)
            assert await client.closed_by_server(5)
            client.close()
        finally:
            await server.close()
        assert sink.closes == ["timeout"]
    run(scenario)


def test_server_close_ends_running_publishes() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        async with Peers() as peers:
            ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/s", 20, realtime=True))
            sink = (await handler.wait_accepted())[0]
            await sink.wait_packets(10)
            await server.close()
            assert sink.closes == ["closed: server shutdown"]
            assert await ff.wait(15) != 0
    run(scenario)
