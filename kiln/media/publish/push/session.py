"""One push session: a worker thread that reads an output stream's hub and feeds a PushWriter.

A :class:`~kiln.media.publish.contract.Publisher`. It reports its state through
``on_state(state, reason)``; the push actor journals transitions and decides about retries. The
hub subscription is bounded and drops this session (``slow destination``) rather than ever
delaying ingest or another consumer. Timestamps are zero-based on one clock across tracks; a
packet that would go backwards on its track is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiln.media.model import MediaKind, Track
from kiln.media.net.lookup import LookupGuard
from kiln.media.publish.push.writers import PushError, PushWriter, Timeouts, writer_for
from kiln.media.publish.session_clock import SessionClock
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import OutputStream
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

QUEUE_PACKETS = 3000
BATCH_INTERVAL_S = 0.1
"""Shortest time between two sends. Ingest hands packets over one by one (about 80 a second for a
720p30 stream with AAC); waking the session's thread and writing the socket once per packet cost
more than building the tags. Each wake-up still costs the thread about 100 us of CPU (the sleep, taking
the GIL back from ingest, the socket write and its loopback delivery, the poll for incoming control
messages): the push threads of 10 pushes of 720p30 used 0.22 CPU-s per push-minute with 40 ms batches,
0.12 with 100 ms (2026-12-06). 100 ms later is invisible to a destination, which buffers seconds."""
UDP_BATCH_INTERVAL_S = 0.04
"""MPEG-TS over plain UDP has no flow control and no retransmission: a receiver whose socket buffer is at
Linux's default (about 208 kB) would overflow on 100 ms bursts of a 20 Mbit/s stream, so it keeps 40 ms."""


def batch_interval(protocol: str, destination: str) -> float:
    if protocol == "mpegts" and destination.lower().startswith("udp://"):
        return UDP_BATCH_INTERVAL_S
    return BATCH_INTERVAL_S


@dataclass
class PushCounters:
    """Live counters the API shows for the current session (sentBytes, sentTime)."""

    sent_bytes: int = 0
    started_at: float = 0.0  # monotonic
    stopped_at: float = 0.0

    @property
    def bytes_out(self) -> int:
        return self.sent_bytes

    @property
    def sent_time_ms(self) -> int:
        if not self.started_at:
            return 0
        end = self.stopped_at or time.monotonic()
        return int((end - self.started_at) * 1000)


@dataclass
class PushPlan:
    protocol: str
    destination: str
    tracks: list[Track]
    timeouts: Timeouts = field(default_factory=Timeouts)


class PushSession:
    def __init__(self, name: str, plan: PushPlan, output: OutputStream, counters: PushCounters,
                 on_state: Callable[[str, str], None], on_bytes: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.plan = plan
        self.output = output
        self.counters = counters
        self.on_state = on_state
        self.on_bytes = on_bytes
        self._writer: PushWriter | None = None
        self._worker = WorkerThread(f"push-{name}", self._run, self._crashed)
        self._lookups = LookupGuard(lambda: self._worker.stopping)
        video = frozenset(t.id for t in plan.tracks if t.kind is MediaKind.VIDEO)
        self._sub = Subscriber(f"push:{name}", max_packets=QUEUE_PACKETS, policy="drop", video_track_ids=video)
        self._ids = {t.id for t in plan.tracks}

    def start(self) -> None:
        self.attach(self.output)

    def attach(self, output: OutputStream) -> None:
        """Connect and push ``output`` on the session's thread (state goes connecting, then pushing)."""
        self.output = output
        self._worker.start()

    def detach(self, reason: str) -> None:
        log.info("push session detached name=%s reason=%s", self.name, reason)
        self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the session and wait (bounded) for its thread, unless it is looking the destination's name up:
        ``getaddrinfo`` cannot be interrupted, so the thread ends on its own when the answer comes, without
        connecting (kiln.media.net.lookup), and the caller (the push task's actor) goes on at once."""
        self._worker.stop()
        self._sub.end("stopped")
        writer = self._writer
        if writer is not None:
            writer.abort()  # a send blocked on a stalled destination returns at once
        if self._lookups.stop_skips_join():
            log.info("push session stopped during its name lookup name=%s; its thread ends when the lookup "
                     "returns", self.name)
            return
        self._worker.join(timeout)

    @property
    def alive(self) -> bool:
        return self._worker.alive

    @property
    def attached(self) -> bool:
        return self._worker.alive

    def _run(self) -> None:
        writer: PushWriter | None = None
        self._lookups.install()
        try:
            self.on_state("connecting", "")
            writer = writer_for(self.plan.protocol, self.plan.destination, self.plan.tracks, self.plan.timeouts)
            self._writer = writer
            writer.open()
            self.output.hub.subscribe(self._sub, from_keyframe=True)
            self._pump(writer)
        except PushError as exc:
            if not self._worker.stopping:
                self.on_state("error", str(exc))
            elif self._lookups.abandoned:
                log.info("push session ended after its name lookup name=%s connected=false", self.name)
        finally:
            self._sub.close()
            self.counters.stopped_at = time.monotonic()
            if writer is not None:
                writer.close()

    def _crashed(self, exc: Exception) -> None:
        self.on_state("error", f"internal error: {exc}")

    def _pump(self, writer: PushWriter) -> None:
        clock = SessionClock(self.plan.tracks)
        interval = batch_interval(self.plan.protocol, self.plan.destination)
        pushing = False
        sent_before = 0
        while not self._worker.stopping:
            packet = self._sub.get(timeout=0.5)
            if packet is None:
                if self._sub.ended:
                    reason = self._sub.closed_reason or "stream ended"
                    if reason == "slow consumer":
                        raise PushError("the destination is too slow: dropped to protect the stream")
                    return
                continue
            began = time.monotonic()
            wrote = False
            for item in (packet, *self._sub.drain()):
                if item.track_id not in self._ids:
                    continue
                offset = clock.offset(item)
                if offset is None:
                    continue
                writer.write(item, offset)
                wrote = True
            if not wrote:
                continue
            writer.flush()
            if not pushing:
                pushing = True
                self.counters.started_at, self.counters.stopped_at = time.monotonic(), 0.0
                self.on_state("pushing", "")
            sent = writer.bytes_sent
            self.counters.sent_bytes += sent - sent_before
            if self.on_bytes is not None and sent != sent_before:
                self.on_bytes(sent - sent_before)
            sent_before = sent
            rest = interval - (time.monotonic() - began)
            if rest > 0 and not self._worker.stopping:
                # more packets queue meanwhile. A plain sleep, not the worker's stop event: a timed wait on a
                # threading.Event costs the thread about twice the CPU (a lock made and waited on in Python
                # each time), and stop() still ends the subscription and aborts the writer at once, so the
                # loop ends within one interval.
                time.sleep(rest)


if TYPE_CHECKING:  # mypy holds the class to the publisher contract
    from kiln.media.publish.contract import Publisher

    _conforms: type[Publisher] = PushSession
