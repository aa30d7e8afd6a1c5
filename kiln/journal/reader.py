"""Reading segments back: checks framing, CRCs and sequence continuity as it goes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiln.journal.errors import JournalCorruptError
from kiln.journal.framing import Frame, ScanStop, scan
from kiln.journal.records import Record
from kiln.journal.segments import list_segments


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


def _checked(path: Path, data: bytes, first_seq: int, stop: list[ScanStop]) -> Iterator[Frame]:
    """Frames of one segment whose sequence numbers continue from ``first_seq`` without a gap."""
    expected = first_seq
    for frame in scan(data, stop):
        if frame.record.seq != expected:
            raise JournalCorruptError(str(path), frame.offset,
                                      f"sequence {frame.record.seq} where {expected} was expected")
        expected += 1
        yield frame


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
    for frame in _checked(path, data, first_seq, stop):
        count += 1
        last_seq, valid = frame.record.seq, frame.end
        first_time = frame.record.time if first_time is None else first_time
        last_time = frame.record.time
    torn = _fail_unless_torn_tail(path, stop, tail=tail)
    return SegmentScan(path, first_seq, count, last_seq, valid, len(data), first_time, last_time, torn)


def iter_records(directory: Path, from_seq: int = 1) -> Iterator[Record]:
    """Every record with ``seq >= from_seq``, oldest first, across segments."""
    segments = list_segments(directory)
    for index, (first_seq, path) in enumerate(segments):
        is_tail = index == len(segments) - 1
        if not is_tail and segments[index + 1][0] <= from_seq:
            continue
        stop: list[ScanStop] = []
        for frame in _checked(path, path.read_bytes(), first_seq, stop):
            if frame.record.seq >= from_seq:
                yield frame.record
        _fail_unless_torn_tail(path, stop, tail=is_tail)
