"""MPEG-TS bytes from a socket → PyAV's mpegts demuxer → a LiveStream, one worker thread per input.

SRT and MPEG-TS/UDP ingest both receive TS in 1316-byte messages on a thread (or loop) that must
never wait. ``TsFeed`` is the hand-over: a bounded byte queue that never blocks the producer (when
full, the newest message is dropped and counted) and a blocking file-like ``read`` for PyAV, which
releases the GIL while it demuxes. ``TsDemuxWorker`` probes the input, asks for a stream (the
protocol decides the name and whether it is allowed), and feeds the stream until the input ends.

After a failure (refused stream, bytes that are not TS, a demux error) the worker keeps reading and
discarding until its input ends, so a UDP sender that keeps sending is not re-probed per datagram
and an SRT caller is dropped by its own glue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av

from kiln.media.formats.mpegts.tsclock import TsClock
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.convert import AvConverter
from kiln.media.model import MediaKind
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

TS_PACKET_SIZE = 188
TS_SYNC_BYTE = 0x47
SYNC_RUN = 3  # sync bytes in a row, one packet apart, that make the input "MPEG-TS"
SYNC_CHECK_BYTES = TS_PACKET_SIZE * (SYNC_RUN + 1)  # enough to find a run starting anywhere in a packet
MAX_QUEUED_BYTES = 8 * 1024 * 1024
"""Input a demuxer may fall behind by (about 3 s at 20 Mbit/s) before messages are dropped."""
READ_CHUNK = 64 * 1024
DROP_LOG_EVERY = 1000  # after the first drop, one warning per this many dropped messages


def ts_sync_offset(data: bytes) -> int | None:
    """Offset of the first TS packet (a run of sync bytes 188 bytes apart), or None if there is none."""
    for start in range(min(TS_PACKET_SIZE, len(data))):
        end = start + (SYNC_RUN - 1) * TS_PACKET_SIZE
        if end >= len(data):
            return None
        if all(data[start + k * TS_PACKET_SIZE] == TS_SYNC_BYTE for k in range(SYNC_RUN)):
            return start
    return None


class TsFeed:
    """Bounded byte queue: ``push`` from the receiving side (never blocks), ``read`` from PyAV's thread.

    ``read`` returns ``b""`` (end of input) once the feed is closed and drained, at once after a
    discarding close, or after ``idle_timeout_s`` without any pushed data (the feed then closes
    itself with the reason "no data for N ms"; a later ``push`` returns False).
    """

    def __init__(self, label: str, *, max_bytes: int = MAX_QUEUED_BYTES, idle_timeout_s: float | None = None) -> None:
        self.label = label
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._head = memoryview(b"")
        self._last_push = time.monotonic()
        self.closed_reason: str | None = None
        self.received_bytes = 0
        self.dropped_messages = 0
        self.dropped_bytes = 0

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def push(self, data: bytes) -> bool:
        """Queue one message; False when the feed is closed (the caller starts a new one if it wants)."""
        with self._cond:
            if self.closed_reason is not None:
                return False
            self._last_push = time.monotonic()
            if not data:
                return True  # an empty datagram: queued, it would read as the end of input
            self.received_bytes += len(data)
            if self._queued + len(data) > self.max_bytes:
                self.dropped_messages += 1
                self.dropped_bytes += len(data)
                dropped = self.dropped_messages
            else:
                self._chunks.append(bytes(data))
                self._queued += len(data)
                self._cond.notify()
                return True
        if dropped == 1 or dropped % DROP_LOG_EVERY == 0:
            log.warning("ts input overflow, messages dropped input=%s dropped_messages=%d dropped_bytes=%d "
                        "queued_limit=%d", self.label, dropped, self.dropped_bytes, self.max_bytes)
        return True

    def close(self, reason: str, *, discard: bool = False) -> None:
        """No more input: ``read`` drains what is queued, then ends (at once when ``discard``)."""
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = reason
            if discard:
                self._chunks.clear()
                self._queued = 0
                self._head = memoryview(b"")
            self._cond.notify_all()

    # -- the file-like side (PyAV's thread) -------------------------------------------------------
    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (PyAV copies the answer into a buffer of that size: never more)."""
        limit = READ_CHUNK if size is None or size < 0 else size
        with self._cond:
            while True:
                if len(self._head) or self._chunks:
                    return self._take(limit)
                if self.closed_reason is not None:
                    return b""
                if self.idle_timeout_s is None:
                    self._cond.wait()
                    continue
                idle = time.monotonic() - self._last_push
                if idle >= self.idle_timeout_s:
                    self.closed_reason = f"no data for {int(self.idle_timeout_s * 1000)} ms"
                    return b""
                self._cond.wait(self.idle_timeout_s - idle)


    def _take(self, limit: int) -> bytes:
        """Up to ``limit`` queued bytes in one answer (several messages per PyAV read, not one each)."""
        if not len(self._head):
            chunk = self._chunks.popleft()
            self._queued -= len(chunk)
            if len(chunk) <= limit and not self._chunks:
                return chunk  # the usual case: one whole chunk, no copy
            self._head = memoryview(chunk)
        parts = [self._head[:limit]]
        size = len(parts[0])
        self._head = self._head[size:]
        while size < limit and self._chunks:
            chunk = self._chunks.popleft()
            self._queued -= len(chunk)
            view = memoryview(chunk)
            parts.append(view[:limit - size])
            self._head = view[limit - size:]
            size += len(parts[-1])
        return b"".join(parts)


