"""Journal failures a user can act on: every message names the file and the byte offset."""

from __future__ import annotations


class JournalError(Exception):
    """Base of journal errors."""


class JournalCorruptError(JournalError):
    """Damage that is not a torn tail: Kiln refuses to guess and stops before changing anything."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"journal corrupt: {path} at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class JournalClosedError(JournalError):
    """An append after close()."""


class JournalFailedError(JournalError):
    """A write failed (disk full, I/O error): the journal refuses appends rather than risk a gap."""


class JournalRecordError(JournalError):
    """An append whose records cannot be stored (a value msgpack cannot encode): that append fails alone."""
