"""The push writers one by one, on loopback sockets of the test: the table picks one per protocol,
UDP keeps sending to a port nobody listens on (as OME does), TCP turns a refusal and a destination
that stops reading into reasons users can act on, and every writer counts the bytes that left."""

from __future__ import annotations

import contextvars
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kiln.media.model import Packet
from kiln.media.net.lookup import LookupAbandoned, LookupGuard, getaddrinfo
from kiln.media.net.srt import libsrt
from kiln.media.publish.push.mpegts_writer import MpegtsWriter
from kiln.media.publish.push.net import PushError, Timeouts
from kiln.media.publish.push.rtmp_writer import RtmpWriter
from kiln.media.publish.push.srt_writer import SrtWriter
from kiln.media.publish.push.writers import WRITERS, PushWriter, writer_for
from tests.unit.transcode.clip import Clip, make_clip

FAST = Timeouts(connect_ms=1000, send_ms=300)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return make_clip(320, 180, seconds=2.0, fps=15, gop=15)


def write_clip(writer: PushWriter, clip: Clip, times: int = 1) -> None:
    period = clip.packets[-1].dts + 100
    for cycle in range(times):
        for p in clip.packets:
            shift = cycle * period
            writer.write(Packet(p.track_id, p.pts + shift, p.dts + shift, p.time_base, p.data, keyframe=p.keyframe,
                                config=p.config), 0)
        writer.flush()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def refusing_tcp_port() -> Iterator[int]:
    """A port with nothing listening (bound, never listened: connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def test_the_table_has_one_writer_per_protocol(clip: Clip) -> None:
    tracks = [clip.video, clip.audio]
    assert {p: type(writer_for(p, "x://h:1", tracks, FAST)) for p in WRITERS} == {
        "rtmp": RtmpWriter, "mpegts": MpegtsWriter, "srt": SrtWriter}
    with pytest.raises(PushError, match="cannot push with protocol 'webrtc'"):
        writer_for("webrtc", "x://h:1", tracks, FAST)


def test_mpegts_over_udp_keeps_sending_when_nobody_listens(clip: Clip) -> None:
    writer = writer_for("mpegts", f"udp://127.0.0.1:{free_udp_port()}", [clip.video, clip.audio], FAST)
    writer.open()
    try:
        write_clip(writer, clip, times=2)  # ICMP port-unreachable comes back: logged, never an error
    finally:
        writer.close()
    assert writer.bytes_sent > 10_000 and writer.bytes_sent % 188 == 0


def test_mpegts_over_tcp_refused_is_a_reason(clip: Clip, refusing_tcp_port: int) -> None:
    writer = writer_for("mpegts", f"tcp://127.0.0.1:{refusing_tcp_port}", [clip.video, clip.audio], FAST)
    with pytest.raises(PushError, match="^connection refused by the destination$"):
        writer.open()
    writer.close()  # the session closes after a failed open too: nothing left to release, no error


def test_mpegts_over_tcp_to_a_destination_that_stops_reading_times_out(clip: Clip) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.listen(1)
        writer = writer_for("mpegts", f"tcp://127.0.0.1:{server.getsockname()[1]}", [clip.video, clip.audio], FAST)
        writer.open()
        began = time.monotonic()
        try:
            with pytest.raises(PushError, match="timed out after 300 ms sending: the destination stopped reading"):
                write_clip(writer, clip, times=200)  # accepted, never read: the kernel buffers fill
        finally:
            writer.close()
        assert time.monotonic() - began < 30


def test_an_unknown_transport_for_mpegts_is_a_reason(clip: Clip) -> None:
    writer = writer_for("mpegts", "http://127.0.0.1:1/x", [clip.video, clip.audio], FAST)
    with pytest.raises(PushError, match="MPEG-TS cannot be pushed over http"):
        writer.open()


def test_rtmp_to_a_port_that_refuses_is_a_reason(clip: Clip, refusing_tcp_port: int) -> None:
    writer = writer_for("rtmp", f"rtmp://127.0.0.1:{refusing_tcp_port}/live/k", [clip.video, clip.audio], FAST)
    with pytest.raises(PushError, match="connection refused by the destination"):
        writer.open()
    writer.close()
    assert writer.bytes_sent == 0


@pytest.mark.parametrize("protocol,url", [("rtmp", "rtmp://dest.example:1935/app/key"),
                                          ("mpegts", "tcp://dest.example:9000"), ("mpegts", "udp://dest.example:9000"),
                                          ("srt", "srt://dest.example:9000")])
def test_a_writer_whose_session_was_stopped_looks_nothing_up_and_connects_nowhere(protocol: str, url: str,
                                                                                   clip: Clip) -> None:
    """Every protocol resolves through the session's lookup guard (kiln.media.net.lookup), so a session stopped
    before or during the lookup never connects; its stop does not wait for it
    (tests/e2e/test_push_stop_while_connecting.py)."""
    def open_stopped() -> None:
        LookupGuard(lambda: True).install()  # on this context only: the test's own lookups stay unguarded
        writer_for(protocol, url, [clip.video, clip.audio], FAST).open()

    with pytest.raises(PushError, match="stopped before looking dest.example up"):
        contextvars.Context().run(open_stopped)


def test_a_lookup_that_returns_after_the_stop_is_abandoned_and_says_which_host() -> None:
    answers = iter([False, True])  # not stopped when the lookup begins, stopped when it returns
    guard = LookupGuard(lambda: next(answers))

    def lookup() -> None:
        guard.install()
        getaddrinfo("localhost", 80, socket.SOCK_STREAM)  # /etc/hosts: no name server asked

    with pytest.raises(LookupAbandoned, match="stopped while looking localhost up"):
        contextvars.Context().run(lookup)
    assert guard.abandoned == "localhost" and not guard.resolving
    assert getaddrinfo("localhost", 80, socket.SOCK_STREAM)  # unguarded (this thread): a plain lookup


def opening(writer: PushWriter) -> tuple[threading.Thread, list[BaseException]]:
    """``writer.open()`` started on a thread of its own; the PushError it ends with lands in the list."""
    failed: list[BaseException] = []

    def open_writer() -> None:
        try:
            writer.open()
        except PushError as exc:
            failed.append(exc)

    opener = threading.Thread(target=open_writer)
    opener.start()
    return opener, failed


def test_an_rtmp_handshake_the_destination_never_answers_is_cut_short_by_abort(clip: Clip) -> None:
    """A stop during connect/handshake does not wait out the app's connection timeout (here 20 s)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        writer = RtmpWriter(f"rtmp://127.0.0.1:{server.getsockname()[1]}/app/key", [clip.video, clip.audio],
                            Timeouts(connect_ms=20000, send_ms=300))
        opener, failed = opening(writer)
        conn, _ = server.accept()  # connected: the writer now waits for the handshake's answer
        with conn:
            began = time.monotonic()
            writer.abort()
            opener.join(5)
        assert not opener.is_alive() and time.monotonic() - began < 2
        assert failed and str(failed[0]) == "stopped while connecting"  # not a fault of the destination's


