"""Reading segments back: checks framing, CRCs and sequence continuity as it goes.

Replay reads millions of frames at startup, so the loop over one segment (``_stored_batches``, each frame
checked by ``_intact_body``) is written for speed: no object per frame, the header and CRC checked on a
memoryview, the msgpack body decoded only for the frames the caller wants, and records handed over in
lists (``iter_stored_batches``), not one generator resume each. Its checks and messages are the same as
``framing.scan``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from kiln.journal.errors import JournalCorruptError
from kiln.journal.framing import HEADER, MAX_FRAME, ScanStop, check_stored, payload_map, zero_tail
from kiln.journal.records import Record
from kiln.journal.segments import list_segments

HEADER_SIZE = HEADER.size
_unpack_header, _crc32 = HEADER.unpack_from, zlib.crc32

# [seq, time, entity, type, version, payload]: a record as the frame stores it (see framing.py); the payload
# is a map or, for a type with a layout (kiln.events.layouts), the list of its values (``payload_map``)
StoredFields = list[Any]
BATCH = 64  # records per list replay reads (iter_stored_batches): one resume per list; lists of 1,024 kept so
# many young objects alive that the collector's young collections walked them (replay 15 % slower)


@dataclass(frozen=True)
class SegmentScan:
    path: Path
    first_seq: int
    records: int
    last_seq: int  # first_seq - 1 when the segment holds no record
    valid_bytes: int
    size: int
    first_time: float | None
    last_time: float | None
    stop: ScanStop | None  # only ever a torn tail; damage raises


def _intact_body(view: memoryview, offset: int, stop: list[ScanStop]) -> memoryview | None:
    """The body of the frame at ``offset`` when its header, length and CRC are whole; else None, with a ScanStop
    in ``stop``. The one place the frame rules live (torn header, zero-filled tail, impossible length, cut-off
    body, checksum); the body checked is the one decoded (one slice per frame)."""
    size = len(view)
    if size - offset < HEADER_SIZE:
        stop.append(ScanStop(offset, "truncated frame header", True))
        return None
    length, crc = _unpack_header(view, offset)
    if length == 0 and zero_tail(view, offset):
        stop.append(ScanStop(offset, "zero-filled tail", True))
        return None
    if length > MAX_FRAME:
        stop.append(ScanStop(offset, f"frame length {length} is impossible", False))
        return None
    end = offset + HEADER_SIZE + length
    if end > size:
        stop.append(ScanStop(offset, f"frame of {length} bytes cut off at end of file", True))
        return None
    body = view[offset + HEADER_SIZE:end]
    if _crc32(body) != crc:
        stop.append(ScanStop(offset, "checksum mismatch", end == size))
        return None
    return body


def _frame_ends(data: bytes, stop: list[ScanStop]) -> list[int]:
    """Where each intact frame ends, in order (bodies not decoded); the first bad frame puts a ScanStop in
    ``stop`` and ends the walk."""
    view = memoryview(data)
    size = len(view)
    ends: list[int] = []
    offset = 0
    while offset < size:
        body = _intact_body(view, offset, stop)
        if body is None:
            break
        offset += HEADER_SIZE + len(body)
        ends.append(offset)
    return ends


def _stored_batches(path: Path, data: bytes, first_seq: int, from_seq: int, stop: list[ScanStop],
                    ends_out: list[int] | None = None, batch: int = BATCH) -> Iterator[list[StoredFields]]:
    """The stored fields of each frame of one segment with ``seq >= from_seq``, in lists of up to ``batch``,
    checking that sequence numbers continue from ``first_seq`` without a gap. Frames before ``from_seq`` are
    CRC-checked and counted but not decoded (``kiln journal verify`` decodes every one). On the first bad
    frame a ScanStop goes to ``stop`` and the iteration ends, after the records before it; ``ends_out`` (when
    given) gets each yielded frame's end. One generator resume per list, not per record."""
    view = memoryview(data)
    size = len(view)
    unpackb = msgpack.unpackb
    lists: dict[str, tuple[int, int]] = {}  # type -> (version, length) of value lists check_stored accepted
    expected = first_seq
    offset = 0
    rows: list[StoredFields] = []
    failure: JournalCorruptError | None = None
    while offset < size:
        body = _intact_body(view, offset, stop)
        if body is None:
            break
        end = offset + HEADER_SIZE + len(body)
        if expected >= from_seq:
            try:
                fields = unpackb(body, raw=False, strict_map_key=False)
                if type(fields) is not list or len(fields) != 6 or type(fields[0]) is not int:
                    raise ValueError("record fields have the wrong types")
                payload = fields[5]
                if type(payload) is not dict and lists.get(fields[3]) != (fields[4], len(payload)):
                    check_stored(fields)  # a value list of a layout not met yet (or no list at all)
                    lists[fields[3]] = (fields[4], len(payload))
            except Exception as exc:  # noqa: BLE001 - any undecodable body is damage
                stop.append(ScanStop(offset, f"undecodable record ({exc})", False))
                break
            if fields[0] != expected:
                failure = JournalCorruptError(str(path), offset, f"sequence {fields[0]} where {expected} was expected")
                break
            if ends_out is not None:
                ends_out.append(end)
            rows.append(fields)
            if len(rows) == batch:
                yield rows
                rows = []
        expected += 1
        offset = end
    if rows:
        yield rows
    if failure is not None:
        raise failure


