"""SrtListener's handshake decision: which rejection code a caller gets for each policy answer.

The handshake handler is called directly with a made-up socket id, as libsrt's listen callback
would; ``libsrt.setrejectreason`` is replaced by a recorder so no library call or socket is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kiln.media.net.srt import libsrt
from kiln.media.net.srt.errors import RejectCode, SrtRejected
from kiln.media.net.srt.listener import SrtListener
from kiln.media.net.srt.streamid import StreamIdError

PEER = ("192.0.2.7", 40000)


class Receiver:
    def __init__(self) -> None:
        self.closed: list[str] = []

    def on_data(self, data: bytes) -> None:
        raise AssertionError("no data in these tests")

    def on_close(self, reason: str) -> None:
        self.closed.append(reason)


@pytest.fixture
def rejections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    recorded: list[tuple[int, int]] = []
    monkeypatch.setattr(libsrt, "setrejectreason", lambda sock, code: recorded.append((sock, code)))
    yield recorded


def listener(policy: object) -> SrtListener:
    return SrtListener("127.0.0.1", 0, on_accept=policy)  # type: ignore[arg-type]


def test_accepting_policy_records_a_pending_caller(rejections: list[tuple[int, int]]) -> None:
    receiver = Receiver()
    seen: list[tuple[str, tuple[str, int]]] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Receiver:
        seen.append((streamid, peer))
        return receiver

    lst = listener(policy)
    assert lst._on_handshake(101, PEER, b"default/app/stream") is True
    assert seen == [("default/app/stream", PEER)]
    assert lst._pending[101].receiver is receiver and rejections == []


@pytest.mark.parametrize(("answer", "code"), [
    (None, RejectCode.FORBIDDEN),
    (SrtRejected(RejectCode.NOT_FOUND, "no such app"), RejectCode.NOT_FOUND),
    (SrtRejected(2001, "custom"), 2001),
    (StreamIdError("bad streamid"), RejectCode.BAD_REQUEST),
    (RuntimeError("bug"), RejectCode.INTERNAL),
])
def test_refusals_carry_a_code(answer: object, code: int, rejections: list[tuple[int, int]],
                               caplog: pytest.LogCaptureFixture) -> None:
    def policy(streamid: str, peer: tuple[str, int]) -> None:
        if isinstance(answer, BaseException):
            raise answer
        return None

    lst = listener(policy)
    with caplog.at_level(logging.INFO, logger="kiln.media.net.srt.listener"):
        assert lst._on_handshake(202, PEER, b"default/app/stream") is False
    assert rejections == [(202, code)]
    assert lst._pending == {}
    assert f"srt caller rejected port=0 peer=192.0.2.7:40000 streamid='default/app/stream' code={code}" in caplog.text


def test_non_utf8_streamid_is_a_bad_request(rejections: list[tuple[int, int]]) -> None:
    called: list[str] = []
    lst = listener(lambda streamid, peer: called.append(streamid))
    assert lst._on_handshake(303, PEER, b"\xff\xfe") is False
    assert rejections == [(303, RejectCode.BAD_REQUEST)] and called == []


def test_closed_listener_refuses_without_asking_the_policy(rejections: list[tuple[int, int]]) -> None:
    called: list[str] = []
    lst = listener(lambda streamid, peer: called.append(streamid))
    lst.close()
    assert lst._on_handshake(404, PEER, b"default/app/stream") is False
    assert rejections == [(404, RejectCode.DOWN)] and called == []


def test_listener_closing_during_the_policy_gets_the_receiver_closed(rejections: list[tuple[int, int]]) -> None:
    receiver = Receiver()
    holder: list[SrtListener] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Receiver:
        holder[0].close()
        return receiver

    lst = listener(policy)
    holder.append(lst)
    assert lst._on_handshake(505, PEER, b"default/app/stream") is False
    assert receiver.closed == ["listener closed"]
    assert rejections == [(505, RejectCode.DOWN)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"options": {"SRTO_NOPE": "1"}}, "no such SRT option"),
    ({"options": {"SRTO_RCVSYN": "0"}}, "blocking mode"),
    ({"passphrase": "short"}, "SRTO_PASSPHRASE: a passphrase must be 10 to 79"),
    ({"latency_ms": -1}, "SRTO_LATENCY: must not be negative"),
])
def test_bad_settings_fail_at_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SrtListener("127.0.0.1", 0, on_accept=lambda s, p: None, **kwargs)  # type: ignore[arg-type]
