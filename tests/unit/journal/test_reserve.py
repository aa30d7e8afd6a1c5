"""The journal's disk reserve: a write that meets ENOSPC spends the reserve and still becomes durable;
without the reserve commands are refused until it can be allocated again (reserve.py)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from kiln.journal import Journal, JournalFailedError, NewRecord
from kiln.journal.reserve import DiskReserve


def rec(n: int) -> NewRecord:
    return NewRecord("vhost:v", "Thing", 1, {"n": n})


class FullOnce:
    """The journal's segment file as a full disk shows it: the next write fails with ENOSPC, once."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failed = False

    def write(self, data: memoryview) -> int:
        if not self.failed:
            self.failed = True
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_reserve_is_allocated_released_once_and_allocated_again(tmp_path: Path) -> None:
    reserve = DiskReserve(tmp_path, 64 * 1024, retry_seconds=0)
    assert reserve.ensure() and reserve.path.stat().st_size == 64 * 1024
    assert reserve.release() and not reserve.path.exists() and not reserve.held
    assert not reserve.release()
    assert reserve.ensure() and reserve.held and reserve.path.exists()


def test_after_a_release_allocation_is_not_retried_on_every_call(tmp_path: Path) -> None:
    reserve = DiskReserve(tmp_path, 4096, retry_seconds=60)
    assert reserve.ensure() and reserve.release()
    assert not reserve.ensure()  # too soon: refused without touching the disk
    assert not reserve.path.exists()


def test_a_write_that_meets_enospc_spends_the_reserve_and_is_durable(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False, reserve_bytes=64 * 1024)
    assert j.reserve is not None and j.reserve.held
    j.append([rec(1)]).result(5)
    j._file = FullOnce(j._file)  # type: ignore[assignment]
    assert [r.seq for r in j.append([rec(2)]).result(5)] == [2]
    assert not j.reserve.held and not j.reserve.path.exists()
    j.close()
    assert [r.payload["n"] for r in Journal.open(tmp_path, fsync=False).read()] == [1, 2]


def test_without_a_reserve_enospc_stops_the_journal_as_before(tmp_path: Path) -> None:
    j = Journal.open(tmp_path, fsync=False)
    j.append([rec(1)]).result(5)
    j._file = FullOnce(j._file)  # type: ignore[assignment]
    future = j.append([rec(2)])
    failed = future.exception(5)
    assert isinstance(failed, JournalFailedError) and "No space left" in str(failed)
    assert j.failure is not None and "No space left" in j.failure
    j.close()
    assert [r.payload["n"] for r in Journal.open(tmp_path, fsync=False).read()] == [1]


def test_a_snapshot_that_cannot_be_written_leaves_no_partial_file(tmp_path: Path, monkeypatch: Any) -> None:
    import os

    from kiln.journal import SnapshotStore

    store = SnapshotStore(tmp_path, keep=2)

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    try:
        store.save(5, {"catalog": {}})
    except OSError:
        pass
    else:
        raise AssertionError("the save should have failed")
    monkeypatch.undo()
    assert [p.name for p in store.directory.iterdir()] == []
    assert store.load_latest() is None