def as_record(fields: StoredFields) -> Record:
    """The Record of a stored field list (``iter_stored``)."""
    seq, time_, entity, type_, version, payload = fields
    return Record(seq, float(time_), str(entity), str(type_), int(version), payload_map(type_, version, payload))


def _fail_unless_torn_tail(path: Path, stop: list[ScanStop], *, tail: bool) -> ScanStop | None:
    if not stop:
        return None
    if not (tail and stop[0].torn):
        raise JournalCorruptError(str(path), stop[0].offset, stop[0].reason)
    return stop[0]


def scan_segment(path: Path, first_seq: int, *, tail: bool) -> SegmentScan:
    """Check a whole segment. ``tail``: the newest segment, where a torn last frame is allowed."""
    data = path.read_bytes()
    count, last_seq, valid = 0, first_seq - 1, 0
    first_time = last_time = None
    stop: list[ScanStop] = []
    ends: list[int] = []
    for rows in _stored_batches(path, data, first_seq, first_seq, stop, ends):
        count += len(rows)
        last_seq = rows[-1][0]
        last_time = float(rows[-1][1])
        if first_time is None:
            first_time = float(rows[0][1])
    if ends:
        valid = ends[-1]
    torn = _fail_unless_torn_tail(path, stop, tail=tail)
    return SegmentScan(path, first_seq, count, last_seq, valid, len(data), first_time, last_time, torn)


def scan_tail(path: Path, first_seq: int) -> SegmentScan:
    """``scan_segment(path, first_seq, tail=True)`` for opening the journal, without decoding every record:
    each frame's length and CRC are checked, and the first and last records are decoded; the last one's
    sequence number must be ``first_seq + frames - 1``, or the whole segment is decoded to say what is
    wrong. Decoding a full 16 MB tail segment took most of a restart's time (the records before the
    snapshot are never needed; those after it are decoded and checked again by replay; a wrong number
    in the middle of the segment is found by replay or by ``kiln journal verify``)."""
    data = path.read_bytes()
    stop: list[ScanStop] = []
    ends = _frame_ends(data, stop)
    torn = _fail_unless_torn_tail(path, stop, tail=True)
    if not ends:
        return SegmentScan(path, first_seq, 0, first_seq - 1, 0, len(data), None, None, torn)
    last_start = ends[-2] if len(ends) > 1 else 0
    try:
        first = msgpack.unpackb(data[HEADER.size:ends[0]], raw=False, strict_map_key=False)
        last = msgpack.unpackb(data[last_start + HEADER.size:ends[-1]], raw=False, strict_map_key=False)
        first_time, last_time, last_seq = float(first[1]), float(last[1]), last[0]
    except Exception:  # noqa: BLE001 - the full scan says precisely what is wrong
        return scan_segment(path, first_seq, tail=True)
    if first[0] != first_seq or last_seq != first_seq + len(ends) - 1:
        return scan_segment(path, first_seq, tail=True)
    return SegmentScan(path, first_seq, len(ends), last_seq, ends[-1], len(data), first_time, last_time, torn)


def iter_stored_batches(directory: Path, from_seq: int = 1, batch: int = BATCH) -> Iterator[list[StoredFields]]:
    """Every record with ``seq >= from_seq``, oldest first, across segments, as stored field lists
    ``[seq, time, entity, type, version, payload]`` in lists of up to ``batch`` (never across a segment's
    end): replay's path, with no object built per record and one resume per list."""
    segments = list_segments(directory)
    for index, (first_seq, path) in enumerate(segments):
        is_tail = index == len(segments) - 1
        if not is_tail and segments[index + 1][0] <= from_seq:
            continue
        stop: list[ScanStop] = []
        yield from _stored_batches(path, path.read_bytes(), first_seq, from_seq, stop, batch=batch)
        _fail_unless_torn_tail(path, stop, tail=is_tail)


def iter_stored(directory: Path, from_seq: int = 1) -> Iterator[StoredFields]:
    """``iter_stored_batches`` one record at a time."""
    for rows in iter_stored_batches(directory, from_seq):
        yield from rows


def iter_records(directory: Path, from_seq: int = 1) -> Iterator[Record]:
    """Every record with ``seq >= from_seq``, oldest first, across segments."""
    for fields in iter_stored(directory, from_seq):
        yield as_record(fields)
