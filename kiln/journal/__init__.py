"""Kiln's durable event journal: segmented, CRC-framed, group-committed, with snapshots."""

from kiln.journal.errors import (
    JournalClosedError,
    JournalCorruptError,
    JournalError,
    JournalFailedError,
    JournalRecordError,
)
from kiln.journal.journal import DEFAULT_SEGMENT_BYTES, Journal, OpenReport
from kiln.journal.records import NewRecord, Record
from kiln.journal.snapshots import SnapshotStore
from kiln.journal.verify import VerifyReport, verify

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "Journal",
    "JournalClosedError",
    "JournalCorruptError",
    "JournalError",
    "JournalFailedError",
    "JournalRecordError",
    "NewRecord",
    "OpenReport",
    "Record",
    "SnapshotStore",
    "VerifyReport",
    "verify",
]
