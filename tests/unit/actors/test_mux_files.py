"""A multiplex channel's .mux file: written atomically inside the writable roots, restored from the journal at
start, and the files no channel names loaded as OME loads them."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from kiln.actors.multiplexes import MuxDirWatch, MuxFiles, MuxFilesScanned
from kiln.config.write_roots import WriteRoots
from kiln.domain.errors import Invalid
from kiln.domain.multiplex import multiplex_from_json, multiplex_to_xml

BODY = {"outputStream": {"name": "abr"}, "sourceStreams": [
    {"name": "a", "url": "stream://default/app/a", "trackMap": [{"sourceTrackName": "v", "newTrackName": "x"}]}]}


def files(tmp_path: Path, roots: WriteRoots | None = None) -> MuxFiles:
    return MuxFiles("default/mux", {"providers": {"multiplex": {"muxFilesDir": "mux"}}}, tmp_path, roots)


def test_written_restored_and_found(tmp_path: Path) -> None:
    mux = multiplex_from_json(BODY)
    mux_files = files(tmp_path)
    mux_files.write(mux)
    path = tmp_path / "mux" / "abr.mux"
    assert path.read_bytes() == multiplex_to_xml(mux)
    assert [p.name for p in path.parent.iterdir()] == ["abr.mux"]  # no temporary file left
    path.write_text("<Multiplex/>")  # changed behind the journal's back (or a kill -9 between file and event)
    mux_files.restore(mux)
    assert path.read_bytes() == multiplex_to_xml(mux)
    assert mux_files.found({"abr"}) == []
    other = multiplex_from_json({**BODY, "outputStream": {"name": "dup"}})
    (path.parent / "any-name.mux").write_bytes(multiplex_to_xml(other))  # named by its OutputStream, as in OME
    (path.parent / "bad.mux").write_text("<Multiplex>")  # logged and skipped
    (path.parent / "notes.txt").write_text("not a channel")
    assert mux_files.found({"abr"}) == [other]
    mux_files.remove("abr")
    assert not path.exists()


def test_nothing_is_written_outside_the_writable_roots(tmp_path: Path) -> None:
    roots = WriteRoots.build([str(tmp_path / "allowed")], tmp_path / "data", [], lambda p: p)
    with pytest.raises(Invalid) as refused:
        files(tmp_path, roots).write(multiplex_from_json(BODY))
    assert refused.value.text.startswith("muxFilesDir is outside the writable roots")
    assert not (tmp_path / "mux").exists()


def test_the_directory_watch_tells_what_changed_and_looks_again_when_asked(tmp_path: Path) -> None:
    mux_files = files(tmp_path)
    mux_files.write(multiplex_from_json(BODY))
    told: queue.Queue[MuxFilesScanned] = queue.Queue()
    watch = MuxDirWatch("default/mux", mux_files, told.put, every_s=0.02)
    watch.start()
    try:
        assert told.get(timeout=5).found == {"abr": multiplex_from_json(BODY)}  # the first look tells what is there
        with pytest.raises(queue.Empty):  # five looks in which nothing changed tell nothing
            told.get(timeout=0.1)
        (tmp_path / "mux" / "abr.mux").unlink()
        assert told.get(timeout=5).found == {}
        watch.recheck()  # a file seen missing is looked at again, changed or not
        assert told.get(timeout=5).found == {}
        other = multiplex_from_json({**BODY, "outputStream": {"name": "dup"}})
        mux_files.write(other)
        scanned = told.get(timeout=5)
        assert scanned.found == {"dup": other} and scanned.watch is watch
    finally:
        watch.close()
        assert watch.join(5)
