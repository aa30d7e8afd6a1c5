"""Journal records for people who ask over HTTP (the console's timeline, ``GET /v1/journal``).

Polling with ``after=<seq>`` must be cheap while the journal grows to millions of records, so the
newest records are kept in memory (fed by the journal's durable-append listener, in sequence
order) and only a query reaching further back reads segment files, newest segment first, stopping
as soon as it has enough. Records are shown as ``record_view()`` with secrets masked by one
long-lived redactor that learns every secret-bearing record this process appended or read, so a
stream key repeated in a later error text is masked too.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiln.events import registered_types
from kiln.events.redact import SECRET_KEYS, Redactor
from kiln.journal.errors import JournalCorruptError
from kiln.journal.framing import ScanStop, scan
from kiln.journal.reader import iter_records
from kiln.journal.records import Record
from kiln.journal.segments import list_segments
from kiln.journal.view import record_view

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
KEEP_IN_MEMORY = 5000
# and at most about this many bytes of them: a progress record costs ~300 bytes, but a PATCH of an app keeps the
# app's whole configuration (5 kB for a bare one, and a body may be 1 MiB), so 5,000 of those would hold
# hundreds of MB to GBs for a console that reads the newest 100
KEEP_BYTES = 16 << 20
_RECORD_COST = 200  # the Record, its float time, entity and type strings and payload dict, before the payload's items


class QueryError(ValueError):
    """A filter that cannot mean anything (unknown event type, limit out of range)."""


@lru_cache(maxsize=1024)
def _names_secret(key: object) -> bool:
    """A payload key that holds a secret (``stream_key``, ``streamKey``, ``passphrase``...)."""
    return isinstance(key, str) and key.replace("_", "").replace("-", "").lower() in SECRET_KEYS


def _bears_secret(record: Record) -> bool:
    """Asked for every record on the write path and at replay: one lookup per payload layout (an
    event type has one), not one per key."""
    return _layout_bears_secret(tuple(record.payload))


@lru_cache(maxsize=4096)
def _layout_bears_secret(keys: tuple[Any, ...]) -> bool:
    return any(_names_secret(key) for key in keys)


def _json_safe(value: Any) -> Any:
    """msgpack payloads may hold bytes; JSON cannot (the CLI prints repr(), HTTP the hex digits)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and value != value:  # NaN: not JSON
        return None
    return value


def record_cost(record: Record) -> int:
    """About what ``record`` holds in memory, in bytes (CPython's object sizes, roughly). Runs on the committing
    thread for every record, so a flat payload (most are) costs one pass over its items; nested containers are
    walked with a stack, not recursion, since a payload from a JSON body may nest deeply."""
    cost = _RECORD_COST
    stack: list[Any] = [record.payload]
    while stack:
        container = stack.pop()
        items: Iterable[Any]
        if type(container) is dict:
            cost += 64 + 89 * len(container)  # a slot, and a key string's header
            cost += sum(len(key) for key in container if type(key) is str)
            items = container.values()
        else:
            cost += 56 + 8 * len(container)
            items = container
        for item in items:
            kind = type(item)
            if kind is str or kind is bytes:
                cost += 49 + len(item)
            elif kind is dict or kind is list or kind is tuple:
                stack.append(item)
            else:
                cost += 32
    return cost


@dataclass(frozen=True)
class JournalFilter:
    """``entity`` is a prefix (``push:``, ``app:default/app``); ``types`` any of; ``since`` a Unix
    time; ``after`` a sequence number: with it the first ``limit`` matches after it, without it the
    last ``limit`` matches. Either way records come oldest first."""

    entity: str = ""
    types: frozenset[str] = frozenset()
    since: float | None = None
    after: int | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        if self.after is not None and self.after < 0:
            raise QueryError("after must be a sequence number (0 or more)")
        unknown = sorted(self.types - set(registered_types()))
        if unknown:
            raise QueryError(f"Unknown event type: {', '.join(unknown)}")

    def matches(self, record: Record) -> bool:
        return (record.entity.startswith(self.entity)
                and (not self.types or record.type in self.types)
                and (self.since is None or record.time >= self.since))


@dataclass(frozen=True)
class QueryResult:
    records: list[dict[str, Any]]
    last_seq: int  # the journal's newest sequence number when the query ran: poll with after=last_seq
    more: bool  # more matches exist beyond ``limit`` (after: newer ones; without: older ones)


@dataclass(frozen=True)
class JournalSize:
    last_seq: int
    segments: int
    bytes: int
    in_memory: int
    in_memory_bytes: int  # about (record_cost)


