"""One recording session: a worker thread that records an output stream into split files.

It starts at the first keyframe of the default track (first video, else first audio), splits by
``interval`` (at the next default-track keyframe once the file is longer than the interval) or by
``schedule`` (at the first default-track keyframe at or after each scheduled wall-clock time —
OME splits there regardless of keyframes, which leaves files that start undecodable), and
finishes each file under its final name with an info-XML entry. A
:class:`~kiln.media.publish.contract.Publisher`: ``detach`` finishes the current file (not the
last sequence: that is ``stop(last_sequence=True)``, for stopRecord).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.record.info import FileEntry, append_entry
from kiln.media.publish.record.paths import MacroValues, container_for, expand, real_path
from kiln.media.publish.record.schedule import next_time
from kiln.media.publish.record.writer import FileWriter, Inflight, finish_file, temp_name
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import OutputStream
from kiln.media.worker import WorkerThread
from kiln.timefmt import now

log = logging.getLogger(__name__)

SUPPORTED = {
    "mp4": {Codec.H264, Codec.H265, Codec.AAC, Codec.MP3},
    "mpegts": {Codec.H264, Codec.H265, Codec.VP8, Codec.VP9, Codec.AAC, Codec.MP3, Codec.OPUS},
    "webm": {Codec.VP8, Codec.VP9, Codec.OPUS},
}


@dataclass(frozen=True)
class CounterSample:
    """One consistent reading of a task's live counters for the API (taken on another thread)."""

    record_bytes: int
    record_time_ms: int
    finished: tuple[int, int, int] | None  # (sequence, bytes, ms) of the last file this session finished


@dataclass
class RecordCounters:
    record_bytes: int = 0    # of the current file
    started_at: float = 0.0  # monotonic start of the current file
    bytes_out: int = 0       # of every file written through these counters
    finished: tuple[int, int, int] | None = None  # the last finished file: (sequence, bytes, ms)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def record_time_ms(self) -> int:
        return int((time.monotonic() - self.started_at) * 1000) if self.started_at else 0

    def file_finished(self, sequence: int, record_bytes: int, record_time_ms: int) -> None:
        """The file's final figures replace its live ones in one step, so a reader never sees the
        file in flight reset before its finished size is there (the API's totals would go back)."""
        with self._lock:
            self.finished = (sequence, record_bytes, record_time_ms)
            self.started_at = 0.0
            self.record_bytes = 0

    def sample(self) -> CounterSample:
        with self._lock:
            return CounterSample(self.record_bytes, self.record_time_ms, self.finished)


@dataclass
class FinishedFile:
    sequence: int
    file_path: str          # the expanded template (without rootPath), as the API shows it
    info_path: str
    real_path: str
    record_bytes: int
    record_time_ms: int
    start_time: float
    finish_time: float
    last_sequence: bool


@dataclass
class RecordPlan:
    vhost: str
    app: str
    id: str
    transaction_id: str
    stream: str
    file_template: str
    info_template: str
    root: str
    data_dir: Path
    interval: int
    schedule: str
    continuity: bool
    metadata: str
    created_time: float
    variant_names: list[str] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)


def select_record_tracks(tracks: list[Track], container: str, variant_names: list[str],
                         track_ids: list[int]) -> tuple[list[Track], list[str]]:
    media = sorted((t for t in tracks if t.kind in (MediaKind.VIDEO, MediaKind.AUDIO)), key=lambda t: t.id)
    if variant_names or track_ids:
        media = [t for t in media if t.id in track_ids or (t.name and t.name in variant_names)]
    kept = [t for t in media if t.codec in SUPPORTED[container]]
    skipped = [f"track {t.id} ({t.name or t.kind.value}, {t.codec.value}) cannot be stored in {container}"
               for t in media if t.codec not in SUPPORTED[container]]
    return kept, skipped


