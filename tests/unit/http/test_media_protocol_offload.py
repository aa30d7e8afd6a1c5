"""Large fast-lane answers written by the kernel's io_uring workers (kiln/http/offload_send.py), on real sockets:
every answer arrives whole and in order on its connection (pipelined answers and the remainder of a partial
write included), a connection closed mid-send costs nothing and leaks nothing, and a descriptor number closed and
reused by a new connection meanwhile is never written (the ring writes to a dup of the old socket)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
import uvloop
from starlette.applications import Starlette
from uvicorn.server import ServerState

from kiln.config.limits import ConnectionLimits
from kiln.http.media_protocol import media_protocol
from kiln.http.offload_send import Gate, Sender

BIG = bytes(range(256)) * 1200  # 307 kB: above OFFLOAD_MIN
SMALL = b"a small answer"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    head: bytes = b"content-type: video/mp4\r\n"
    ready: float = 0.0
    reload: bool = False


class Lane:
    """``/big/N``: BIG with N as its first bytes; ``/small``: SMALL."""

    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None, acrh: str | None,
             accept_encoding: str) -> Any:
        if raw_path.startswith(b"/big/"):
            tag = raw_path[5:]
            return Answer(body=tag + BIG[len(tag):])
        return Answer(body=SMALL)


class Held:
    """A sender that keeps what it is given until the test lets the real one write it (``go``)."""

    def __init__(self, real: Sender) -> None:
        self.real = real
        self.held: list[tuple[int, bytes, Any, Any]] = []

    def submit(self, fd: int, block: bytes, body: Any, done: Any) -> bool:
        self.held.append((fd, block, body, done))
        return True

    def go(self) -> None:
        for job in self.held:
            assert self.real.submit(*job)
        self.held.clear()


def run(test: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(test(runner.get_loop()))


async def serve(loop: asyncio.AbstractEventLoop, sender: Any, sndbuf: int = 0) -> tuple[asyncio.Server, int, list[Any]]:
    """A player listener on a free port; the list gets each connection's protocol."""
    protocol_class = media_protocol(ConnectionLimits(), "llhls", Lane(), sender=sender)
    config = uvicorn.Config(Starlette(), log_config=None, access_log=False, lifespan="off", ws="none",
                            http=protocol_class)
    config.load()
    state = ServerState()
    state.default_headers = [(b"server", b"kiln")]
    made: list[Any] = []

    def factory() -> Any:
        protocol = protocol_class(config=config, server_state=state, app_state={}, _loop=loop)
        made.append(protocol)
        return protocol

    server = await loop.create_server(factory, "127.0.0.1", 0)
    if sndbuf:
        for sock in server.sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)  # inherited by accepted sockets
    return server, server.sockets[0].getsockname()[1], made


def answers(data: bytes) -> list[bytes]:
    """The bodies of the answers in ``data``, split by Content-Length."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head[:80]
        length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"content-length: "))[16:])
        assert len(rest) >= length, "an answer cut short"
        found.append(rest[:length])
        data = rest[length:]
    return found


async def read_until(reader: asyncio.StreamReader, bodies: int, timeout: float = 20.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                if len(answers(data)) >= bodies:
                    return data
            except (AssertionError, StopIteration, ValueError):
                pass  # a head or body still partial
            chunk = await reader.read(1 << 16)
            if not chunk:
                return data
            data += chunk


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def real_sender(loop: asyncio.AbstractEventLoop) -> Sender:
    try:
        return Sender(loop)
    except OSError as exc:  # pragma: no cover - a kernel or sandbox without io_uring
        pytest.skip(f"no io_uring here: {exc}")


def test_pipelined_answers_arrive_whole_and_in_order_behind_a_partial_write() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        sender = real_sender(loop)
        # a small send buffer and a client that reads only after asking: the ring's writev is partial (or gets
        # EAGAIN) and the remainder goes to the transport, while the answers to the pipelined requests wait
        server, port, made = await serve(loop, sender, sndbuf=16384)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        writer.write(b"".join(b"GET %s HTTP/1.1\r\nHost: kiln\r\n\r\n" % path
                              for path in (b"/big/first", b"/small", b"/big/second", b"/small", b"/big/third")))
        await writer.drain()
        async with asyncio.timeout(10):
            while not made or type(made[0].transport) is not Gate:  # the first answer is with the ring
                await asyncio.sleep(0.001)
        data = await read_until(reader, 5)
        assert answers(data) == [b"first" + BIG[5:], SMALL, b"second" + BIG[6:], SMALL, b"third" + BIG[5:]]
        assert type(made[0].transport) is not Gate, "the transport is the connection's own again"
        writer.close()
        server.close()
        sender.close()

    run(test)


def test_many_connections_get_their_own_large_answers() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        sender = real_sender(loop)
        server, port, _made = await serve(loop, sender)
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        for n, (_reader, writer) in enumerate(conns):
            writer.write(b"GET /big/%03d HTTP/1.1\r\nHost: kiln\r\n\r\n" % n)
        for n, (reader, _writer) in enumerate(conns):
            assert answers(await read_until(reader, 1)) == [b"%03d" % n + BIG[3:]]
        assert sender.in_flight() == 0
        for _reader, writer in conns:
            writer.close()
        server.close()
        sender.close()

    run(test)


def test_a_number_closed_and_reused_meanwhile_is_never_written_to() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        real = real_sender(loop)
        held = Held(real)
        server, port, made = await serve(loop, held)
        first_reader, first_writer = await asyncio.open_connection("127.0.0.1", port)
        first_writer.write(b"GET /big/old HTTP/1.1\r\nHost: kiln\r\n\r\n")
        async with asyncio.timeout(10):
            while not held.held:
                await asyncio.sleep(0.001)
        number = made[0]._kiln_fd
        # the connection's transport closes (as uvloop closes it on a reset or EOF) before the ring writes a byte
        made[0].transport.real.abort()
        other = socket.create_server(("127.0.0.1", 0))
        async with asyncio.timeout(10):
            while True:  # uvloop closes the descriptor a loop turn after abort()
                reuse = socket.socket()  # the lowest free number: the one just closed, once it is
                if reuse.fileno() == number:
                    break
                reuse.close()
                await asyncio.sleep(0.001)
        reuse.connect(other.getsockname())
        peer, _addr = other.accept()
        held.go()  # now the ring writes the old connection's answer
        async with asyncio.timeout(10):
            while real.in_flight():
                await asyncio.sleep(0.001)
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(1)  # loopback delivers within the send: anything written to the number would be here
        old = await read_until(first_reader, 1)
        assert answers(old) == [b"old" + BIG[3:]], "the old socket, alive through the dup, got its answer"
        assert await first_reader.read() == b"", "then it closed"
        for sock in (peer, reuse, other):
            sock.close()
        first_writer.close()
        server.close()
        real.close()

    run(test)


def test_a_connection_lost_mid_send_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        real = real_sender(loop)
        held = Held(real)
        server, port, made = await serve(loop, held)
        await asyncio.sleep(0)
        before = open_fds()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /big/gone HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            while not held.held:
                await asyncio.sleep(0.001)
        protocol = made[0]
        assert type(protocol.transport) is Gate
        sock = writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # the viewer resets the connection while its answer is with the ring
        await asyncio.sleep(0.05)
        held.go()
        async with asyncio.timeout(10):
            while real.in_flight() or type(protocol.transport) is Gate or open_fds() > before:
                await asyncio.sleep(0.005)
        assert protocol.transport.is_closing()
        server.close()
        real.close()

    with caplog.at_level(logging.WARNING):
        run(test)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
