"""Files at paths someone else chose are never waited on: a FIFO is refused when read and replaced, not
opened, when written (open() of a FIFO waits for the other end for good)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kiln.media.publish.record.info import FileEntry, append_entry, read_entries
from kiln.regular_files import NotRegularFile, read_regular, require_regular, write_replacing


def test_a_fifo_is_refused_by_reads_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    for check in (read_regular, require_regular):
        with pytest.raises(NotRegularFile, match=f"not a regular file: {fifo}"):
            check(fifo)
    with pytest.raises(NotRegularFile):
        read_regular(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing")
    (tmp_path / "plain").write_bytes(b"x")
    assert read_regular(tmp_path / "plain") == b"x"


def test_a_write_replaces_a_fifo_at_the_target_or_at_its_temporary_name(tmp_path: Path) -> None:
    target, tmp = tmp_path / "info.xml", tmp_path / "info.xml.tmp"
    os.mkfifo(target)
    os.mkfifo(tmp)
    write_replacing(target, b"<files/>", tmp=tmp, mode=0o640)
    assert stat.S_ISREG(target.stat().st_mode) and target.read_bytes() == b"<files/>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and not tmp.exists()
    write_replacing(target, b"<files></files>")  # its own temporary name, gone once renamed
    assert target.read_bytes() == b"<files></files>" and sorted(p.name for p in tmp_path.iterdir()) == ["info.xml"]


def test_a_record_info_file_that_is_a_fifo_fails_the_entry_and_any_other_is_appended_to(tmp_path: Path) -> None:
    entry = FileEntry("t", "r1", "", "default", "app", "s", "/f.ts", 1, 2, 0, False, 1.0, 2.0, 3.0)
    fifo = tmp_path / "fifo.xml"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        append_entry(fifo, entry)
    info = tmp_path / "info.xml"
    append_entry(info, entry)
    append_entry(info, entry)
    assert [e["id"] for e in read_entries(info)] == ["r1", "r1"]
    assert stat.S_IMODE(info.stat().st_mode) == 0o644
