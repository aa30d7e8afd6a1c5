"""SrtSender against real SRT listeners: srt-live-transmit, ffmpeg, and Kiln's own SrtListener."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from kiln.media.net.srt.errors import ErrorCode, RejectCode, SrtError
from kiln.media.net.srt.listener import SrtListener
from kiln.media.net.srt.sender import SrtSender
from kiln.media.net.srt.stats import PACKET_HEADER_BYTES
from tests.e2e.srt.conftest import (
    FFMPEG,
    Procs,
    Recorder,
    probe_codecs,
    wait_udp_listening,
    wait_until,
)
from tests.peers.ports import free_udp_port  # reserved across xdist workers, below the ephemeral range

pytestmark = pytest.mark.e2e


def push_file(sender: SrtSender, data: bytes, chunk: int = 1316 * 7, pause_s: float = 0.002) -> None:
    """Send at a few Mbit/s, roughly as a muxer would, rather than in one burst."""
    for offset in range(0, len(data), chunk):
        sender.send(data[offset:offset + chunk])
        time.sleep(pause_s)


def test_srt_live_transmit_receives_byte_identical_data(procs: Procs, ts_file: Path, tmp_path: Path) -> None:
    port = free_udp_port()
    out = tmp_path / "slt.ts"
    with out.open("wb") as sink:
        slt = procs.start(["srt-live-transmit", "-q", "-a:no", f"srt://127.0.0.1:{port}?mode=listener", "file://con"],
                          stdout=sink)
        wait_udp_listening(port, slt)
        data = ts_file.read_bytes()
        sender = SrtSender.connect(f"srt://127.0.0.1:{port}?latency=120000", connect_timeout_ms=3000)
        push_file(sender, data)
        sender.close()
        assert slt.wait(timeout=20) == 0
    received = out.read_bytes()
    assert len(received) == len(data) == sender.bytes_sent
    assert received == data


def test_ffmpeg_listener_receives_a_stream_sent_with_a_streamid(procs: Procs, ts_file: Path, tmp_path: Path) -> None:
    port = free_udp_port()
    out = tmp_path / "ffmpeg.ts"
    listener = procs.start([*FFMPEG, "-i", f"srt://127.0.0.1:{port}?mode=listener&latency=200000",
                            "-c", "copy", "-f", "mpegts", "-y", str(out)])
    wait_udp_listening(port, listener)
    sender = SrtSender.connect(f"srt://127.0.0.1:{port}?mode=caller&latency=200000"
                               "&streamid=#!::u=default/app/stream,m=publish&pbkeylen=16", connect_timeout_ms=3000)
    assert sender.peer_latency_ms == 200
    push_file(sender, ts_file.read_bytes())
    sender.close()
    assert listener.wait(timeout=20) == 0
    assert probe_codecs(out) == ["aac", "h264"]


def test_streamid_and_bytes_reach_kiln_listener_with_matching_stats(ts_file: Path) -> None:
    recorders: list[Recorder] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Recorder:
        recorders.append(Recorder(streamid, peer))
        return recorders[-1]

    data = ts_file.read_bytes()
    with SrtListener("127.0.0.1", 0, on_accept=policy, latency_ms=80) as listener:
        sender = SrtSender.connect(f"srt://127.0.0.1:{listener.port}?streamid=default%2Fapp%2Fstream",
                                   connect_timeout_ms=3000)
        push_file(sender, data)
        wait_until(lambda: len(recorders[0].snapshot()) == len(data), 10, "all bytes at the listener")
        messages = -(-len(data) // 1316)
        sent = sender.stats()
        received = listener.stats(recorders[0])
        assert received is not None
        sender.close()
        assert recorders[0].closed.wait(10)
    assert recorders[0].streamid == "default%2Fapp%2Fstream"
    assert recorders[0].snapshot() == data
    assert max(recorders[0].messages) == 1316 and len(recorders[0].messages) == messages
    assert recorders[0].closes == ["disconnected"]
    # libsrt counts 44 header bytes per packet in its byte counters; the unique ones exclude retransmissions
    assert (sent.packets_sent_unique, sent.bytes_sent_unique) == (messages, len(data) + PACKET_HEADER_BYTES * messages)
    assert (received.packets_received_unique, received.bytes_received_unique) == \
        (messages, len(data) + PACKET_HEADER_BYTES * messages)
    assert received.receive_tsbpd_delay_ms == 80


def test_rejection_by_the_listener_reaches_the_sender() -> None:
    with SrtListener("127.0.0.1", 0, on_accept=lambda streamid, peer: None) as listener:
        started = time.monotonic()
        with pytest.raises(SrtError) as caught:
            SrtSender.connect(f"srt://127.0.0.1:{listener.port}?streamid=default/app/nope", connect_timeout_ms=3000)
    assert time.monotonic() - started < 2
    assert caught.value.code == ErrorCode.ECONNREJ
    assert caught.value.reject_reason == RejectCode.FORBIDDEN
    assert "rejected by the peer: forbidden (1403)" in str(caught.value)


def test_nobody_listening_fails_within_the_connect_timeout() -> None:
    port = free_udp_port()
    started = time.monotonic()
    with pytest.raises(SrtError) as caught:
        SrtSender.connect(f"srt://127.0.0.1:{port}?streamid=x", connect_timeout_ms=1000)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    assert caught.value.code == ErrorCode.ENOSERVER
    assert f"connect to 127.0.0.1:{port}: no answer within" in str(caught.value)


def test_url_timeout_in_microseconds_bounds_the_connect() -> None:
    port = free_udp_port()
    started = time.monotonic()
    with pytest.raises(SrtError):
        SrtSender.connect(f"srt://127.0.0.1:{port}?timeout=500000", connect_timeout_ms=5000)
    assert time.monotonic() - started < 1.5


def test_send_after_the_peer_left_raises_with_a_reason() -> None:
    recorders: list[Recorder] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Recorder:
        recorders.append(Recorder(streamid, peer))
        return recorders[-1]

    listener = SrtListener("127.0.0.1", 0, on_accept=policy)
    listener.start()
    sender = SrtSender.connect(f"srt://127.0.0.1:{listener.port}", connect_timeout_ms=3000)
    try:
        sender.send(b"\x47" * 1316)
        wait_until(lambda: bool(recorders and recorders[0].messages), 5, "the first message")
        listener.close()
        with pytest.raises(SrtError) as caught:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sender.send(b"\x47" * 1316)
                time.sleep(0.01)
        assert "the destination closed the connection" in str(caught.value)
    finally:
        sender.close()
        listener.close()
    assert recorders[0].closes == ["listener closed"]


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_fifty_connect_close_cycles_leave_threads_and_fds_flat() -> None:
    recorders: list[Recorder] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Recorder:
        recorders.append(Recorder(streamid, peer))
        return recorders[-1]

    with SrtListener("127.0.0.1", 0, on_accept=policy, latency_ms=20) as listener:
        url = f"srt://127.0.0.1:{listener.port}?latency=20000&streamid=default/app/cycle"
        with SrtSender.connect(url, connect_timeout_ms=3000) as warm_up:  # warm up libsrt's shared threads
            # as the cycles below: a message, then close() drains and lingers, so the listener takes the caller in
            # before it hangs up (a caller that hangs up at once may go before any pass takes it: "handshake failed")
            warm_up.send(b"\x47" * 1316)
        wait_until(lambda: len(recorders) == 1 and recorders[0].closed.is_set(), 10, "the warm-up caller to close")
        threads, fds = _threads(), _fds()
        for _ in range(50):
            sender = SrtSender.connect(url, connect_timeout_ms=3000)
            sender.send(b"\x47" * 1316)
            sender.close()
        wait_until(lambda: len(recorders) == 51 and all(r.closed.is_set() for r in recorders), 15,
                   "every caller to be closed at the listener")
        wait_until(lambda: _threads() <= threads and _fds() <= fds, 15,
                   f"threads ({_threads()} vs {threads}) and fds ({_fds()} vs {fds}) to settle")
        assert listener.connections() == []
    assert [r.closes for r in recorders] == [["disconnected"]] * 51
    assert all(r.snapshot() == b"\x47" * 1316 for r in recorders)


def test_a_slow_receiver_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    class Slow(Recorder):
        def on_data(self, data: bytes) -> None:
            if not self.messages:
                time.sleep(0.15)
            super().on_data(data)

    receivers: list[Slow] = []

    def policy(streamid: str, peer: tuple[str, int]) -> Slow:
        receivers.append(Slow(streamid, peer))
        return receivers[-1]

    with caplog.at_level(logging.WARNING, logger="kiln.media.net.srt.listener"), \
            SrtListener("127.0.0.1", 0, on_accept=policy) as listener:
        sender = SrtSender.connect(f"srt://127.0.0.1:{listener.port}?streamid=default/app/slow",
                                   connect_timeout_ms=3000)
        sender.send(b"\x47" * 1316 * 3)
        wait_until(lambda: bool(receivers) and len(receivers[0].messages) == 3, 5, "three messages")
        sender.close()
    assert f"srt receiver slow port={listener.port}" in caplog.text
    assert "streamid='default/app/slow' took_ms=" in caplog.text
