"""A multiplex channel's .mux file: written atomically inside the writable roots, restored from the journal at
start, and the files no channel names loaded as OME loads them."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from kiln.actors.file_watch import FilesDirWatcher
from kiln.actors.multiplexes import MUX_FILES, MuxFiles
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


def test_the_directory_is_followed_by_the_channel_a_file_names(tmp_path: Path) -> None:
    """MuxFilesDir is followed as ScheduleFilesDir is (FilesDirWatcher); a .mux file names its channel by its
    OutputStream, so a deleted file reports that name, not the file's."""
    mux_files = files(tmp_path)
    told: queue.Queue[tuple[str, object]] = queue.Queue()
    watch = FilesDirWatcher("default/mux", mux_files.files_dir(), MUX_FILES,
                            lambda mux, looked: told.put(("changed", mux)),
                            lambda name, looked: told.put(("gone", name)), every_s=0.02)
    other = multiplex_from_json({**BODY, "outputStream": {"name": "dup"}})
    mux_files.files_dir().mkdir()
    (mux_files.files_dir() / "any-name.mux").write_bytes(multiplex_to_xml(other))
    watch.start()
    try:
        assert told.get(timeout=5) == ("changed", other)  # the first look tells what is there
        with pytest.raises(queue.Empty):  # looks in which nothing changed tell nothing
            told.get(timeout=0.1)
        (mux_files.files_dir() / "any-name.mux").unlink()
        assert told.get(timeout=5) == ("gone", "dup")
    finally:
        watch.stop()
    assert watch.join(5)
