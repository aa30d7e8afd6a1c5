"""The binding itself, between two real libsrt sockets on 127.0.0.1: options, addresses, data, errors."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator

import pytest

from kiln.media.net.srt import abi
from kiln.media.net.srt.abi import SockOpt, SockStatus
from kiln.media.net.srt.epoll import EPOLL_ERR, EPOLL_IN, SrtEpoll
from kiln.media.net.srt.errors import ErrorCode, SrtError
from kiln.media.net.srt.listener import SrtListener
from kiln.media.net.srt.socket import SrtSocket

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair() -> Iterator[tuple[SrtSocket, SrtSocket, SrtSocket]]:
    """(listening socket, caller, accepted socket), connected with a streamid and a 150 ms latency."""
    listening = SrtSocket()
    listening.set_options({"SRTO_LATENCY": "150", "SRTO_MAXBW": "100000000"})
    listening.bind("127.0.0.1", 0)
    listening.listen()
    caller = SrtSocket()
    caller.set_str(SockOpt.STREAMID, "#!::u=default/app/sock,m=publish")
    caller.connect("127.0.0.1", listening.sockname[1])
    accepted, _ = listening.accept()
    yield listening, caller, accepted
    for sock in (accepted, caller, listening):
        sock.close()


def test_options_addresses_and_state(pair: tuple[SrtSocket, SrtSocket, SrtSocket]) -> None:
    listening, caller, accepted = pair
    assert listening.state == SockStatus.LISTENING
    assert caller.state == accepted.state == SockStatus.CONNECTED
    assert accepted.streamid == "#!::u=default/app/sock,m=publish"
    assert accepted.peername == caller.sockname
    assert caller.peername == listening.sockname == ("127.0.0.1", listening.sockname[1])
    assert accepted.get_int(SockOpt.RCVLATENCY) == 150  # inherited from the listening socket
    assert caller.get_int(SockOpt.PEERLATENCY) == 150  # negotiated: the receiver's latency
    assert accepted.get_int64(SockOpt.MAXBW) == 100_000_000
    assert accepted.get_bool(SockOpt.TLPKTDROP) is True
    assert accepted.get_int(SockOpt.PAYLOADSIZE) == abi.LIVE_PAYLOAD_SIZE


def test_messages_keep_their_boundaries(pair: tuple[SrtSocket, SrtSocket, SrtSocket]) -> None:
    _, caller, accepted = pair
    accepted.set_int(SockOpt.RCVTIMEO, 3000)
    sent = [bytes([i]) * size for i, size in enumerate((1316, 188, 1000))]
    for message in sent:
        assert caller.send(message) == len(message)
    assert [accepted.recv() for _ in sent] == sent


def test_receive_timeout_and_oversized_message(pair: tuple[SrtSocket, SrtSocket, SrtSocket]) -> None:
    _, caller, accepted = pair
    accepted.set_int(SockOpt.RCVTIMEO, 200)
    started = time.monotonic()
    with pytest.raises(SrtError) as caught:
        accepted.recv()
    assert caught.value.code == ErrorCode.ETIMEOUT and 0.15 < time.monotonic() - started < 2
    with pytest.raises(SrtError) as too_big:
        caller.send(b"x" * 1500)
    assert too_big.value.code == ErrorCode.EINVALMSGAPI  # libsrt's answer in live mode, not ELARGEMSG


def test_epoll_reports_readable_and_broken(pair: tuple[SrtSocket, SrtSocket, SrtSocket]) -> None:
    _, caller, accepted = pair
    accepted.set_blocking(False)
    with SrtEpoll() as epoll:
        epoll.add(accepted.handle, EPOLL_IN | EPOLL_ERR)
        assert epoll.wait(50) == []
        assert accepted.try_recv() is None
        caller.send(b"\x47" * 188)
        deadline = time.monotonic() + 5
        ready: list[tuple[int, int]] = []
        while not ready and time.monotonic() < deadline:
            ready = epoll.wait(100)
        assert ready and ready[0][0] == accepted.handle and ready[0][1] & EPOLL_IN
        assert accepted.try_recv() == b"\x47" * 188
        caller.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(ev & EPOLL_ERR for _, ev in epoll.wait(100)):
            pass
        with pytest.raises(SrtError) as caught:
            accepted.try_recv()
        assert caught.value.code == ErrorCode.ECONNLOST


def test_close_is_idempotent_and_later_calls_fail_cleanly() -> None:
    sock = SrtSocket()
    sock.close()
    sock.close()
    assert sock.closed
    with pytest.raises(SrtError) as caught:
        sock.set_int(SockOpt.LATENCY, 10)
    assert caught.value.code == ErrorCode.EINVSOCK and "set SRTO_LATENCY" in str(caught.value)


def test_a_port_taken_by_another_srt_listener() -> None:
    with SrtListener("127.0.0.1", 0, on_accept=lambda s, p: None) as first:
        second = SrtListener("127.0.0.1", first.port, on_accept=lambda s, p: None)
        with pytest.raises(SrtError) as caught:
            second.start()
    assert caught.value.errno == errno.EADDRINUSE and caught.value.code == ErrorCode.EDUPLISTEN
    assert str(caught.value).startswith(f"srt listener 127.0.0.1:{first.port}: listen: ")
    assert "already listening on the same port" in str(caught.value)


def test_a_port_taken_by_a_plain_udp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        with pytest.raises(SrtError) as caught:
            SrtListener("127.0.0.1", port, on_accept=lambda s, p: None).start()
    assert caught.value.errno == errno.EADDRINUSE and caught.value.code == ErrorCode.ESOCKFAIL
    assert f"bind 127.0.0.1:{port}" in str(caught.value)


def test_stats_of_a_short_exchange(pair: tuple[SrtSocket, SrtSocket, SrtSocket]) -> None:
    _, caller, accepted = pair
    accepted.set_int(SockOpt.RCVTIMEO, 3000)
    for _ in range(10):
        caller.send(b"\x47" * 1316)
    for _ in range(10):
        accepted.recv()
    received = accepted.stats()
    assert received.packets_received_unique == 10
    assert received.bytes_received_unique == 10 * (1316 + 44)
    assert received.receive_tsbpd_delay_ms == 150
    assert received.elapsed_ms >= 0 and received.rtt_ms >= 0
