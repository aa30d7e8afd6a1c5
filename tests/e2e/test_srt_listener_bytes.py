"""SrtListener's byte-stream receivers (TS ingest's path) get every byte a real caller sent, in order.

A pass reads each caller's ready messages back to back and stops when libsrt says none is left
(``SRTO_EVENT``) instead of reading until "nothing ready"; this checks no message is skipped, cut or
reordered by that, over many passes, and that the caller's leaving still reaches ``on_close``.
The caller is srt-live-transmit relaying what the test writes to its stdin.
"""

from __future__ import annotations

import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kiln.media.net.srt.listener import SrtListener
from tests.peers.fixtures import require
from tests.peers.ports import wait_until
from tests.peers.srt_tools import SRT_LIVE_TRANSMIT

pytestmark = pytest.mark.e2e

MESSAGE = 1316
MESSAGES = 600
BURST = 10  # messages written at once, then a short pause: several messages wait for each pass


class Collector:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed: list[str] = []
        self.lock = threading.Lock()

    def on_data(self, data: bytes) -> None:
        raise AssertionError("a receiver with on_bytes gets no per-message calls")

    def on_bytes(self, data: bytes) -> None:
        with self.lock:
            self.chunks.append(data)

    def on_close(self, reason: str) -> None:
        self.closed.append(reason)

    def received(self) -> bytes:
        with self.lock:
            return b"".join(self.chunks)


def payload() -> bytes:
    """Every message distinct (its number repeated), so a lost, cut or swapped one shows."""
    return b"".join(struct.pack(">I", i) * (MESSAGE // 4) for i in range(MESSAGES))


def test_every_byte_arrives_in_order_across_passes_and_the_end_is_reported(peer_dir: Path) -> None:
    require(SRT_LIVE_TRANSMIT)
    collector = Collector()
    sent = payload()
    with SrtListener("127.0.0.1", 0, on_accept=lambda streamid, peer: collector) as listener:
        url = f"srt://127.0.0.1:{listener.port}?mode=caller&latency=500&streamid=bytes"
        with open(peer_dir / "slt.stderr.log", "wb") as err:
            caller = subprocess.Popen([SRT_LIVE_TRANSMIT, "-q", "-chunk:1316", "file://con", url],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            assert caller.stdin is not None
            wait_until(lambda: listener.connections(), 20, "the caller connected")
            step = BURST * MESSAGE
            for at in range(0, len(sent), step):
                caller.stdin.write(sent[at:at + step])
                caller.stdin.flush()
                time.sleep(0.005)  # pacing a live sender (not a wait for a condition)
            wait_until(lambda: len(collector.received()) >= len(sent), 30,
                       f"{len(sent)} bytes received (got {len(collector.received())})")
            [info] = listener.connections()
            caller.send_signal(signal.SIGINT)  # srt-live-transmit closes its socket and exits
            wait_until(lambda: collector.closed, 30, "on_close after the caller left")
        finally:
            if caller.stdin is not None:
                caller.stdin.close()
            if caller.poll() is None:
                caller.kill()
            caller.wait(10)
    received = collector.received()
    assert len(received) == len(sent)
    assert received == sent
    assert info.bytes_received == len(sent) and info.messages_received == MESSAGES
    assert len(collector.chunks) < MESSAGES  # several messages per pass, one call each
    assert collector.closed == ["disconnected"]
