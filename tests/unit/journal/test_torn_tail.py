"""A crash can stop the journal's last write at any byte: cutting the last record at every offset, in
every place it can sit, must recover to the last whole record, keep numbering from there, and verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.journal import Journal, NewRecord, verify
from kiln.journal.framing import HEADER, encode_frame
from kiln.journal.segments import journal_dir, list_segments


def rec(n: int) -> NewRecord:
    return NewRecord("push:default/app/p", "Thing", 1, {"n": n, "url": "rtmp://h/app", "blob": bytes(range(40))})


def _write(tmp_path: Path, count: int, segment_bytes: int) -> tuple[Path, int]:
    """``count`` records, one append each; the newest segment's path and where its last record starts."""
    j = Journal.open(tmp_path, segment_bytes=segment_bytes, fsync=False)
    for n in range(count):
        j.append([rec(n)]).result(5)
    j.close()
    _first, path = list_segments(journal_dir(tmp_path))[-1]
    data = path.read_bytes()
    offset, starts = 0, []
    while offset < len(data):
        starts.append(offset)
        (length, _crc) = HEADER.unpack_from(data, offset)
        offset += HEADER.size + length
    return path, starts[-1]


def _recovers_to(tmp_path: Path, whole: int) -> None:
    report = verify(tmp_path)
    assert report.ok, report.problems
    j = Journal.open(tmp_path, fsync=False)
    try:
        assert [r.payload["n"] for r in j.read()] == list(range(whole))
        assert [r.seq for r in j.append([rec(1000)]).result(5)] == [whole + 1]
    finally:
        j.close()
    again = Journal.open(tmp_path, fsync=False)
    try:
        assert [r.payload["n"] for r in again.read()] == [*range(whole), 1000]
    finally:
        again.close()
    assert verify(tmp_path).ok and verify(tmp_path).torn_tail is None


@pytest.mark.parametrize("where", ["one segment", "first record of a new segment"])
def test_cut_at_every_byte_of_the_last_record_recovers_to_the_last_whole_one(tmp_path: Path, where: str) -> None:
    segment_bytes = 10_000_000 if where == "one segment" else 2 * len(encode_frame(_sample()))
    pristine = tmp_path / "pristine"
    path, last_start = _write(pristine, 3, segment_bytes)
    original = {p.name: p.read_bytes() for _f, p in list_segments(journal_dir(pristine))}
    data = path.read_bytes()
    assert (last_start == 0) == (where != "one segment")
    for cut in range(last_start, len(data)):
        case = tmp_path / f"cut{cut}"
        segments = journal_dir(case)
        segments.mkdir(parents=True)
        for name, content in original.items():
            (segments / name).write_bytes(content)
        (segments / path.name).write_bytes(data[:cut])
        report = verify(case)
        assert report.ok and (report.torn_tail is not None) == (cut > last_start), (cut, report.torn_tail)
        _recovers_to(case, 2)


def test_a_tail_of_zeros_after_the_last_record_is_a_torn_write(tmp_path: Path) -> None:
    """Some file systems make a crashed append's new size durable before its data: zeros follow."""
    path, last_start = _write(tmp_path, 3, 10_000_000)
    whole = path.read_bytes()
    for zeros in (1, HEADER.size, HEADER.size + 1, 4096):
        path.write_bytes(whole + b"\0" * zeros)
        _recovers_to(tmp_path, 3)
        path.write_bytes(whole)
    for keep in (0, 3, HEADER.size, HEADER.size + 5):  # and the last record's own bytes zeroed past a point
        damaged = whole[:last_start + keep] + b"\0" * (len(whole) - last_start - keep)
        path.write_bytes(damaged)
        _recovers_to(tmp_path, 2)
        path.write_bytes(whole)


def test_zeros_followed_by_data_are_still_damage(tmp_path: Path) -> None:
    path, _last = _write(tmp_path, 3, 10_000_000)
    path.write_bytes(path.read_bytes() + b"\0" * 16 + b"\x01")
    assert not verify(tmp_path).ok


def _sample() -> object:
    from kiln.journal.records import Record

    r = rec(0)
    return Record(1, 0.0, r.entity, r.type, r.version, r.payload)