@dataclass
class JournalQuery:
    directory: Path  # <data>/journal
    keep: int = KEEP_IN_MEMORY
    keep_bytes: int = KEEP_BYTES  # about (record_cost): the newest record is kept whatever it costs
    # secret-bearing payloads of what the server holds now (every push's stream key), asked at each query:
    # a secret whose creating record is no longer in memory is still masked where a new record repeats it
    known_secrets: Callable[[], Iterable[dict[str, Any]]] | None = None
    _recent: deque[Record] = field(init=False)
    _costs: deque[int] = field(init=False)  # record_cost of each of _recent
    _bytes: int = field(default=0, init=False)  # their sum
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # one segment scan at a time: a few consoles loading old records must not take every core from ingest
    _disk: threading.Lock = field(default_factory=threading.Lock, init=False)
    _redactor: Redactor = field(default_factory=Redactor, init=False)
    _last_seq: int = field(default=0, init=False)
    _learned_upto: int = field(default=0, init=False)  # records in memory up to here taught the redactor

    def __post_init__(self) -> None:
        self._recent = deque()
        self._costs = deque()

    def _keep(self, record: Record) -> None:
        """Files ``record`` as the newest and lets the oldest go while more than ``keep`` records or more than
        ``keep_bytes`` are held (older records are read from the segment files when a query reaches them)."""
        cost = record_cost(record)
        recent, costs = self._recent, self._costs
        recent.append(record)
        costs.append(cost)
        self._bytes += cost
        while len(recent) > self.keep or (self._bytes > self.keep_bytes and len(recent) > 1):
            recent.popleft()
            self._bytes -= costs.popleft()

    # -- fed by the journal ------------------------------------------------------------------------
    def on_durable(self, records: list[Record]) -> None:
        """The journal's listener: runs on the thread that committed the records, in sequence order, so it
        only files records (learning secrets costs more than an append; the next query does it)."""
        with self._lock:
            for record in records:
                self._keep(record)
            if records:
                self._last_seq = records[-1].seq

    def remembering(self, records: Iterable[Record]) -> Iterator[Record]:
        """``records`` unchanged, the newest kept: startup replay fills the tail, so the first console
        query after a restart need not read the newest segment back."""
        for record in records:  # nothing else runs yet: no lock
            self._keep(record)
            yield record

    def start_at(self, last_seq: int) -> None:
        """The journal's last sequence number at startup (records before it are on disk only)."""
        with self._lock:
            self._last_seq = max(self._last_seq, last_seq)

    def _learn_new(self) -> None:
        """Under the lock: what was appended since the last query, and what the server holds now."""
        newest = self._learned_upto
        for record in reversed(self._recent):
            if record.seq <= self._learned_upto:
                break
            newest = max(newest, record.seq)
            if _bears_secret(record):
                self._redactor.learn(record.payload)
        self._learned_upto = newest
        if self.known_secrets is not None:
            for payload in self.known_secrets():
                self._redactor.learn(payload)

    # -- reads -------------------------------------------------------------------------------------
    def query(self, wanted: JournalFilter) -> QueryResult:
        """Blocking (may read segment files): call it from a worker thread."""
        with self._lock:
            recent = list(self._recent)
            last_seq = self._last_seq
        if wanted.after is not None:
            found, more = self._after(wanted, recent, last_seq)
        else:
            found, more = self._tail(wanted, recent)
        with self._lock:
            self._learn_new()
            shown = [_json_safe(record_view(r, self._redactor)) for r in found]
        return QueryResult(shown, last_seq, more)

    def size(self) -> JournalSize:
        segments = list_segments(self.directory)
        total = 0
        for _first, path in segments:
            try:
                total += path.stat().st_size
            except OSError:
                continue
        with self._lock:
            return JournalSize(self._last_seq, len(segments), total, len(self._recent), self._bytes)

    def _after(self, wanted: JournalFilter, recent: list[Record], last_seq: int) -> tuple[list[Record], bool]:
        after = wanted.after or 0
        if after >= last_seq:
            return [], False
        in_memory = bool(recent) and after + 1 >= recent[0].seq
        source: Iterable[Record] = (r for r in recent if r.seq > after) if in_memory else self._read(after + 1)
        with contextlib.nullcontext() if in_memory else self._disk:
            found: list[Record] = []
            for record in source:
                if wanted.matches(record):
                    if len(found) == wanted.limit:
                        return found, True
                    found.append(record)
            return found, False

    def _tail(self, wanted: JournalFilter, recent: list[Record]) -> tuple[list[Record], bool]:
        found: list[Record] = []  # newest first while collecting
        for record in reversed(recent):
            if wanted.since is not None and record.time < wanted.since:
                return found[::-1], False
            if wanted.matches(record):
                if len(found) == wanted.limit:
                    return found[::-1], True
                found.append(record)
        oldest_in_memory = recent[0].seq if recent else None
        if oldest_in_memory == 1:
            return found[::-1], False
        with self._disk:
            for segment in self._segments_newest_first(before=oldest_in_memory):
                for record in reversed(segment):
                    if wanted.since is not None and record.time < wanted.since:
                        return found[::-1], False
                    if wanted.matches(record):
                        if len(found) == wanted.limit:
                            return found[::-1], True
                        found.append(record)
            return found[::-1], False

    def _read(self, from_seq: int) -> Iterator[Record]:
        for record in iter_records(self.directory, from_seq):
            if _bears_secret(record):
                with self._lock:
                    self._redactor.learn(record.payload)
            yield record

    def _segments_newest_first(self, before: int | None) -> Iterator[list[Record]]:
        """Each segment's records with ``seq < before`` (all when None), newest segment first; one file
        read per segment (``iter_records`` would also read the next one to see where this one ends)."""
        segments = list_segments(self.directory)
        for index in range(len(segments) - 1, -1, -1):
            first_seq, path = segments[index]
            if before is not None and first_seq >= before:
                continue
            stop: list[ScanStop] = []
            records = [frame.record for frame in scan(path.read_bytes(), stop)
                       if before is None or frame.record.seq < before]
            if stop and not (index == len(segments) - 1 and stop[0].torn):  # the newest may be mid-append
                raise JournalCorruptError(str(path), stop[0].offset, stop[0].reason)
            with self._lock:
                for record in records:
                    if _bears_secret(record):
                        self._redactor.learn(record.payload)
            yield records

    def query_json(self, *, entity: str = "", types: Iterable[str] = (), since: float | None = None,
                   after: int | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """``GET /v1/journal``'s response; ``QueryError`` (a ValueError) for a filter that means nothing."""
        result = self.query(JournalFilter(entity, frozenset(types), since, after, limit))
        return {"records": result.records, "lastSeq": result.last_seq, "more": result.more}
