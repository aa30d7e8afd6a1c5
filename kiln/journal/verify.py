"""Whole-journal check for ``kiln journal verify`` and ``stats``: read every segment, report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kiln.journal.errors import JournalCorruptError
from kiln.journal.reader import SegmentScan, scan_segment
from kiln.journal.segments import journal_dir, list_segments


@dataclass
class VerifyReport:
    directory: Path
    segments: list[SegmentScan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn_tail: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    @property
    def last_seq(self) -> int:
        return self.segments[-1].last_seq if self.segments else 0

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.segments)


def verify(data_dir: str | Path) -> VerifyReport:
    directory = journal_dir(Path(data_dir))
    report = VerifyReport(directory)
    segments = list_segments(directory)
    expected_first: int | None = None
    for index, (first_seq, path) in enumerate(segments):
        if expected_first is not None and first_seq != expected_first:
            report.problems.append(f"{path}: starts at sequence {first_seq} where {expected_first} was expected")
        try:
            found = scan_segment(path, first_seq, tail=index == len(segments) - 1)
        except JournalCorruptError as exc:
            report.problems.append(str(exc))
            return report
        if found.stop is not None:
            report.torn_tail = (f"{path} at byte {found.valid_bytes}: {found.stop.reason} "
                                "(cut automatically at next start)")
        report.segments.append(found)
        expected_first = found.last_seq + 1
    return report