class _PrefixedReader:
    """A file-like that returns ``prefix`` first, then reads from the feed (PyAV needs no seeking)."""

    def __init__(self, prefix: bytes, feed: TsFeed) -> None:
        self._prefix = memoryview(prefix)
        self._feed = feed

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if len(self._prefix):
            limit = len(self._prefix) if size is None or size < 0 else size
            out = bytes(self._prefix[:limit])
            self._prefix = self._prefix[limit:]
            return out
        return self._feed.read(size)


@dataclass
class TsHooks:
    """What the protocol glue decides; both run on the worker thread and may block briefly."""

    open_stream: Callable[[set[MediaKind]], LiveStream]  # raises PublishRejected to refuse
    ended: Callable[[str], None]  # the stream part is over (reason); the input may still be arriving


class TsDemuxWorker:
    def __init__(self, label: str, hooks: TsHooks, *, idle_timeout_s: float | None = None,
                 max_bytes: int = MAX_QUEUED_BYTES) -> None:
        self.label = label
        self.hooks = hooks
        self.feed = TsFeed(label, max_bytes=max_bytes, idle_timeout_s=idle_timeout_s)
        self.stream: LiveStream | None = None
        self.end_reason: str | None = None
        self._stop_reason: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"kiln-ts-{label}", daemon=True)

    def start(self) -> TsDemuxWorker:
        self._thread.start()
        return self

    def push(self, data: bytes) -> bool:
        return self.feed.push(data)

    def finish(self, reason: str) -> None:
        """The source is gone (disconnect): demux what is queued, then end the stream with ``reason``."""
        self.feed.close(reason)

    def stop(self, reason: str) -> None:
        """End the stream now (DELETE); input keeps being discarded until the source goes away."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def abort(self, reason: str) -> None:
        """Shutdown: end the stream and the thread as soon as possible."""
        self.stop(reason)
        self.feed.close(reason, discard=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        reason = "internal error"
        try:
            reason = self._demux()
        except Exception:
            log.exception("ts demux failed input=%s", self.label)
        finally:
            self.end_reason = reason
            if self.stream is not None:
                self.stream.end(reason)
            try:
                self.hooks.ended(reason)
            except Exception:
                log.exception("ts ingest end hook failed input=%s", self.label)
            discarded = self._drain()
            log.info("ts input finished input=%s reason=%s received_bytes=%d dropped_bytes=%d discarded_bytes=%d",
                     self.label, reason, self.feed.received_bytes, self.feed.dropped_bytes, discarded)

    def _input_ended(self, fallback: str) -> str:
        return self._stop_reason or self.feed.closed_reason or fallback

    def _demux(self) -> str:
        prefix = self._read_prefix()
        if len(prefix) < SYNC_CHECK_BYTES:
            return self._input_ended("input ended before any MPEG-TS packet")
        offset = ts_sync_offset(prefix)
        if offset is None:
            log.warning("ts input rejected input=%s reason=not MPEG-TS first_bytes=%s", self.label,
                        prefix[:16].hex())
            return "input is not MPEG-TS (no 0x47 sync bytes 188 bytes apart)"
        try:
            container = av.open(_PrefixedReader(prefix[offset:], self.feed), "r", format="mpegts")
        except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
            return self._input_ended(f"MPEG-TS probe failed: {exc}")
        try:
            return self._stream(container)
        finally:
            container.close()

    def _read_prefix(self) -> bytes:
        data = bytearray()
        while len(data) < SYNC_CHECK_BYTES:
            more = self.feed.read(READ_CHUNK)
            if not more:
                break
            data += more
        return bytes(data)

    def _stream(self, container: av.container.InputContainer) -> str:
        converter = AvConverter(TsClock(self.label))
        usable = [s for s in container.streams if s.type in ("video", "audio") and converter.add_stream(s)]
        if not usable:
            log.warning("ts input has no usable track input=%s streams=%s", self.label,
                        ",".join(f"{s.type}:{s.codec_context.name if s.codec_context else '?'}"
                                 for s in container.streams))
            return self._input_ended("no audio or video track Kiln can carry in the MPEG-TS input")
        if self._stop_reason is not None:
            return self._stop_reason
        kinds = {MediaKind.VIDEO if s.type == "video" else MediaKind.AUDIO for s in usable}
        try:
            stream = self.hooks.open_stream(kinds)
        except PublishRejected as exc:
            return f"rejected: {exc.reason}"
        stream.expected = kinds
        self.stream = stream
        log.info("ts input demuxing input=%s tracks=%s", self.label,
                 ",".join(f"{s.type}:{s.codec_context.name}" for s in usable))
        try:
            for packet in container.demux(*usable):
                if self._stop_reason is not None:
                    return self._stop_reason
                track, packets = converter.convert(packet)
                if track is not None:
                    stream.on_track(track)
                for p in packets:
                    stream.ingest(p)
        except (av.FFmpegError, OSError, EOFError) as exc:
            return self._input_ended(f"demux error: {exc}")
        return self._input_ended("input ended")

    def _drain(self) -> int:
        discarded = 0
        while chunk := self.feed.read(READ_CHUNK):
            discarded += len(chunk)
        return discarded
