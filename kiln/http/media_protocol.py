"""The player ports' HTTP/1.1 protocol: uvicorn's httptools protocol with a fast lane for live LL-HLS files.

Why not plain uvicorn + Starlette: with 1,000 low-latency viewers every part brings a burst of about
2,000 requests (a blocking reload and a part GET per viewer) that must all be answered within 100 ms.
uvicorn's ASGI cycle (a task, an Event and coroutines per request) plus Starlette's routing and Request
objects cost more than the bytes did: 2,000-2,500 req/s for a part or a chunklist on this project's 2-core
machine (bench/llhls.py (d)). Here, once a GET/HEAD is read, the player router's ``fast(...)`` (LlhlsServer.fast)
is asked first (a lone player request that arrives whole in one read is matched by one regex, ``_express``, not
fed to httptools: its callbacks and uvicorn's were most of a small answer's Python); it answers only what it can
answer with the same bytes and headers as the Starlette path (a live chunklist, part, in-memory segment or init),
and returns None for everything else: masters, WebSocket upgrades, WHEP, HLS v3, CORS preflights, admission, every
refusal and every error go on to uvicorn's ASGI cycle and the Starlette app unchanged, on the same
connection. A blocked request (``_HLS_msn``/``_HLS_part``, a hinted part) waits as a plain callback in its
track's list (LlhlsStream.on_part_of), so a new part wakes its waiters with one loop callback and no task
each; its hold is a bucket entry swept by one timer per listener (``_Holds``), and the keep-alive timeout one
timer per idle spell (``_fast_done``), not a timer armed and cancelled per request. An answer is one write:
its header lines are rendered once per form (LlhlsServer), and its whole header block (status line, uvicorn's
default headers, those lines, length, keep-alive) once per second per form and length, shared by every answer
alike (a part's thousand GETs in one burst).

Order on a connection is kept: the fast lane is taken only when no other answer is pending; while a
blocked fast request waits, later requests queue behind it in uvicorn's pipeline. The slowloris guard
(connection_limits.py) applies as on the other ports; request headers are bounded here (httptools has
no bound of its own, unlike h11): beyond ``max_header_bytes`` the answer is 431 and the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from kiln.config.limits import ConnectionLimits
from kiln.http.answer_lateness import AnswerLateness
from kiln.http.connection_limits import guarded_protocol

log = logging.getLogger(__name__)


class FastAnswerLike(Protocol):
    status: int
    body: bytes | memoryview
    head: bytes  # the answer's header lines, without Content-Length and the server's default headers
    ready: float  # time.monotonic() the part this answer is tied to became available (0: none; answer_lateness.py)
    reload: bool  # tied to a part as a blocked reload woken by it (else as its GET)


class FastLane(Protocol):
    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None, acrh: str | None,
             accept_encoding: str) -> Any:
        """A FastAnswerLike, a wait (``on_next_change``, ``retry``, ``give_up``, ``timeout``), or None."""


class _Nothing:
    def set(self) -> None:
        pass


_NOTHING = _Nothing()
_TOO_BIG = b"request headers are too large"


class _Blocked:
    """One blocked fast request: answered at the change that settles it (``changed``, registered again while
    it does not) or by its give-up answer at the end of its hold (``expire``). It also stands in uvicorn's
    ``self.cycle`` while it waits, so later requests queue behind it (uvicorn's shutdown clears ``keep_alive``,
    connection_lost sets ``disconnected``). One object, not closures: a closure registering itself is a
    reference cycle, and two thousand of them per part kept the cyclic garbage collector busy."""

    __slots__ = ("protocol", "result", "head", "keep_alive", "url", "response_complete", "disconnected", "more_body",
                 "body")
    message_event = _NOTHING

    def __init__(self, protocol: Any, result: Any, head: bool, keep_alive: bool) -> None:
        self.protocol = protocol
        self.result = result
        self.head = head
        self.keep_alive = keep_alive
        self.url = protocol.url
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.body = b""

    def finish(self, answer: FastAnswerLike) -> None:
        protocol = self.protocol
        if self.response_complete:
            return
        self.response_complete = True
        if protocol.transport.is_closing():
            return
        # uvicorn's shutdown() sets keep_alive False on a pending cycle: answer, then close
        protocol._write(answer, self.head, self.keep_alive and not self.disconnected)
        protocol._fast_done()

    def changed(self) -> None:
        if self.response_complete or self.protocol.transport.is_closing():
            return
        try:
            answer = self.result.retry()
        except Exception:
            log.exception("llhls fast lane failed path=%r", self.url[:200])
            self.protocol.transport.close()
            return
        if answer is None:
            self.result.on_next_change(self.changed)
        else:
            self.finish(answer)

    def expire(self) -> None:
        if not self.response_complete:
            self.finish(self.result.give_up())


HOLD_GRAIN = 0.25  # seconds: how late a blocked request's hold may end (holds are seconds long)


class _Holds:
    """The holds of a listener's blocked requests, in quarter-second buckets swept by one timer: a thousand
    blocked reloads at a part boundary cost a list append each, not a timer armed and cancelled each."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[Callable[[], None]]] = {}
        self.timer: Any = None
        self.loop: Any = None  # the loop the timer runs on (a listener serves on one)

    def add(self, loop: asyncio.AbstractEventLoop, delay: float, expire: Callable[[], None]) -> None:
        """Call ``expire`` once ``delay`` seconds have passed (up to HOLD_GRAIN later); it must do nothing for a
        request answered meanwhile."""
        self.buckets.setdefault(math.ceil((loop.time() + delay) / HOLD_GRAIN), []).append(expire)
        if self.timer is None or self.loop is not loop:
            self.loop = loop
            self.timer = loop.call_later(HOLD_GRAIN, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self.loop:
            return  # a timer of a loop this listener no longer serves on
        self.timer = None
        now = loop.time() / HOLD_GRAIN
        for slot in [slot for slot in self.buckets if slot <= now]:
            for expire in self.buckets.pop(slot):
                try:
                    expire()
                except Exception:
                    log.exception("llhls fast lane hold expiry failed")
        if self.buckets:
            self.timer = loop.call_later(HOLD_GRAIN, self._sweep, loop)


# One whole GET/HEAD as players send it, alone in one read: an origin-form target of visible ASCII (no fragment),
# HTTP/1.1, header lines of a token name and a visible-ASCII value, no body. What it matches is parsed here
# (``_express``); anything else (obs-text, folded lines, pipelined or partial requests) goes to httptools.
_EXPRESS = re.compile(rb"(GET|HEAD) (/[!-\"$-~]*) HTTP/1\.1\r\n((?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t -~]*\r\n)*)\r\n")
# headers that change how the request is read or answered beyond the lane's arguments: httptools' business
_NOT_EXPRESS = frozenset((b"content-length", b"transfer-encoding", b"upgrade", b"expect"))


def _header_block(status: int, defaults: list[tuple[bytes, bytes]], head: bytes, size: int, keep_alive: bool) -> bytes:
    """An answer's header block: status line, uvicorn's default headers, the answer's lines, Content-Length,
    Connection when it closes, the empty line."""
    return b"".join((STATUS_LINE[status], *(name + b": " + value + b"\r\n" for name, value in defaults), head,
                     b"content-length: %d\r\n\r\n" % size if keep_alive
                     else b"content-length: %d\r\nconnection: close\r\n\r\n" % size))


def media_protocol(limits: ConnectionLimits, listener: str, lane: FastLane | None,
                   too_big: tuple[bytes, bytes] = (b"content-type: text/plain; charset=utf-8\r\n", _TOO_BIG),
                   ) -> type[Any]:
    """The protocol class for one player listener (``lane`` None: the guard and the header bound only).
    ``too_big``: the 431's header lines and body (the API answers it in OME's envelope: api_protocol.py)."""
    guarded = guarded_protocol(limits, listener, HttpToolsProtocol)
    max_head = limits.max_header_bytes
    too_big_head, too_big_body = too_big
    # [uvicorn's default headers the blocks were built with, {(status, head, length, keep-alive): header block}]
    heads: list[Any] = [None, {}]
    holds = _Holds()
    lateness = AnswerLateness(listener) if lane is not None else None

    class MediaHttpProtocol(guarded):  # type: ignore[valid-type,misc]
        answer_lateness = lateness  # the listener's figures (tests read them)
        _kiln_seen = False  # a request has begun on this connection
        _kiln_in_head = False  # a request's headers are arriving
        _kiln_head_bytes = 0
        _kiln_raw = 0
        _kiln_too_big = False
        _kiln_fast = False  # the current message is answered by the fast lane
        _kiln_mid = False  # httptools is inside a message (from its first byte to its end, body included)
        _kiln_idle_timer: asyncio.TimerHandle | None = None
        _kiln_idle_since = 0.0

        def _waiting_for_headers(self) -> bool:
            """For the guard: nothing asked yet, or a request's headers begun and not complete (an idle
            keep-alive connection is uvicorn's keep-alive timeout's business, as on the h11 ports)."""
            return (not self._kiln_seen or self._kiln_in_head) and not self.transport.is_closing()

        def data_received(self, data: bytes) -> None:
            if lane is not None and not self._kiln_mid and data[-4:] == b"\r\n\r\n" and len(data) <= max_head \
                    and (self.cycle is None or self.cycle.response_complete) and not self.pipeline \
                    and self._express(data):
                return
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
            # uvicorn's on_message_begin without its ASGI scope (three dicts and a copy per request, garbage the
            # cyclic collector then walks): built in on_headers_complete only for what the fast lane leaves
            self.url = b""
            self.expect_100_continue = False
            self.headers: list[tuple[bytes, bytes]] = []
            self._kiln_seen = self._kiln_in_head = self._kiln_mid = True
            self._kiln_head_bytes = 0
            self._kiln_fast = False

        def on_url(self, url: bytes) -> None:
            self.url += url  # uvicorn's on_url, and the count: one Python call per parser callback
            self._count(len(url))

        def on_header(self, name: bytes, value: bytes) -> None:
            self._kiln_head_bytes += len(name) + len(value) + 4
            if self._kiln_head_bytes > max_head:
                self._kiln_too_big = True
            # uvicorn's on_header, inlined (three calls per header were a visible share of a fast answer)
            name = name.lower()
            value = value.rstrip(b" \t")
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

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
            self.scope = {  # uvicorn's on_message_begin's scope, for the ASGI path
                "type": "http",
                "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
                "http_version": "1.1",
                "server": self.server,
                "client": self.client,
                "scheme": self.scheme,
                "root_path": self.root_path,
                "headers": self.headers,
                "state": self.app_state.copy(),
            }
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._kiln_fast and not self._kiln_too_big:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._kiln_mid = False
            if not self._kiln_fast and not self._kiln_too_big:
                super().on_message_complete()

        def _express(self, data: bytes) -> bool:
            """A lone player GET/HEAD answered without httptools and uvicorn's callbacks (a dozen Python calls
            per request, most of a small answer's cost): the request is matched whole (``_EXPRESS``), its few
            headers read, and the lane asked as ``_fast`` does. False (nothing changed: the bytes then go to
            httptools) for anything else, or when the lane leaves the request to the Starlette path."""
            match = _EXPRESS.fullmatch(data)
            if match is None or self.transport.is_closing():
                return False
            method, target, lines = match.groups()
            host = origin = acrh = None
            accept = b""
            keep_alive = True
            for line in lines.split(b"\r\n")[:-1]:
                name, _, value = line.partition(b":")
                name = name.lower()
                value = value.strip(b" \t")
                if name == b"host":
                    host = value
                elif name == b"accept-encoding":
                    accept = value
                elif name == b"origin":
                    origin = value
                elif name == b"access-control-request-headers":
                    acrh = value
                elif name == b"connection":
                    token = value.lower()
                    if token == b"close":
                        keep_alive = False
                    elif token != b"keep-alive":
                        return False
                elif name in _NOT_EXPRESS:
                    return False
            path, _, query = target.partition(b"?")
            if self.timeout_keep_alive_task is not None:  # what uvicorn's and the guard's data_received do
                self._unset_keepalive_if_required()
            if self._kiln_deadline is not None:
                self._disarm()
            self.url = target
            if not self._lane(method == b"HEAD", path, query, host, origin, acrh, accept, keep_alive):
                return False
            self._kiln_seen = True
            return True

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
            target = self.url
            try:
                if target[:1] == b"/" and b"#" not in target:  # origin-form, what players send: no URL object
                    path, _, query = target.partition(b"?")
                else:
                    url = httptools.parse_url(target)
                    path, query = url.path, url.query or b""
            except Exception:
                log.exception("llhls fast lane failed path=%r (the request goes the ordinary way)", self.url[:200])
                return False
            keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
            if not self._lane(method == b"HEAD", path, query, host, origin, acrh, accept, keep_alive):
                return False
            self._kiln_fast = True
            return True

        def _lane(self, head: bool, path: bytes, query: bytes, host: bytes | None, origin: bytes | None,
                  acrh: bytes | None, accept: bytes, keep_alive: bool) -> bool:
            """Ask the lane; answer what it answers now, or hold the request until it settles (False: the lane
            left it to the Starlette path)."""
            try:
                result = lane.fast("HEAD" if head else "GET", path, query,  # type: ignore[union-attr]
                                   host.decode("latin-1") if host is not None else "",
                                   origin.decode("latin-1") if origin is not None else None,
                                   acrh.decode("latin-1") if acrh is not None else None, accept.decode("latin-1"))
            except Exception:
                log.exception("llhls fast lane failed path=%r (the request goes the ordinary way)", self.url[:200])
                return False
            if result is None:
                return False
            if not hasattr(result, "retry"):
                self._write(result, head, keep_alive)
                self._fast_done()
                return True
            blocked = _Blocked(self, result, head, keep_alive)
            self.cycle = blocked  # what follows is queued in uvicorn's pipeline (which pauses reading)
            holds.add(self.loop, result.timeout, blocked.expire)
            result.on_next_change(blocked.changed)
            return True

        def _fast_done(self) -> None:
            """uvicorn's on_response_complete, but the keep-alive timeout is one timer per idle spell, not one
            armed and cancelled per answer: it checks, when it fires, how long the connection has been idle."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            if self.timeout_keep_alive_task is not None:  # (uvicorn's calls, only when they have work)
                self._unset_keepalive_if_required()
            if self.flow.read_paused:
                self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self._kiln_idle_since = self.loop.time()
            if self._kiln_idle_timer is None:
                self._kiln_idle_timer = self.loop.call_later(self.timeout_keep_alive, self._kiln_idle_check)

        def _kiln_idle_check(self) -> None:
            self._kiln_idle_timer = None
            if self.transport.is_closing() or self._kiln_in_head or self.pipeline \
                    or not (self.cycle is None or self.cycle.response_complete) \
                    or self.timeout_keep_alive_task is not None:
                # busy: the answer that ends it arms a timer again (a header deadline is the guard's); or
                # uvicorn's own timer runs, armed by a later answer of the Starlette path
                return
            left = self._kiln_idle_since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self._kiln_idle_timer = self.loop.call_later(left, self._kiln_idle_check)
            else:
                self.timeout_keep_alive_handler()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._kiln_idle_timer is not None:
                self._kiln_idle_timer.cancel()
                self._kiln_idle_timer = None
            super().connection_lost(exc)

        def _write(self, answer: FastAnswerLike, head: bool, keep_alive: bool) -> None:
            """One write (one send) per answer. Its whole header block (status line, uvicorn's default headers,
            the answer's lines, Content-Length, Connection) is built once per second (uvicorn renews its Date
            header each second) per status, form of answer, length and keep-alive, and shared by every answer
            alike: a thousand viewers GETting a part in one burst cost a dict lookup each, not four joins."""
            defaults = self.server_state.default_headers
            body = answer.body
            size = len(body)
            if heads[0] is not defaults:
                heads[0] = defaults
                heads[1] = {}
            key = (answer.status, answer.head, size, keep_alive)
            block = heads[1].get(key)
            if block is None:
                block = _header_block(answer.status, defaults, answer.head, size, keep_alive)
                if len(heads[1]) >= 4096:  # one second's forms and lengths: bounded all the same
                    heads[1] = {}
                heads[1][key] = block
            if head or not size:
                self.transport.write(block)
            elif size <= 16384:
                self.transport.write(block + body)
            else:  # a large body is handed over as is, not copied into the head: one writev
                self.transport.writelines((block, body))
            if answer.ready and lateness is not None and not head:
                lateness.sent(self.loop, self.transport, answer.ready, answer.reload)
            if not keep_alive:
                self.transport.close()

    MediaHttpProtocol.__name__ = f"MediaHttpProtocol[{listener}]"
    return MediaHttpProtocol
