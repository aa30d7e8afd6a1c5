"""The player ports' HTTP/1.1 protocol: uvicorn's httptools protocol with a fast lane for live LL-HLS files.

Why not plain uvicorn + Starlette: with 1,000 low-latency viewers every part brings a burst of about
2,000 requests (a blocking reload and a part GET per viewer) that must all be answered within 100 ms.
uvicorn's ASGI cycle (a task, an Event and coroutines per request) plus Starlette's routing and Request
objects cost more than the bytes did: 2,000-2,500 req/s for a part or a chunklist on this project's 2-core
machine (bench/llhls.py (d)). Here, once httptools has parsed a GET/HEAD, the player router's
``fast(...)`` (LlhlsServer.fast) is asked first; it answers only what it can answer with the same bytes
and headers as the Starlette path (a live chunklist, part, in-memory segment or init), and returns None
for everything else: masters, WebSocket upgrades, WHEP, HLS v3, CORS preflights, admission, every
refusal and every error go on to uvicorn's ASGI cycle and the Starlette app unchanged, on the same
connection. A blocked request (``_HLS_msn``/``_HLS_part``, a hinted part) waits as a plain callback on
its stream's one change future, so a new part wakes its waiters without a task each.

Order on a connection is kept: the fast lane is taken only when no other answer is pending; while a
blocked fast request waits, later requests queue behind it in uvicorn's pipeline. The slowloris guard
(connection_limits.py) applies as on the other ports; request headers are bounded here (httptools has
no bound of its own, unlike h11): beyond ``max_header_bytes`` the answer is 431 and the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from kiln.config.limits import ConnectionLimits
from kiln.http.connection_limits import guarded_protocol

log = logging.getLogger(__name__)


class FastAnswerLike(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes | memoryview


class FastLane(Protocol):
    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None, acrh: str | None,
             accept_encoding: str) -> Any:
        """A FastAnswerLike, a wait (``on_next_change``, ``retry``, ``give_up``, ``timeout``), or None."""


class _Nothing:
    def set(self) -> None:
        pass


class _Waiting:
    """Stands in uvicorn's ``self.cycle`` while a fast request waits, so later requests queue behind it."""

    response_complete = False
    disconnected = False
    keep_alive = True
    more_body = True
    message_event = _Nothing()
    body = b""


_TOO_BIG = b"request headers are too large"


