"""Segment files: ``<data>/journal/<first seq, 20 digits>.kjl``, ordered by name."""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".kjl"


def journal_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "journal"


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"{first_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first; files with other names are ignored."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if path.suffix == SUFFIX and path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found)


def fsync_dir(directory: Path) -> None:
    """Make a created or renamed file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
