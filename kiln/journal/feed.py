"""A live tail of durable journal records: history read back from the files from a sequence number,
then records as the journal fsyncs them.

Why it is shaped this way: the thread committing to the journal must never wait for a reader. On each durable
write it only appends the new records to every tail's bounded buffer and wakes that tail's event loop.
A tail that lets its buffer fill while it is live is cut off: ``batch()`` answers ``None`` and the
reader resumes from ``next_seq`` (an SSE client reconnects with ``Last-Event-ID``, a webhook delivery
opens a new tail from its cursor). Nothing is ever buffered without bound. While a tail is still
catching up from the files, a full buffer costs nothing: the records are durable, so they are read
back from the files in turn. Records are only ever handed out up to the journal's durable sequence,
in order, without a gap or a repeat.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from kiln.events.redact import Redactor
from kiln.journal.records import Record
from kiln.journal.view import record_view

log = logging.getLogger(__name__)

BUFFER_RECORDS = 4096    # live records a tail may hold before it is cut off
BATCH_RECORDS = 256      # records handed out per batch


class DurableSource(Protocol):
    """What the feed needs of the journal: the durable end, reading back, and a word per durable write."""

    @property
    def last_seq(self) -> int: ...

    def read(self, from_seq: int = 1) -> Iterator[Record]: ...

    def add_listener(self, fn: Callable[[list[Record]], None]) -> None: ...


class JournalFeed:
    """Hands out tails; counts what a metrics exporter shows (open tails, cut-offs)."""

    def __init__(self, journal: DurableSource, *, buffer_records: int = BUFFER_RECORDS,
                 batch_records: int = BATCH_RECORDS) -> None:
        self._journal = journal
        self._buffer_records = buffer_records
        self._batch_records = batch_records
        self._lock = threading.Lock()
        self._tails: set[Tail] = set()
        self.cut_offs = 0
        journal.add_listener(self._on_durable)

    @property
    def last_seq(self) -> int:
        """The newest durable sequence number (0 for an empty journal)."""
        return self._journal.last_seq

    @property
    def open_tails(self) -> int:
        return len(self._tails)

    @staticmethod
    def view(record: Record, redactor: Redactor | None) -> dict[str, Any]:
        """The one JSON shape of a record (``kiln journal show --json``), secrets masked by ``redactor``."""
        return record_view(record, redactor)

    def tail(self, from_seq: int) -> Tail:
        """A tail from ``from_seq`` (inclusive), woken on the running event loop. Registered before any
        history is read, so a record fsynced meanwhile is either on disk or in the buffer."""
        found = Tail(self, asyncio.get_running_loop(), max(1, from_seq))
        with self._lock:
            self._tails.add(found)
        return found

    def _forget(self, tail: Tail) -> None:
        with self._lock:
            self._tails.discard(tail)

    def _on_durable(self, records: list[Record]) -> None:
        """On the committing thread (an appender or the journal's standby thread): never blocks, never
        waits for a reader."""
        with self._lock:
            tails = tuple(self._tails)
        for tail in tails:
            tail.offer(records)


class Tail:
    """One reader's position. ``batch()`` waits for records from ``next_seq``; ``None`` means cut off."""

    def __init__(self, feed: JournalFeed, loop: asyncio.AbstractEventLoop, from_seq: int) -> None:
        self._feed = feed
        self._loop = loop
        self.next_seq = from_seq
        self._lock = threading.Lock()
        self._buffer: deque[Record] = deque()
        self._overflow = False
        self._wake_pending = False  # a wake-up is on its way: the writer need not send another (a syscall each)
        self._live = False          # the last batch came from the buffer: a full buffer now cuts off
        self._closed = False
        self._wake = asyncio.Event()
        self._history: Iterator[Record] | None = None
        self._peeked: Record | None = None

    # -- committing thread -----------------------------------------------------------------------
    def offer(self, records: list[Record]) -> None:
        with self._lock:
            if self._closed or self._overflow:
                return
            if len(self._buffer) + len(records) > self._feed._buffer_records:
                self._overflow = True
                self._buffer.clear()
            else:
                self._buffer.extend(records)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the reader's loop is gone: nothing left to wake
            self.close()

    # -- reader (its event loop) -----------------------------------------------------------------
    async def batch(self) -> list[Record] | None:
        """The next records in order (at least one), or ``None`` once cut off or closed."""
        while not self._closed:
            self._wake.clear()
            with self._lock:
                self._wake_pending = False
                taken = list(self._buffer)
                self._buffer.clear()
                overflow, self._overflow = self._overflow, False
            if overflow and self._live:
                self._feed.cut_offs += 1
                log.info("journal feed cut off a slow reader next_seq=%d", self.next_seq)
                self.close()
                return None
            fresh = [r for r in taken if r.seq >= self.next_seq]
            if fresh and fresh[0].seq == self.next_seq:
                self._live = True
                self._history = None
                return self._hand_out(fresh)
            durable = self._feed.last_seq
            if self.next_seq <= durable:  # a gap the files can fill (history, or a buffer dropped while catching up)
                self._live = False
                found = await asyncio.to_thread(self._read_history, durable)
                if found:
                    return self._hand_out(found)
                continue
            await self._wake.wait()
        return None

    def _hand_out(self, records: list[Record]) -> list[Record]:
        self.next_seq = records[-1].seq + 1
        return records

    def _read_history(self, durable: int) -> list[Record]:
        """Up to a batch of durable records from ``next_seq``, reading on from the last call's position."""
        out: list[Record] = []
        want = self.next_seq
        while len(out) < self._feed._batch_records:
            record = self._peeked
            self._peeked = None
            if record is None:
                if self._history is None:
                    self._history = self._feed._journal.read(want)
                record = next(self._history, None)
                if record is None:
                    self._history = None  # the file ended as read: reopen next time
                    break
            if record.seq < want:
                continue
            if record.seq > durable or record.seq != want:
                self._peeked = record if record.seq == want else None
                if record.seq != want:
                    self._history = None  # not the record expected: read again from the files
                break
            out.append(record)
            want += 1
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._buffer.clear()
        self._history = None
        self._feed._forget(self)
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:
            pass
