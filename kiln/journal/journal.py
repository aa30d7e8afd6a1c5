"""The append-only journal: group commit by the appending threads, segments, listeners.

``append`` writes on the caller's thread (leader/follower group commit): the first appender that
finds no commit under way becomes the leader; it takes every append queued so far, numbers the
records, writes them with one ``write`` and one ``fsync``, tells the listeners (projections) in
sequence order, and only then completes the futures; then it takes what queued up meanwhile, and
so on. Appenders that come while a commit is under way only queue their records and return their
future: the leader's next round carries them, so many writers share each fsync, and a lone writer
pays no hand-off to another thread (each costs 9-16 us of CPU, more than framing a record). When a
commit woke many threads blocked in ``result()`` (``GATHER_MIN``), the next one first waits for nearly as
many appends (``_gather``; while they keep coming, 2 ms at most): those threads usually append again at once. A
leader that keeps finding more work hands it, after ``LEAD_ROUNDS`` rounds, to the journal's standby
thread, so no caller waits for others' fsyncs without bound; a thread that runs an asyncio event
loop never waits for the disk either, and hands its append to the standby thread at once, as does a
thread that serves a queue while more work waits in it (an actor with commands in its mailbox:
``defer_commits_while``), so a burst of commands to one actor is not held up one fsync per command.

So a caller that waited for its future sees its own effect in every read model, and a crash can
lose only appends whose futures never completed.

A record arrives encoded (``NewRecord.encoded``, from ``framing.encode_tail``: the event log encodes a command's
events before they change any actor's state), so a value the journal cannot store is refused before the append
(``JournalRecordError``) and a commit only numbers, frames and writes. A write or fsync that fails (EIO, EFBIG, a
full disk once the reserve is spent) stops the journal for good (``failure``): the appends of that commit and every
later one fail with ``JournalFailedError``. Going on would be dishonest: the actors that decided the failed commands
have applied them (their callers got an error, and ``GET /v1/status`` says why), and a later command would build on
that state, durably, so what a restart rebuilds would differ from what the API answered, silently. Stopped, nothing
more is acknowledged that is not in the journal; a restart (once the disk is fixed) rebuilds every actor from what
is durable. Rolling the actors back instead would need each to rebuild its aggregate from the journal while
commands keep coming, and the fsync that failed may have lost pages already written (it cannot be retried).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import zlib
from asyncio import _get_running_loop
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kiln.journal.errors import JournalClosedError, JournalFailedError, JournalRecordError
from kiln.journal.framing import HEADER, encode_tail, pack_committed
from kiln.journal.reader import StoredFields, iter_records, iter_stored, iter_stored_batches, scan_tail
from kiln.journal.records import NewRecord, Record
from kiln.journal.reserve import DiskReserve
from kiln.journal.segments import fsync_dir, journal_dir, list_segments, segment_path
from kiln.journal.wake import CommitWake, DurableFuture
from kiln.metrics.journal import JournalCounters

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
LEAD_ROUNDS = 4  # commits a leader makes (its own first) before the standby thread takes over
GATHER_MIN = 8  # threads woken by a commit from which the next commit waits for their appends (_gather)
GATHER_GAP = 0.0002  # the gathering commit stops waiting when no append came for this long
GATHER_LIMIT = 0.002  # or after this long in all

_thread_policy = threading.local()
_ARRAY6 = b"\x96"  # a frame's body: a msgpack array of six (framing.frame_parts)
_header, _crc32, _HEADER_SIZE = HEADER.pack, zlib.crc32, HEADER.size


def defer_commits_while(busy: Callable[[], bool]) -> None:
    """For the calling thread, which serves a queue (an actor's mailbox): while ``busy()`` says more work
    waits for it, its appends are committed by the standby thread instead of by itself, so that work is not
    held up by an fsync (group commit then carries a burst of such appends together)."""
    _thread_policy.busy = busy


def _hands_off() -> bool:
    """True on a thread that must not wait for the disk now: one running an event loop, or one whose
    queue has more work (``defer_commits_while``)."""
    if _get_running_loop() is not None:
        return True
    busy = getattr(_thread_policy, "busy", None)
    return busy is not None and busy()
Listener = Callable[[list[Record]], None]


@dataclass
class OpenReport:
    """What opening found: shown in the startup log and by ``kiln journal stats``."""

    segments: int = 0
    last_seq: int = 0
    truncated_file: str | None = None
    truncated_bytes: int = 0
    truncated_reason: str = ""
    notes: list[str] = field(default_factory=list)


# one append waiting in the queue: its records and its future. A future its waiter cancelled (an asyncio task
# awaiting it through ``wrap_future`` was cancelled) is left alone by the commit (DurableFuture.settle): the
# records' fate is the journal's either way, and the committing thread, which may be any appender, carries on.
_Append = tuple[list[NewRecord], list[bytes], DurableFuture[list[Record]]]  # with each record's encode_tail

# a Record made field by field through its slots: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which was a tenth of the CPU an append costs with 64 writers (records.py stays frozen)
_new_object = object.__new__
_set_seq, _set_time, _set_entity, _set_type, _set_version, _set_payload = (
    Record.__dict__[name].__set__ for name in ("seq", "time", "entity", "type", "version", "payload"))


class Journal:
    def __init__(self, directory: Path, *, segment_bytes: int, fsync: bool,
                 counters: JournalCounters | None = None) -> None:
        self.directory = directory
        self.counters = counters if counters is not None else JournalCounters()  # one committer at a time
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.open_report = OpenReport()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()  # guards the fields below, never held across a write
        self._pending: list[_Append] = []
        self._wake = CommitWake()  # the wake-up of the commit that will carry what is pending (wake.py)
        self._leading = False     # a thread is committing (or the standby is due to): others only queue
        self._standby_due = False  # the lead was handed to the standby thread
        self._stopping = False     # close(): the standby thread ends
        self._standby_wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)  # the lead was put down (close() waits for it)
        self._arrived = threading.Condition(self._lock)  # _quorum appends are queued (_gather)
        self._quorum = 0  # how many queued appends the leader waits for; 0: it does not wait
        self._closed = False
        self._last_seq = 0
        self._failed: str | None = None  # why a failed write stopped the journal (``failure``)
        self._file: BinaryIO | None = None
        self._size = 0
        # bytes of records this process wrote (every segment): the tail a restart would replay is measured by it
        self.bytes_appended = 0
        self.reserve: DiskReserve | None = None  # space that lets a full disk refuse commands (reserve.py)
        self._thread = threading.Thread(target=self._standby, name="kiln-journal", daemon=True)

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: str | Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES,
             fsync: bool = True, counters: JournalCounters | None = None, reserve_bytes: int = 0) -> Journal:
        """Open (or create) the journal in ``data_dir/journal``, cutting a torn last frame; with
        ``reserve_bytes``, keep that much disk space aside for a full disk (reserve.py)."""
        directory = journal_dir(Path(data_dir))
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory, segment_bytes=segment_bytes, fsync=fsync, counters=counters)
        journal._recover()
        if reserve_bytes > 0:
            journal.reserve = DiskReserve(directory, reserve_bytes)
            if not journal.reserve.ensure():
                log.error("journal reserve not allocated bytes=%d: the disk is full, commands are refused",
                          reserve_bytes)
        journal._thread.start()
        return journal

    def _recover(self) -> None:
        segments = list_segments(self.directory)
        report = self.open_report
        report.segments = len(segments)
        if not segments:
            self._open_segment(1)
            return
        first_seq, path = segments[-1]
        found = scan_tail(path, first_seq)
        if found.stop is not None:
            cut = found.size - found.valid_bytes
            log.warning("journal torn tail cut file=%s offset=%d bytes=%d reason=%s", path, found.valid_bytes,
                        cut, found.stop.reason)
            with open(path, "r+b") as fh:
                fh.truncate(found.valid_bytes)
                os.fsync(fh.fileno())
            report.truncated_file, report.truncated_bytes = str(path), cut
            report.truncated_reason = found.stop.reason
        self._last_seq = found.last_seq
        report.last_seq = found.last_seq
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - owned until close()
        self._size = found.valid_bytes

    def _open_segment(self, first_seq: int) -> None:
        if self._file is not None:
            self._file.close()
        path = segment_path(self.directory, first_seq)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - owned until close()
        self._size = 0
        fsync_dir(self.directory)

    # -- public API --------------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def failure(self) -> str | None:
        """Why the journal stopped taking appends (a failed write), or None while it takes them."""
        return self._failed

    def bytes_after(self, seq: int) -> int:
        """About how many bytes the records after ``seq`` take in the segments (what a restart from a snapshot at
        ``seq`` replays): whole segments that begin after it, and of the one holding ``seq + 1`` the share of its
        records that come after. Lists and stats the segment files: once, at startup, not per request."""
        segments = list_segments(self.directory)
        total = 0
        for index, (first, path) in enumerate(segments):
            # its records: seq first up to end (excluded)
            end = segments[index + 1][0] if index + 1 < len(segments) else self._last_seq + 1
            if end <= seq + 1:
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue
            total += size if first > seq else size * (end - seq - 1) // max(1, end - first)
        return total

    def add_listener(self, fn: Listener) -> None:
        """``fn(records)`` runs after each durable write, in order, on the thread that committed it (an
        appender or the standby thread, one commit at a time): it must not block."""
        self._listeners.append(fn)

    def append(self, records: list[NewRecord]) -> Future[list[Record]]:
        """Queue ``records`` as one atomic append; commit them (and whatever else is queued) on this thread
        unless a commit is already under way. The future completes once they are durable; it fails at once with
        ``JournalRecordError`` when a record not encoded yet cannot be (nothing of the append is written)."""
        future: DurableFuture[list[Record]] = DurableFuture()
        try:
            tails = [new.encoded or encode_tail(new.entity, new.type, new.version, new.payload) for new in records]
        except Exception as exc:  # noqa: BLE001 - a value msgpack cannot store (an int beyond 64 bits)
            future.fail(unstorable(records, exc))
            return future
        with self._lock:
            future.wake = self._wake  # the commit that carries this append wakes its waiters
            if self._closed:
                raise JournalClosedError("journal is closed")
            if self._failed is not None:
                raise JournalFailedError(self._failed)
            if not records:
                future.set_result([])
                return future
            pending = self._pending
            pending.append((list(records), tails, future))
            if self._leading:
                if len(pending) == self._quorum:
                    self._arrived.notify()  # the leader waits for this many appends (_gather)
                return future  # the leader's next round carries it
            self._leading = True
            if _hands_off():  # an event loop, or an actor with more commands waiting
                self._standby_due = True
                self._standby_wake.notify()
                return future
        self._lead(LEAD_ROUNDS)
        return future

    def read(self, from_seq: int = 1) -> Iterator[Record]:
        return iter_records(self.directory, from_seq)

    def read_stored(self, from_seq: int = 1) -> Iterator[StoredFields]:
        """Like ``read`` but each record as its stored list ``[seq, time, entity, type, version, payload]`` (the
        payload a map, or its values in layout order: framing.py): what startup replay feeds the projections,
        without building a Record (or a payload map) per event."""
        return iter_stored(self.directory, from_seq)

    def read_stored_lists(self, from_seq: int = 1) -> Iterator[list[StoredFields]]:
        """``read_stored`` in lists of up to ``reader.BATCH`` records (startup replay: one resume per list)."""
        return iter_stored_batches(self.directory, from_seq)

    def close(self) -> None:
        """Finish every queued append, then close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # no append is queued from now on
            self._arrived.notify_all()  # a leader gathering appends commits what it has
            while self._leading:  # the leader (or the standby) commits what is queued, then puts the lead down
                self._idle.wait()
            self._stopping = True
            self._standby_wake.notify()
        if self._thread.is_alive():
            self._thread.join()
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- group commit --------------------------------------------------------------------------------
    def _lead(self, rounds: int | None) -> None:
        """Commit what is queued, round after round, until nothing is (or, after ``rounds`` rounds, hand
        the rest to the standby thread). Only the thread that set ``_leading`` runs this."""
        done = 0
        expected = 0  # appends queued before the last commit's wake-up + the threads it woke (0: too few woken)
        while True:
            with self._lock:
                if expected and len(self._pending) < expected and self.fsync and not self._closed and (
                        rounds is None or done < rounds):  # not when the standby thread takes over now
                    self._gather(expected)
                batch, self._pending = self._pending, []
                wake = self._wake
                if not batch:
                    self._leading = False
                    self._idle.notify_all()
                    return
                if rounds is not None and done >= rounds:
                    self._pending = batch
                    self._standby_due = True
                    self._standby_wake.notify()
                    return
                self._wake = CommitWake()
            try:
                self._commit(batch)
            finally:
                queued = len(self._pending)  # before the wake-up, so none of them is a woken thread's
                woken = wake.wake()
                expected = queued + woken - woken // 8 if woken >= GATHER_MIN else 0  # 7/8: not the last few
            done += 1

    def _gather(self, expected: int) -> None:
        """Wait (holding ``_lock``, which the wait releases) until ``expected`` appends are queued: those queued
        before the last commit woke ``GATHER_MIN`` or more threads blocked in ``result()``, and one more for 7 of
        8 of these threads. They run their next appends meanwhile without this thread taking the GIL back
        between them, and the next commit carries them (one fsync for the group, not one for the first half and
        another for the rest); the last few, a thread the machine's load kept off a core, go with the next.

        It stops waiting as soon as ``GATHER_GAP`` passes with no append (the rest are not on their way: a
        thread that does not append again costs an append that comes meanwhile that long), or after
        ``GATHER_LIMIT`` in all."""
        self._quorum = expected
        pending = self._pending
        deadline = time.perf_counter() + GATHER_LIMIT
        try:
            while len(pending) < expected:
                seen, left = len(pending), deadline - time.perf_counter()
                if left <= 0:
                    return
                self._arrived.wait(min(GATHER_GAP, left))
                if len(pending) == seen:
                    return
        finally:
            self._quorum = 0

    def _standby(self) -> None:
        """The standby thread: leads when a leader handed over, or for an event loop's appends."""
        while True:
            with self._lock:
                while not self._standby_due and not self._stopping:
                    self._standby_wake.wait()
                if not self._standby_due:
                    return
                self._standby_due = False
            self._lead(None)

    def _commit(self, batch: list[_Append]) -> None:
        if self._failed is not None:
            for _records, _tails, future in batch:
                future.fail(JournalFailedError(self._failed))  # one each: a raised exception keeps its traceback
            return
        now = time.time()
        seq = self._last_seq
        results: list[list[Record]] = []
        every: list[Record] = []
        chunks: list[bytes] = []
        size = start_size = self._size
        appended = 0
        limit = self.segment_bytes
        stamp = pack_committed(now)
        pack = pack_committed
        try:
            for news, tails, _future in batch:
                records = []
                for new, encoded in zip(news, tails, strict=True):
                    seq += 1
                    record = _new_object(Record)
                    _set_seq(record, seq)
                    _set_time(record, now)
                    _set_entity(record, new.entity)
                    _set_type(record, new.type)
                    _set_version(record, new.version)
                    _set_payload(record, new.payload)
                    records.append(record)
                    # framing.frame_parts, inlined (once per record): [seq, time, and the record's tail
                    head = _ARRAY6 + pack(seq) + stamp
                    length = len(head) + len(encoded)
                    if size >= limit:
                        self._write(b"".join(chunks))
                        chunks = []
                        self._open_segment(seq)
                        size = start_size = 0
                    chunks += (_header(length, _crc32(encoded, _crc32(head))), head, encoded)
                    size += _HEADER_SIZE + length
                    appended += _HEADER_SIZE + length
                results.append(records)
                every += records
            self._size = size
            self._write(b"".join(chunks))
        except Exception as exc:  # noqa: BLE001 - the failure goes to every waiting caller
            log.error("journal write failed error=%s; the journal stops: every later command is refused until "
                      "Kiln is restarted (the commands of this write were answered with an error, and may show "
                      "in their actors until then)", exc)
            self._failed = f"the journal stopped after a failed write ({exc}); restart Kiln once the disk is fixed"
            self._rollback(start_size)
            for _records, _tails, future in batch:
                future.fail(JournalFailedError(self._failed))
            return
        self.bytes_appended += appended
        self._last_seq = seq
        self.counters.committed(len(every))
        for listener in self._listeners:
            try:
                listener(every)
            except Exception:
                log.exception("journal listener failed")
        for (_records, _tails, future), done in zip(batch, results, strict=True):
            future.settle(done)

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        view = memoryview(data)
        while view:
            try:
                written = self._file.write(view)
            except OSError as exc:
                # a write that did not happen can be tried again once the reserve's space is free; an
                # fsync that failed cannot (the kernel may have dropped the pages), so that one stops
                if exc.errno == errno.ENOSPC and self.reserve is not None and self.reserve.release():
                    continue
                raise
            if written is None:
                raise OSError("journal write would block")
            view = view[written:]
        if self.fsync:
            started = time.perf_counter()
            os.fsync(self._file.fileno())
            self.counters.fsynced(time.perf_counter() - started)

    def _rollback(self, size: int) -> None:
        """Cut whatever a failed batch left in the current segment."""
        try:
            if self._file is not None:
                self._file.truncate(size)
                self._size = size
        except OSError as exc:
            log.error("journal rollback failed error=%s", exc)


def unstorable(news: list[NewRecord], exc: Exception) -> JournalRecordError:
    """The error of an append the journal refused (logged here: the caller may only see its future fail)."""
    what = ", ".join(f"{new.type} {new.entity}" for new in news[:3])
    log.error("journal refused an append it cannot store records=%s error=%s: nothing of it was written; "
              "the journal goes on", what, exc)
    return JournalRecordError(f"the journal cannot store {what}: {exc}")