@pytest.fixture
def unanswering_tcp_port() -> Iterator[int]:
    """A port whose SYNs go unanswered, as a destination behind a firewall that drops them: a listener with a full
    accept queue (listen(0), filled by connections never accepted) makes Linux drop every further SYN, so a connect
    to it stays in SYN_SENT until its timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):
                probe = socket.socket()
                probe.settimeout(0.5)
                try:
                    probe.connect(("127.0.0.1", port))
                except TimeoutError:
                    probe.close()
                    break
                fillers.append(probe)
            else:
                pytest.fail("the listener's accept queue never filled")
            yield port
        finally:
            for conn in fillers:
                conn.close()


def test_an_mpegts_tcp_connect_the_destination_never_answers_is_cut_short_by_abort(
        clip: Clip, unanswering_tcp_port: int) -> None:
    """A stop during the TCP connect does not wait out the app's connection timeout (here 20 s)."""
    writer = writer_for("mpegts", f"tcp://127.0.0.1:{unanswering_tcp_port}", [clip.video, clip.audio],
                        Timeouts(connect_ms=20000, send_ms=300))
    threads_before, fds_before = set(threading.enumerate()), len(os.listdir("/proc/self/fd"))
    opener, failed = opening(writer)
    deadline = time.monotonic() + 5
    while not _in_syn_sent(unanswering_tcp_port):  # the writer is waiting for the destination's SYN-ACK
        assert time.monotonic() < deadline and opener.is_alive(), failed
        time.sleep(0.01)
    began = time.monotonic()
    writer.abort()
    opener.join(5)
    assert not opener.is_alive() and time.monotonic() - began < 2
    assert failed and str(failed[0]) == "stopped while connecting"
    writer.close()
    assert not _in_syn_sent(unanswering_tcp_port)  # the socket was released
    assert set(threading.enumerate()) <= threads_before and len(os.listdir("/proc/self/fd")) == fds_before


def _in_syn_sent(port: int) -> bool:
    """Whether a socket here is connecting to ``port`` (/proc/net/tcp, state 02 = SYN_SENT)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(row[2] == f"0100007F:{port:04X}" and row[3] == "02" for row in rows)


@pytest.fixture
def unanswering_srt_port() -> Iterator[int]:
    """An SRT destination that never answers: a UDP socket that reads the caller's handshakes and drops them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as drop:
        drop.bind(("127.0.0.1", 0))
        drop.settimeout(0.05)
        heard: list[int] = []
        done = threading.Event()

        def read_and_drop() -> None:
            while not done.is_set():
                try:
                    heard.append(len(drop.recv(2048)))
                except TimeoutError:
                    continue

        reader = threading.Thread(target=read_and_drop, name="srt-drop")
        reader.start()
        try:
            yield int(drop.getsockname()[1])
        finally:
            done.set()
            reader.join(5)


def test_an_srt_connect_the_destination_never_answers_is_cut_short_by_abort(
        clip: Clip, unanswering_srt_port: int) -> None:
    """libsrt's blocking connect cannot be interrupted: the SRT caller connects without blocking and asks between
    waits whether it was stopped, so a stop does not wait out the app's connection timeout (here 20 s). The
    threads libsrt started for the socket (its send and receive queues) end once it is closed."""
    libsrt.lib()  # started first: its garbage collector thread stays
    tids_before, fds_before = set(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))
    writer = writer_for("srt", f"srt://127.0.0.1:{unanswering_srt_port}", [clip.video, clip.audio],
                        Timeouts(connect_ms=20000, send_ms=300))
    opener, failed = opening(writer)
    deadline = time.monotonic() + 5
    while len(set(os.listdir("/proc/self/task")) - tids_before) < 3:  # the opener and libsrt's queue threads
        assert time.monotonic() < deadline and opener.is_alive(), failed
        time.sleep(0.01)
    began = time.monotonic()
    writer.abort()
    opener.join(5)
    assert not opener.is_alive() and time.monotonic() - began < 2
    assert failed and str(failed[0]) == "stopped while connecting"
    writer.close()
    deadline = time.monotonic() + 10
    while set(os.listdir("/proc/self/task")) - tids_before or len(os.listdir("/proc/self/fd")) > fds_before:
        assert time.monotonic() < deadline, (set(os.listdir("/proc/self/task")) - tids_before, fds_before)
        time.sleep(0.05)
