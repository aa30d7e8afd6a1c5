"""Kiln's own side of a viewer's lateness (kiln/http/answer_lateness.py): a part-tied answer is timed from its
part's availability to its last byte handed to the kernel, at the write or when its buffer drains, and the
listener logs the quantiles per window."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from kiln.http.answer_lateness import WINDOW_S, AnswerLateness
from tests.unit.http.test_media_protocol_keepalive import Answer, FakeLoop, Lane, connection, get


class Socket:
    """A transport whose write buffer holds ``pending`` bytes the kernel has not taken yet."""

    def __init__(self, pending: int = 0) -> None:
        self.pending = pending
        self.closing = False

    def get_write_buffer_size(self) -> int:
        return self.pending

    def is_closing(self) -> bool:
        return self.closing


def test_an_answer_the_socket_takes_at_once_is_timed_at_its_write() -> None:
    figures = AnswerLateness("llhls")
    figures.sent(FakeLoop(), Socket(), time.monotonic() - 0.052, reload=False)  # type: ignore[arg-type]
    figures.sent(FakeLoop(), Socket(), time.monotonic() - 0.003, reload=True)  # type: ignore[arg-type]
    assert (figures.parts.count, figures.reloads.count) == (1, 1)
    assert 52 <= figures.parts.quantile(0.5) <= 55  # the 5 ms bucket that holds 52 ms
    assert 3 <= figures.reloads.quantile(0.5) <= 5
    assert figures.buffered == 0


def test_an_answer_left_in_the_write_buffer_is_timed_when_it_drains() -> None:
    loop, figures, socket = FakeLoop(), AnswerLateness("llhls"), Socket(pending=150_000)
    figures.sent(loop, socket, time.monotonic(), reload=False)  # type: ignore[arg-type]
    assert figures.buffered == 1 and figures.parts.count == 0
    loop.advance(0.01)
    assert figures.parts.count == 0, "still in the buffer: not handed to the kernel yet"
    socket.pending = 0
    loop.advance(0.02)
    assert figures.parts.count == 1
    assert not [h for h in loop.timers if not h.cancelled], "no timer left once nothing drains"


def test_an_answer_whose_connection_closed_before_it_drained_is_not_counted() -> None:
    loop, figures, socket = FakeLoop(), AnswerLateness("llhls"), Socket(pending=10)
    figures.sent(loop, socket, time.monotonic(), reload=True)  # type: ignore[arg-type]
    socket.closing = True
    loop.advance(0.01)
    assert figures.reloads.count == 0 and not [h for h in loop.timers if not h.cancelled]


def test_each_window_is_logged_with_its_quantiles_then_starts_again(caplog: pytest.LogCaptureFixture) -> None:
    figures = AnswerLateness("llhls")
    figures._start -= WINDOW_S  # the window's time has passed: the next answer logs it
    with caplog.at_level(logging.INFO, logger="kiln.http.answer_lateness"):
        figures.sent(FakeLoop(), Socket(), time.monotonic() - 0.12, reload=False)  # type: ignore[arg-type]
    [line] = [r.getMessage() for r in caplog.records]
    assert "llhls answer lateness window listener=llhls" in line
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    assert (fields["parts"], fields["reloads"]) == ("1", "0")
    assert 120 <= float(fields["part_ms_p99"]) <= 130
    assert figures.parts.count == 0, "a new window"


class TiedLane(Lane):
    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def fast(self, *args: Any) -> Any:
        return self.answer


def test_the_player_port_times_the_answers_tied_to_a_part_and_only_those() -> None:
    ready = time.monotonic() - 0.02
    tied = TiedLane(Answer(ready=ready))
    protocol, transport = connection(FakeLoop(), tied)
    transport.get_write_buffer_size = lambda: 0  # type: ignore[attr-defined]
    get(protocol, "/app/s/part_1_0_0_video_k_llhls.m4s")
    protocol.data_received(b"HEAD /app/s/part_1_0_0_video_k_llhls.m4s HTTP/1.1\r\nHost: kiln\r\n\r\n")
    assert transport.written.count(b"HTTP/1.1 200 OK") == 2
    figures = type(protocol).answer_lateness
    assert figures.parts.count == 1, "the GET, not the HEAD (no body was sent)"
    tied.answer = Answer()  # not tied to a part (a master, a chunklist answered at once)
    get(protocol, "/app/s/chunklist_1_video_k_llhls.m3u8")
    assert figures.parts.count == 1 and figures.reloads.count == 0
