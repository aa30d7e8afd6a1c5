"""MPEG-TS bytes from a socket → a TS demuxer → a LiveStream, one worker thread per input.

SRT and MPEG-TS/UDP ingest both receive TS in 1316-byte messages on a thread (or loop) that must
never wait. ``TsFeed`` is the hand-over: a bounded byte queue that never blocks the producer (when
full, the newest message is dropped and counted) and a blocking file-like ``read``. ``TsDemuxWorker``
probes the input, asks for a stream (the protocol decides the name and whether it is allowed), and
feeds the stream until the input ends.

Two demuxers: when the PMT lists only H.264, H.265 and ADTS AAC (plus ID3 or SCTE-35 data, ignored),
Kiln's own bulk demuxer (``formats/mpegts/demux.py``) reads the feed in large chunks with little work
per TS packet, which is what every usual encoder sends. Anything else (MP3, Opus, no PMT within
``PROBE_BYTES``) goes to PyAV's mpegts demuxer, which is handed every byte read while probing.

After a failure (refused stream, bytes that are not TS, a demux error) the worker keeps reading and
discarding until its input ends, so a UDP sender that keeps sending is not re-probed per datagram
and an SRT caller is dropped by its own glue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av

from kiln.control_cpu import free_thread
from kiln.media.formats.mpegts import demux as tsdemux
from kiln.media.formats.mpegts.tsclock import TsClock
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.convert import TS_TIME_BASE, AvConverter
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.live import LiveStream
from kiln.media.threadname import name_os_thread

log = logging.getLogger(__name__)

TS_PACKET_SIZE = 188
TS_SYNC_BYTE = 0x47
SYNC_RUN = 3  # sync bytes in a row, one packet apart, that make the input "MPEG-TS"
SYNC_CHECK_BYTES = TS_PACKET_SIZE * (SYNC_RUN + 1)  # enough to find a run starting anywhere in a packet
MAX_QUEUED_BYTES = 8 * 1024 * 1024
"""Input a demuxer may fall behind by (about 3 s at 20 Mbit/s) before messages are dropped."""
READ_CHUNK = 64 * 1024
DROP_LOG_EVERY = 1000  # after the first drop, one warning per this many dropped messages
PROBE_BYTES = 1024 * 1024
"""TS read while waiting for the PAT and PMT (sent every 100 ms by usual muxers) before PyAV is asked instead."""
FAST_CODECS = {tsdemux.H264: Codec.H264, tsdemux.H265: Codec.H265, tsdemux.AAC_ADTS: Codec.AAC}
IGNORED_STREAM_TYPES = {tsdemux.ID3_METADATA, tsdemux.SCTE35}  # data streams neither demuxer turns into tracks
DAMAGE_LOG_INTERVAL_S = 10.0
PROBE_MEDIA_S = 5.0  # media (by dts) Kiln's demuxer waits for every PMT track to be described (PyAV: 5 s too)


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
        self._sink: Callable[[bytes], None] | None = None

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
            if self._sink is not None:
                self._sink(data)
                return True
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

    def divert(self, sink: Callable[[bytes], None] | None) -> None:
        """With a ``sink``: what is queued, then every later ``push``, goes straight to it on the pushing
        thread (under the feed's lock, so calls never overlap and a closed feed makes none). None: queue again."""
        with self._cond:
            if sink is not None:
                while self._chunks or len(self._head):
                    sink(self._take(self.max_bytes))
            self._sink = sink

    def wait(self, stopped: Callable[[], bool]) -> None:
        """Block until the feed is closed (going idle for ``idle_timeout_s`` closes it) or ``stopped()``
        is true; ``wake`` makes it check again."""
        with self._cond:
            while self.closed_reason is None and not stopped() and self._wait_or_idle_out():
                pass

    def _wait_or_idle_out(self) -> bool:
        """With the condition held: wait for a push or a wake; False once the feed went idle too long
        (it is then closed)."""
        if self.idle_timeout_s is None:
            self._cond.wait()
            return True
        idle = time.monotonic() - self._last_push
        if idle >= self.idle_timeout_s:
            self.closed_reason = f"no data for {int(self.idle_timeout_s * 1000)} ms"
            return False
        self._cond.wait(self.idle_timeout_s - idle)
        return True

    def wake(self) -> None:
        with self._cond:
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
                if self.closed_reason is not None or not self._wait_or_idle_out():
                    return b""


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
        name_os_thread(self._thread, "kiln-ts-demux")
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
        self.feed.wake()

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
        free_thread()  # not on the actors' CPU, whoever started it (kiln/control_cpu.py)
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

    def _open(self, kinds: list[MediaKind]) -> LiveStream | str:
        """Open the live stream carrying ``kinds`` (one per track the PMT announces), or say why not (a stop
        asked meanwhile, a refusal). It starts once every announced audio track is described: one that was
        described later would come after the stream's tracks were fixed (and its id taken by the data track)."""
        if self._stop_reason is not None:
            return self._stop_reason
        try:
            stream = self.hooks.open_stream(set(kinds))
        except PublishRejected as exc:
            return f"rejected: {exc.reason}"
        stream.expected = set(kinds)
        stream.expected_audio_tracks = max(1, kinds.count(MediaKind.AUDIO))
        self.stream = stream
        return stream

    def _demux(self) -> str:
        prefix = self._read_prefix()
        if len(prefix) < SYNC_CHECK_BYTES:
            return self._input_ended("input ended before any MPEG-TS packet")
        offset = ts_sync_offset(prefix)
        if offset is None:
            log.warning("ts input rejected input=%s reason=not MPEG-TS first_bytes=%s", self.label,
                        prefix[:16].hex())
            return "input is not MPEG-TS (no 0x47 sync bytes 188 bytes apart)"
        demuxer, held, units = self._probe(prefix[offset:])
        if self._stop_reason is not None:
            return self._stop_reason
        if _fast_demux_fits(demuxer):
            return self._stream_kiln(demuxer, units)
        try:
            container = av.open(_PrefixedReader(b"".join(held), self.feed), "r", format="mpegts")
        except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
            return self._input_ended(f"MPEG-TS probe failed: {exc}")
        try:
            return self._stream(container)
        finally:
            container.close()

    def _probe(self, first: bytes) -> tuple[tsdemux.TsDemuxer, list[bytes], list[tsdemux.PesPacket]]:
        """Read until the PAT and PMT are known (or PROBE_BYTES): the demuxer, every byte read, PES so far."""
        demuxer = tsdemux.TsDemuxer()
        held = [first]
        units = demuxer.feed(first)
        size = len(first)
        while not demuxer.pmt_known and size < PROBE_BYTES and self._stop_reason is None:
            more = self.feed.read(READ_CHUNK)
            if not more:
                break
            held.append(more)
            size += len(more)
            units += demuxer.feed(more)
        return demuxer, held, units

    def _stream_kiln(self, demuxer: tsdemux.TsDemuxer, units: list[tsdemux.PesPacket]) -> str:
        """Kiln's own demuxer: large reads, PES by PES into the converter. Like PyAV's probe, the stream is
        opened once every track of the PMT is described (or PROBE_MEDIA_S of media went by without it), so
        it is listed with all its tracks; what was converted meanwhile follows at once, in order."""
        converter = AvConverter(TsClock(self.label))
        codecs: dict[int, Codec] = {}
        for es in demuxer.streams.values():
            codec = FAST_CODECS.get(es.stream_type)
            if codec is not None:
                converter.add_track(es.pid, codec, TS_TIME_BASE)
                codecs[es.pid] = codec
        held: list[Track | Packet] = []
        described: set[int] = set()
        span = _Span()
        changes = demuxer.changes
        while True:
            for track, packets in self._convert(converter, codecs, units):
                if track is not None:
                    held.append(track)
                    described.add(track.id)
                held += packets
                span.add(packets)
            if len(described) >= len(codecs) or span.seconds >= PROBE_MEDIA_S:
                break
            if self._stop_reason is not None:
                return self._stop_reason
            chunk = self.feed.read(READ_CHUNK)
            if not chunk:
                units = demuxer.flush() if self.feed.closed_reason is not None else []
                for track, packets in self._convert(converter, codecs, units):
                    if track is not None:
                        held.append(track)
                    held += packets
                break
            units = demuxer.feed(chunk)
            if demuxer.changes != changes:
                changes = demuxer.changes
                _follow_pmt(self.label, demuxer, converter, codecs)
        stream = self._open([codec.kind for codec in codecs.values()])
        if isinstance(stream, str):
            return stream
        log.info("ts input demuxing input=%s tracks=%s demuxer=kiln", self.label,
                 ",".join(f"{c.kind.value}:{c.value.lower()}@{pid}" for pid, c in codecs.items()))
        for item in held:
            if isinstance(item, Track):
                stream.on_track(item)
            else:
                stream.ingest(item)
        del held
        inline = _InlineDemux(self, demuxer, converter, codecs, stream, changes)
        self.feed.divert(inline.take)
        try:
            self.feed.wait(lambda: self._stop_reason is not None)
        finally:
            self.feed.divert(None)
        if self._stop_reason is not None:
            return self._stop_reason
        inline.take_units(demuxer.flush())  # the source ended: what was still being assembled is complete
        return self._input_ended("input ended")

    @staticmethod
    def _convert(converter: AvConverter, codecs: dict[int, Codec],
                 units: list[tsdemux.PesPacket]) -> Iterator[tuple[Track | None, list[Packet]]]:
        for unit in units:
            if unit.pid not in codecs:
                continue
            if unit.dts is None:  # an audio PES may leave its PTS out; a video one without is dropped
                yield converter.continue_adts(unit.pid, unit.data)
            else:
                yield converter.convert_data(unit.pid, unit.data, unit.dts, unit.dts if unit.pts is None else unit.pts,
                                             0, True if unit.random_access else None)

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
        stream = self._open([MediaKind.VIDEO if s.type == "video" else MediaKind.AUDIO for s in usable])
        if isinstance(stream, str):
            return stream
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


def _fast_demux_fits(demuxer: tsdemux.TsDemuxer) -> bool:
    """Kiln's demuxer takes the input when its PMT lists only codecs it reads (and data it may ignore)."""
    types = {es.stream_type for es in demuxer.streams.values()}
    return demuxer.pmt_known and bool(types & FAST_CODECS.keys()) and types <= FAST_CODECS.keys() | IGNORED_STREAM_TYPES


def _follow_pmt(label: str, demuxer: tsdemux.TsDemuxer, converter: AvConverter, codecs: dict[int, Codec]) -> None:
    """A new PMT: a stream that moved to another PID keeps its track (same codec, old PID gone); a stream
    that was not there at the start is not carried (the stream's tracks are fixed once it is open)."""
    current = {es.pid: FAST_CODECS.get(es.stream_type) for es in demuxer.streams.values()}
    for pid, codec in current.items():
        if codec is None or codecs.get(pid) is codec:
            if codec is None and pid not in codecs and demuxer.streams[pid].stream_type not in IGNORED_STREAM_TYPES:
                log.info("ts stream not carried input=%s pid=%d stream_type=0x%02x", label, pid,
                         demuxer.streams[pid].stream_type)
            continue
        gone = next((old for old, c in codecs.items() if c is codec and current.get(old) is not codec), None)
        if gone is None:
            log.info("ts stream added after start not carried input=%s pid=%d codec=%s", label, pid, codec.value)
            continue
        converter.alias(pid, gone)
        codecs[pid] = codecs.pop(gone)
        log.info("ts stream moved input=%s codec=%s from_pid=%d to_pid=%d", label, codec.value, gone, pid)


class _InlineDemux:
    """Once the stream is open, Kiln's demuxer runs on the thread that pushes the bytes (the event loop:
    once per SRT listener pass, per UDP datagram): no hand-over to the worker thread, whose wake-ups cost
    more than the demuxing. The worker only waits for the end."""

    def __init__(self, worker: TsDemuxWorker, demuxer: tsdemux.TsDemuxer, converter: AvConverter,
                 codecs: dict[int, Codec], stream: LiveStream, changes: int) -> None:
        self.worker = worker
        self.demuxer = demuxer
        self.converter = converter
        self.codecs = codecs
        self.stream = stream
        self.changes = changes
        self.damage = _DamageLog(worker.label, demuxer)

    def take(self, chunk: bytes) -> None:
        worker = self.worker
        if worker._stop_reason is not None:
            return
        try:
            units = self.demuxer.feed(chunk)
            if self.demuxer.changes != self.changes:
                self.changes = self.demuxer.changes
                _follow_pmt(worker.label, self.demuxer, self.converter, self.codecs)
            self.take_units(units)
            self.damage.check()
        except Exception:
            log.exception("ts demux failed input=%s", worker.label)
            worker.stop("internal error")

    def take_units(self, units: list[tsdemux.PesPacket]) -> None:
        stream = self.stream
        for track, packets in TsDemuxWorker._convert(self.converter, self.codecs, units):
            if track is not None:
                stream.on_track(track)
            for packet in packets:
                stream.ingest(packet)


class _Span:
    """Seconds of media seen while probing (newest minus first dts, TS ticks)."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.seconds = 0.0

    def add(self, packets: list[Packet]) -> None:
        if packets:
            if self.first is None:
                self.first = packets[0].dts
            self.seconds = max(self.seconds, (packets[-1].dts - self.first) / 90_000)


class _DamageLog:
    """Warns about continuity gaps, lost sync and the like: looked at once a second, logged at most every
    DAMAGE_LOG_INTERVAL_S (with the totals so far)."""

    FIELDS = ("cc_errors", "duplicates", "resyncs", "skipped_bytes", "transport_errors", "scrambled", "bad_pes",
              "crc_errors")

    def __init__(self, label: str, demuxer: tsdemux.TsDemuxer) -> None:
        self.label = label
        self.demuxer = demuxer
        self.seen = self._counts()
        self.last_log = 0.0
        self.next_look = 0.0

    def _counts(self) -> tuple[int, ...]:
        return tuple(getattr(self.demuxer, name) for name in self.FIELDS)

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_look:
            return
        self.next_look = now + 1.0
        counts = self._counts()
        if counts == self.seen or now - self.last_log < DAMAGE_LOG_INTERVAL_S:
            return
        self.last_log, self.seen = now, counts
        log.warning("ts input damaged input=%s %s", self.label,
                    " ".join(f"{name}={value}" for name, value in zip(self.FIELDS, counts, strict=True)))
