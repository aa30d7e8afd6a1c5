"""The API ports' HTTP/1.1 protocol: httptools (as the player ports) with the slowloris guard and a header
bound that answers in OME's envelope, and one socket write per answer.

Why not h11 (uvicorn's pure-Python parser, which the API ran on before): it cost about as much CPU per
request as everything Kiln does to answer a read (bench/api.py). httptools has no header bound of its own,
so media_protocol.py's is used: beyond ``max_header_bytes`` (whole or trickled in pieces) the answer is the
431 api.py would give, ``{"message":"[HTTP] Request headers are larger than N bytes (431)","statusCode":431}``,
and the connection closes.

One write per answer: uvicorn's ASGI cycle writes an answer's head (at ``http.response.start``) and its body
(``http.response.body``) as two ``transport.write`` calls, two ``send`` system calls with the GIL held and two
wake-ups of the client; under start/stop pairs those writes were a sixth of the event loop's samples. The
cycle's transport here (``_OneWrite``) keeps the head of an answer whose length is known back until the body
comes, and writes them as one. A streamed answer (no Content-Length: server-sent events) and a HEAD answer
(uvicorn writes no body for it) have their head written at once, as before; nothing else changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kiln.config.limits import ConnectionLimits
from kiln.errors import ApiError
from kiln.http.envelope import BASE_HEADERS, JSON_TYPE, dumps
from kiln.http.media_protocol import media_protocol


def headers_too_large(limit: int) -> ApiError:
    return ApiError(431, f"Request headers are larger than {limit} bytes")


class _OneWrite:
    """The transport one ASGI cycle writes through: the head of an answer of known length (``chunked_encoding``
    False once uvicorn rendered it) waits for the body's write, and goes out in the same ``write``. Only what
    uvicorn's cycle calls is forwarded (``write``, ``close``, ``is_closing``); whatever else goes to the real
    transport. A held head is never lost: closing writes it first."""

    __slots__ = ("transport", "cycle", "held", "head_done")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self.transport = transport
        self.cycle = cycle
        self.held: bytes | None = None
        self.head_done = False

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
            return
        cycle = self.cycle
        if not self.head_done and cycle.response_started:  # uvicorn's first write once the answer started: its head
            self.head_done = True
            if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
                self.held = data  # uvicorn writes the body next (even an empty one)
                return
        self.transport.write(data)

    def close(self) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held)
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def api_protocol(limits: ConnectionLimits, listener: str) -> type[Any]:
    """The protocol class for one API listener (plain or TLS; its per-client counts are its own)."""
    exc = headers_too_large(limits.max_header_bytes)
    headers = {**BASE_HEADERS, "Content-Type": JSON_TYPE}
    head = "".join(f"{name.lower()}: {value}\r\n" for name, value in headers.items())
    body = dumps({"message": exc.message, "statusCode": exc.status})
    base = media_protocol(limits, listener, None, too_big=(head.encode("latin-1"), body))

    class ApiHttpProtocol(base):  # type: ignore[valid-type,misc]
        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not before and cycle is not None:  # a new ASGI cycle (not a 431, not an upgrade)
                cycle.transport = _OneWrite(self.transport, cycle)

        def on_response_complete(self) -> None:
            """uvicorn's, with the keep-alive timeout as one timer per idle spell (the fast lane's
            ``_fast_done``), not a timer armed at each answer and cancelled by the next request."""
            self._fast_done()

    ApiHttpProtocol.__name__ = f"ApiHttpProtocol[{listener}]"
    return ApiHttpProtocol
