"""A push session sends what ingest handed it in batches: one wake-up and one send per batch interval, never one
per packet (each wake-up of a session's thread is its main CPU cost), and every packet still goes out, in order."""

from __future__ import annotations

import socket
import threading
import time

from kiln.media.publish.push.select import select_tracks
from kiln.media.publish.push.session import BATCH_INTERVAL_S, PushCounters, PushPlan, PushSession, batch_interval
from kiln.media.publish.push.writers import Timeouts
from tests.unit.publish.contract import BYPASS, SPEED, LiveFeed, wait_until

WINDOW_S = 1.5


def test_a_session_sends_once_per_interval_not_once_per_packet() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def read() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    feed = LiveFeed(BYPASS)
    sends: list[int] = []
    session = None
    try:
        tracks = select_tracks(feed.output.track_list(), "mpegts", [], []).tracks
        plan = PushPlan("mpegts", f"tcp://127.0.0.1:{server.getsockname()[1]}", tracks, Timeouts())
        session = PushSession("batches", plan, feed.output, PushCounters(), lambda state, reason: None, sends.append)
        session.start()
        wait_until(lambda: len(sends) > 0, "the first send")
        first, begun = len(sends), time.monotonic()
        time.sleep(WINDOW_S)
        batches = len(sends) - first
        elapsed = time.monotonic() - begun
    finally:
        if session is not None:
            session.stop()
        feed.close()
        server.close()
        reader.join(5)
    packets = len(feed.clip.packets) / (feed.clip.packets[-1].dts / 1000) * SPEED * elapsed  # fed in the window
    assert 0 < batches <= elapsed / BATCH_INTERVAL_S + 2, f"{batches} sends in {elapsed:.2f}s"
    assert packets > 4 * batches, f"{packets:.0f} packets in {batches} sends: not batched"
    assert received and received[0] == 0x47 and len(received) % 188 == 0
    assert len(received) >= sum(sends)


def test_plain_udp_keeps_short_bursts_and_every_other_destination_gets_the_long_interval() -> None:
    """UDP has no flow control: 100 ms of a 20 Mbit/s stream (250 kB) would overflow a default receive buffer."""
    assert batch_interval("mpegts", "udp://239.0.0.1:5000") < BATCH_INTERVAL_S
    assert batch_interval("mpegts", "tcp://127.0.0.1:5000") == BATCH_INTERVAL_S
    assert batch_interval("srt", "srt://127.0.0.1:9999") == BATCH_INTERVAL_S
    assert batch_interval("rtmp", "rtmp://127.0.0.1/app") == BATCH_INTERVAL_S