def media_protocol(limits: ConnectionLimits, listener: str, lane: FastLane | None,
                   too_big: tuple[bytes, bytes] = (b"content-type: text/plain; charset=utf-8\r\n", _TOO_BIG),
                   ) -> type[Any]:
    """The protocol class for one player listener (``lane`` None: the guard and the header bound only).
    ``too_big``: the 431's header lines and body (the API answers it in OME's envelope: api_protocol.py)."""
    guarded = guarded_protocol(limits, listener, HttpToolsProtocol)
    max_head = limits.max_header_bytes
    too_big_head, too_big_body = too_big

    class MediaHttpProtocol(guarded):  # type: ignore[valid-type,misc]
        _kiln_seen = False  # a request has begun on this connection
        _kiln_in_head = False  # a request's headers are arriving
        _kiln_head_bytes = 0
        _kiln_raw = 0
        _kiln_too_big = False
        _kiln_fast = False  # the current message is answered by the fast lane

        def _waiting_for_headers(self) -> bool:
            """For the guard: nothing asked yet, or a request's headers begun and not complete (an idle
            keep-alive connection is uvicorn's keep-alive timeout's business, as on the h11 ports)."""
            return (not self._kiln_seen or self._kiln_in_head) and not self.transport.is_closing()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._kiln_in_head:  # headers still incomplete: a header trickled without end is bounded too
                self._kiln_raw += len(data)
                if self._kiln_raw > 2 * max_head:
                    self._kiln_too_big = True
            if self._kiln_too_big and not self.transport.is_closing():
                self.transport.write(STATUS_LINE[431] + too_big_head + b"content-length: %d\r\n"
                                     b"connection: close\r\n\r\n" % len(too_big_body) + too_big_body)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._kiln_seen = self._kiln_in_head = True
            self._kiln_head_bytes = 0
            self._kiln_fast = False

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self._count(len(url))

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._count(len(name) + len(value) + 4)

        def _count(self, n: int) -> None:
            self._kiln_head_bytes += n
            if self._kiln_head_bytes > max_head:
                self._kiln_too_big = True

        def on_headers_complete(self) -> None:
            self._kiln_in_head = False
            self._kiln_raw = 0
            if self._kiln_too_big:
                return
            if lane is not None and (self.cycle is None or self.cycle.response_complete) and not self.pipeline \
                    and not self.parser.should_upgrade() and self._fast():
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._kiln_fast and not self._kiln_too_big:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._kiln_fast and not self._kiln_too_big:
                super().on_message_complete()

        def _fast(self) -> bool:
            method = self.parser.get_method()
            if method not in (b"GET", b"HEAD"):
                return False
            host = origin = acrh = None
            accept = b""
            for name, value in self.headers:
                if name == b"host":
                    host = value
                elif name == b"origin":
                    origin = value
                elif name == b"accept-encoding":
                    accept = value
                elif name == b"access-control-request-headers":
                    acrh = value
            try:
                url = httptools.parse_url(self.url)
                result = lane.fast(method.decode(), url.path, url.query or b"",  # type: ignore[union-attr]
                                   host.decode("latin-1") if host is not None else "",
                                   origin.decode("latin-1") if origin is not None else None,
                                   acrh.decode("latin-1") if acrh is not None else None, accept.decode("latin-1"))
            except Exception:
                log.exception("llhls fast lane failed path=%r (the request goes the ordinary way)", self.url[:200])
                return False
            if result is None:
                return False
            self._kiln_fast = True
            head = method == b"HEAD"
            keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
            if not hasattr(result, "retry"):
                self._write(result, head, keep_alive)
                self.on_response_complete()
                return True
            waiting = _Waiting()
            self.cycle = waiting
            self.flow.pause_reading()
            timer: list[asyncio.TimerHandle] = []

            def finish(answer: FastAnswerLike) -> None:
                if timer:
                    timer[0].cancel()
                if waiting.response_complete:
                    return
                waiting.response_complete = True
                if self.transport.is_closing():
                    return
                # uvicorn's shutdown() sets keep_alive False on a pending cycle: answer, then close
                self._write(answer, head, keep_alive and waiting.keep_alive and not waiting.disconnected)
                self.on_response_complete()

            def changed() -> None:
                if waiting.response_complete or self.transport.is_closing():
                    if timer:
                        timer[0].cancel()
                    return
                try:
                    answer = result.retry()
                except Exception:
                    log.exception("llhls fast lane failed path=%r", self.url[:200])
                    self.transport.close()
                    return
                if answer is None:
                    result.on_next_change(changed)
                else:
                    finish(answer)

            timer.append(self.loop.call_later(result.timeout, lambda: None if waiting.response_complete
                                              else finish(result.give_up())))
            result.on_next_change(changed)
            return True

        def _write(self, answer: FastAnswerLike, head: bool, keep_alive: bool) -> None:
            out: list[bytes | memoryview] = [STATUS_LINE[answer.status]]
            for name, value in self.server_state.default_headers:
                out += [name, b": ", value, b"\r\n"]
            for name, value in answer.headers:
                out += [name, b": ", value, b"\r\n"]
            out += [b"content-length: ", str(len(answer.body)).encode(), b"\r\n"]
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
            body = answer.body
            if head or not body:
                self.transport.write(b"".join(out))
            elif len(body) <= 16384:
                out.append(body)
                self.transport.write(b"".join(out))
            else:  # a large body is handed over as is, not copied into the head
                self.transport.write(b"".join(out))
                self.transport.write(body)
            if not keep_alive:
                self.transport.close()

    MediaHttpProtocol.__name__ = f"MediaHttpProtocol[{listener}]"
    return MediaHttpProtocol
