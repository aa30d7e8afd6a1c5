"""The player port's fast lane keeps uvicorn's keep-alive timeout (an idle connection closes after
``timeout_keep_alive`` seconds) with one timer per idle spell instead of one armed and cancelled per answer
(kiln/http/media_protocol.py ``_fast_done``); a connection with a request still waiting is not idle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from kiln.config.limits import ConnectionLimits
from kiln.http.media_protocol import media_protocol
from tests.unit.http.fake_transport import RecordingTransport, connect

KEEP_ALIVE = 30.0


class Handle:
    def __init__(self, loop: FakeLoop, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.loop, self.when, self.callback, self.args = loop, when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """The loop the protocol is given: a clock moved by hand, timers run when it passes them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Handle] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(self, self.now + delay, callback, args)
        self.timers.append(handle)
        return handle

    def armed(self, name: str) -> list[Handle]:
        return [h for h in self.timers if not h.cancelled and getattr(h.callback, "__name__", "") == name]

    def advance(self, to: float) -> None:
        self.now = to
        for handle in sorted(self.timers, key=lambda h: h.when):
            if not handle.cancelled and handle.when <= to:
                handle.cancelled = True
                handle.callback(*handle.args)




@dataclass
class Answer:
    status: int = 200
    body: bytes = b"part"
    head: bytes = b"content-type: video/mp4\r\n"
    ready: float = 0.0
    reload: bool = False


GIVE_UP = Answer(body=b"gave up")


@dataclass
class Wait:
    """A blocked request: answered when ``wake`` is called."""

    on_next_change: Callable[[Callable[[], None]], None]
    retry: Callable[[], Answer | None]
    give_up: Callable[[], Answer]
    timeout: float


class Lane:
    def __init__(self, hold: float = 100.0) -> None:
        self.wakers: list[Callable[[], None]] = []
        self.ready = False
        self.hold = hold

    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None, acrh: str | None,
             accept_encoding: str) -> Any:
        if raw_path.startswith(b"/blocked"):
            return Wait(self.wakers.append, lambda: Answer() if self.ready else None, lambda: GIVE_UP, self.hold)
        return Answer()


def connection(loop: FakeLoop, lane: Lane, protocol_class: Any = None) -> tuple[Any, RecordingTransport]:
    """A connection of a listener whose protocol class is ``protocol_class`` (one per listener, as in the server)."""
    protocol_class = protocol_class or media_protocol(ConnectionLimits(), "llhls", lane)
    return connect(protocol_class, Starlette(), loop=loop, timeout_keep_alive=int(KEEP_ALIVE))


def get(protocol: Any, path: str) -> None:
    protocol.data_received(f"GET {path} HTTP/1.1\r\nHost: kiln\r\n\r\n".encode())


def test_an_idle_connection_closes_after_the_keep_alive_timeout_counted_from_its_last_answer() -> None:
    loop, lane = FakeLoop(), Lane()
    protocol, transport = connection(loop, lane)
    for second in range(20):  # a player's requests: one timer for the whole spell, not one per answer
        loop.advance(second)
        get(protocol, "/app/s/part_1_0_0_video_k_llhls.m4s")
    assert transport.written.count(b"HTTP/1.1 200 OK") == 20
    assert len(loop.armed("_kiln_idle_check")) == 1
    assert len(loop.timers) < 20, "no timer armed and cancelled per answer"
    loop.advance(KEEP_ALIVE + 1)  # the first timer fires 11 s after the last answer: not idle long enough
    assert not transport.closing
    loop.advance(19 + KEEP_ALIVE - 0.5)
    assert not transport.closing
    loop.advance(19 + KEEP_ALIVE + 0.01)
    assert transport.closing, "idle for the keep-alive timeout after its last answer: closed"
    protocol.connection_lost(None)


def test_a_connection_whose_request_waits_is_not_idle() -> None:
    loop, lane = FakeLoop(), Lane()
    protocol, transport = connection(loop, lane)
    get(protocol, "/app/s/part_1_0_0_video_k_llhls.m4s")
    loop.advance(10)
    get(protocol, "/blocked")  # waits (its hold, 100 s, is longer than the keep-alive timeout)
    loop.advance(KEEP_ALIVE + 5)
    assert not transport.closing, "a request is waiting: the connection is busy, not idle"
    lane.ready = True
    for wake in lane.wakers:
        wake()
    assert transport.written.count(b"HTTP/1.1 200 OK") == 2
    loop.advance(KEEP_ALIVE + 5 + KEEP_ALIVE - 1)
    assert not transport.closing
    loop.advance(KEEP_ALIVE + 5 + KEEP_ALIVE + 0.01)
    assert transport.closing
    protocol.connection_lost(None)


def test_a_closed_connection_leaves_no_keep_alive_timer() -> None:
    loop, lane = FakeLoop(), Lane()
    protocol, transport = connection(loop, lane)
    get(protocol, "/app/s/part_1_0_0_video_k_llhls.m4s")
    assert loop.armed("_kiln_idle_check")
    transport.closing = True
    protocol.connection_lost(None)
    assert not loop.armed("_kiln_idle_check")


def test_blocked_requests_are_given_up_after_their_hold_by_one_sweeping_timer() -> None:
    loop, lane = FakeLoop(), Lane(hold=6.0)
    listener = media_protocol(ConnectionLimits(), "llhls", lane)
    connections = [connection(loop, lane, listener) for _ in range(50)]
    for protocol, _transport in connections:
        get(protocol, "/blocked")
    assert len([h for h in loop.timers if getattr(h.callback, "__name__", "") == "_sweep"]) == 1, \
        "one timer for the holds of every blocked request, not one each"
    step = 0.0
    while step < 5.9:  # not before the hold
        step += 0.1
        loop.advance(step)
    assert not any(t.written for _p, t in connections)
    lane.ready = True
    lane.wakers.pop()()  # one is answered by its part in time
    while step < 6.5:
        step += 0.1
        loop.advance(step)
    answers = [bytes(t.written) for _p, t in connections]
    assert sum(a.endswith(b"\r\n\r\ngave up") for a in answers) == 49, "the others: the give-up answer"
    assert sum(a.endswith(b"\r\n\r\npart") for a in answers) == 1
    assert all(a.count(b"HTTP/1.1 200 OK") == 1 for a in answers), "each answered once"
    for protocol, _transport in connections:
        protocol.connection_lost(None)