class RecordSession:
    def __init__(self, name: str, plan: RecordPlan, output: OutputStream, sequence: int, counters: RecordCounters,
                 on_file: Callable[[FinishedFile], None], on_error: Callable[[str], None],
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.plan = plan
        self.output = output
        self.sequence = sequence
        self.counters = counters
        self.on_file = on_file
        self.on_error = on_error
        self.on_bytes = on_bytes
        self.container = container_for(plan.file_template)
        self.tracks: list[Track] = []
        self.skipped: list[str] = []
        self.default_track: Track | None = None
        self._sub = Subscriber(f"record:{name}", max_packets=6000, policy="drop")
        self._select_tracks()
        self._final_last_sequence = False
        self._worker = WorkerThread(f"record-{name}", self._run, self._crashed)
        self._writer: FileWriter | None = None
        self._inflight: Inflight | None = None
        self._file_start_wall = 0.0
        self._file_start_media: Fraction | None = None
        self._base: Fraction | None = None
        self._last_dts: dict[int, int] = {}
        self._next_split: float | None = None
        self.output_file_path = ""
        self.output_info_path = ""

    # -- control (actor thread) --
    def prepare(self) -> None:
        """Fail now, synchronously, if nothing can be recorded or the target is not writable."""
        if not self.tracks:
            raise OSError(0, "no track can be recorded in this container" +
                          (f" ({'; '.join(self.skipped)})" if self.skipped else ""))
        target = self._target_dir(now())
        target.mkdir(parents=True, exist_ok=True)
        probe = target / (temp_name() + ".probe")
        probe.write_bytes(b"")
        probe.unlink()

    def start(self) -> None:
        self.attach(self.output)

    def attach(self, output: OutputStream) -> None:
        """Subscribe to ``output`` and record it on the session's thread from its next keyframe."""
        if output is not self.output:
            self.output = output
            self._select_tracks()
        # what the API shows from the first moment (OME: the expanded templates, StartTime = now);
        # refreshed when the first file really opens
        started = now()
        self.output_file_path = expand(self.plan.file_template, self._values(started))
        self.output_info_path = expand(self.plan.info_template, self._values(started))
        self.output.hub.subscribe(self._sub, from_keyframe=True)
        self._worker.start()

    def detach(self, reason: str) -> None:
        log.info("recording detached name=%s reason=%s", self.name, reason)
        self.stop(last_sequence=False)

    @property
    def attached(self) -> bool:
        return self._worker.alive

    def stop(self, last_sequence: bool, timeout: float = 30.0) -> None:
        """Finish the current file (``lastSequence`` true for stopRecord) and end the thread."""
        self._final_last_sequence = last_sequence
        self._worker.stop()
        self._sub.end("stopped")
        self._worker.join(timeout)

    # -- helpers --
    def _select_tracks(self) -> None:
        """The output's tracks this container can hold; the default track (first video, else audio) leads."""
        self.tracks, self.skipped = select_record_tracks(self.output.track_list(), self.container,
                                                         self.plan.variant_names, self.plan.track_ids)
        video = [t for t in self.tracks if t.kind is MediaKind.VIDEO]
        self.default_track = (video or self.tracks)[0] if self.tracks else None
        self._sub.video_track_ids = frozenset(t.id for t in video)

    def _values(self, start: float, end: float = 0.0) -> MacroValues:
        p = self.plan
        return MacroValues(p.transaction_id, p.id, p.vhost, p.app, p.stream, self.sequence, start, end)

    def _target_dir(self, start: float) -> Path:
        expanded = expand(self.plan.file_template, self._values(start))
        return real_path(self.plan.root, expanded, self.plan.data_dir).parent

    # -- worker --
    def _run(self) -> None:
        try:
            self._loop()
        except OSError as exc:
            log.error("recording failed name=%s error=%s", self.name, exc)
            self._abort_file()
            self.on_error(exc.strerror or str(exc))
        finally:
            self._sub.close()

    def _crashed(self, exc: Exception) -> None:
        self._abort_file()
        self.on_error(f"internal error: {exc}")

    def _loop(self) -> None:
        ids = {t.id for t in self.tracks}
        while True:
            packet = self._sub.get(timeout=0.5)
            if packet is None:
                if self._sub.ended or self._worker.stopping:
                    if self._sub.closed_reason == "slow consumer" and not self._worker.stopping:
                        raise OSError(0, "the disk is too slow: recording dropped to protect the stream")
                    self._finish_file(self._final_last_sequence)
                    return
                continue
            if packet.track_id not in ids:
                continue
            if self._writer is None:
                if not self._is_default_key(packet):
                    continue
                self._open_file(packet)
            elif self._should_split(packet):
                self._finish_file(False)
                self._open_file(packet)
            self._write(packet)

    def _is_default_key(self, packet: Packet) -> bool:
        d = self.default_track
        return d is not None and packet.track_id == d.id and (packet.keyframe or d.kind is MediaKind.AUDIO)

    def _should_split(self, packet: Packet) -> bool:
        if not self._is_default_key(packet):
            return False
        if self.plan.interval > 0 and self._file_start_media is not None:
            # media time, not wall clock: a keyframe exactly one interval in starts the next file
            elapsed_ms = (packet.dts * packet.time_base - self._file_start_media) * 1000
            return elapsed_ms >= self.plan.interval
        if self.plan.schedule and self._next_split is not None:
            return now() >= self._next_split
        return False

    def _open_file(self, packet: Packet) -> None:
        start = now()
        target = self._target_dir(start)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / temp_name()
        p = self.plan
        self._inflight = Inflight(p.vhost, p.app, p.id, p.transaction_id, p.stream, self.sequence, str(tmp),
                                  self.container, p.file_template, p.info_template, p.root, str(p.data_dir),
                                  p.created_time, start, p.metadata, p.interval, p.schedule)
        self._inflight.save()
        self._writer = FileWriter(tmp, self.container, self.tracks)
        self._file_start_wall = start
        media_start = packet.dts * packet.time_base
        self._file_start_media = media_start
        if self._base is None or not p.continuity:
            self._base = media_start
        self._last_dts = {}
        self.counters.record_bytes = 0
        self.counters.started_at = time.monotonic()
        if p.schedule:
            self._next_split = next_time(p.schedule, start)
        self.output_file_path = expand(p.file_template, self._values(start))
        self.output_info_path = expand(p.info_template, self._values(start))
        log.info("recording file started name=%s sequence=%d tmp=%s", self.name, self.sequence, tmp)

    def _write(self, packet: Packet) -> None:
        assert self._writer is not None and self._base is not None
        offset = int(self._base / packet.time_base)
        dts = packet.dts - offset
        if dts < 0 or (packet.track_id in self._last_dts and dts <= self._last_dts[packet.track_id]):
            return
        self._last_dts[packet.track_id] = dts
        before = self._writer.bytes
        self._writer.write(packet, offset)
        grew = self._writer.bytes - before
        self.counters.record_bytes += grew
        self.counters.bytes_out += grew
        if self.on_bytes is not None:
            self.on_bytes(grew)

    def _finish_file(self, last_sequence: bool) -> None:
        writer, inflight = self._writer, self._inflight
        if writer is None or inflight is None:
            return
        self._writer = None
        record_time = self.counters.record_time_ms
        writer.close()
        end = now()
        finished = finish_inflight(inflight, end, record_time, last_sequence)
        inflight.remove()
        self.counters.file_finished(finished.sequence, finished.record_bytes, finished.record_time_ms)
        self.sequence += 1
        self.on_file(finished)

    def _abort_file(self) -> None:
        """After an error: keep what was written (it is finished at next start by recovery)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                log.debug("closing failed recording name=%s error=%s", self.name, exc)
            self._writer = None


def finish_inflight(inflight: Inflight, end: float, record_time_ms: int, last_sequence: bool) -> FinishedFile:
    """Name the file (EndTime known now), move it into place and append its info-XML entry.

    The entry's filePath is where the file really is (rootPath joined), so a script can open it."""
    values = MacroValues(inflight.transaction_id, inflight.id, inflight.vhost, inflight.app, inflight.stream,
                         inflight.sequence, inflight.start_time, end)
    data_dir = Path(inflight.data_dir)
    file_path = expand(inflight.file_template, values)
    info_path = expand(inflight.info_template, values)
    final = real_path(inflight.root, file_path, data_dir)
    size = finish_file(Path(inflight.tmp_path), final, inflight.container)
    append_entry(real_path(inflight.root, info_path, data_dir), FileEntry(
        inflight.transaction_id, inflight.id, inflight.metadata, inflight.vhost, inflight.app, inflight.stream,
        str(final), size, record_time_ms, inflight.sequence, last_sequence, inflight.created_time,
        inflight.start_time, end, inflight.interval, inflight.schedule))
    log.info("recording file finished id=%s sequence=%d path=%s bytes=%d", inflight.id, inflight.sequence,
             final, size)
    return FinishedFile(inflight.sequence, file_path, info_path, str(final), size, record_time_ms,
                        inflight.start_time, end, last_sequence)


if TYPE_CHECKING:  # mypy holds the class to the publisher contract
    from kiln.media.publish.contract import Publisher

    _conforms: type[Publisher] = RecordSession
