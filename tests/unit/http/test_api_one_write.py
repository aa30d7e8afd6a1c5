"""The API port's protocol writes an answer of known length as one ``transport.write`` (head and body
together, kiln/http/api_protocol.py), streams a server-sent-events answer's head before its first event,
writes a HEAD answer's head alone, and keeps pipelined answers in order; an idle keep-alive connection still
closes after uvicorn's keep-alive timeout, counted from its last answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from kiln.config.limits import ConnectionLimits
from kiln.http.api_protocol import api_protocol
from tests.unit.http.fake_transport import RecordingTransport, connect


class App:
    """``/json``: a plain Response; ``/events``: a stream whose first event waits for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/events":
            async def events() -> AsyncIterator[bytes]:
                await self.release.wait()
                yield b"data: one\n\n"

            response: Response = StreamingResponse(events(), media_type="text/event-stream")
        else:
            response = Response(b'{"message":"OK","statusCode":200}' if scope["path"] == "/json" else b"",
                                media_type="application/json")
        await response(scope, receive, send)


def serve(app: App, keep_alive: float = 5.0) -> tuple[Any, RecordingTransport]:
    protocol_class = api_protocol(ConnectionLimits(), "api")
    return connect(protocol_class, app, server=b"OvenMediaEngine", proxy_headers=False, timeout_keep_alive=keep_alive)


async def settle(transport: RecordingTransport, writes: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10  # a deadline, not a count of sleeps: a loaded machine
    while asyncio.get_running_loop().time() < deadline:
        if len(transport.writes) >= writes:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"expected {writes} writes, got {transport.writes!r}")


def test_an_answer_of_known_length_is_one_write_and_pipelined_answers_stay_in_order() -> None:
    async def run() -> None:
        protocol, transport = serve(App())
        protocol.data_received(b"GET /json HTTP/1.1\r\nHost: kiln\r\n\r\nGET /empty HTTP/1.1\r\nHost: kiln\r\n\r\n")
        await settle(transport, 2)
        await asyncio.sleep(0.01)
        first, second = transport.writes  # two answers, two writes: no separate head write
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b'\r\n\r\n{"message":"OK","statusCode":200}')
        assert b"content-length: 33\r\n" in first
        assert second.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 0\r\n" in second
        assert second.endswith(b"\r\n\r\n")
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_head_answer_and_a_streamed_answer_write_their_head_at_once() -> None:
    async def run() -> None:
        app = App()
        protocol, transport = serve(app)
        protocol.data_received(b"HEAD /json HTTP/1.1\r\nHost: kiln\r\n\r\n")
        await settle(transport, 1)
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: 33\r\n" in transport.writes[0] and transport.writes[0].endswith(b"\r\n\r\n")
        protocol.data_received(b"GET /events HTTP/1.1\r\nHost: kiln\r\n\r\n")
        await settle(transport, 2)  # the event stream's head, before any event: a client sees the stream open
        assert b"text/event-stream" in transport.writes[1] and b"data:" not in transport.writes[1]
        app.release.set()
        await settle(transport, 3)
        assert b"data: one" in b"".join(transport.writes[2:])
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_held_head_is_written_before_the_connection_closes() -> None:
    """An app that starts an answer of known length and fails before its body: uvicorn closes the connection;
    the head it held goes out first (what the client would have received before)."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        raise RuntimeError("boom")

    async def run() -> None:
        protocol, transport = serve(broken)  # type: ignore[arg-type]
        protocol.data_received(b"GET /json HTTP/1.1\r\nHost: kiln\r\n\r\n")
        for _ in range(10_000):  # up to ~10 s: a loaded machine
            if transport.closing:
                break
            await asyncio.sleep(0.001)
        assert transport.closing and transport.writes == [transport.writes[0]]
        head = transport.writes[0]
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 5\r\n" in head
        protocol.connection_lost(None)

    asyncio.run(run())


def test_an_idle_connection_closes_after_the_keep_alive_timeout_from_its_last_answer() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        # the second request comes 0.3 s after the first answer, well inside the 1 s keep-alive even when a
        # loaded machine wakes the test late (0.3 s into a 0.3 s keep-alive failed there once)
        protocol, transport = serve(App(), keep_alive=1.0)
        protocol.data_received(b"GET /json HTTP/1.1\r\nHost: kiln\r\n\r\n")
        await settle(transport, 1)
        await asyncio.sleep(0.3)
        assert not transport.closing
        protocol.data_received(b"GET /json HTTP/1.1\r\nHost: kiln\r\n\r\n")
        await settle(transport, 2)
        last_answer = loop.time()
        while not transport.closing and loop.time() - last_answer < 5:
            await asyncio.sleep(0.01)
        assert transport.closing, "idle for longer than the keep-alive timeout: closed"
        assert loop.time() - last_answer >= 0.99, "not before the timeout counted from the last answer"
        protocol.connection_lost(None)

    asyncio.run(run())
