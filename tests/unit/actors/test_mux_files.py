"""A multiplex channel's .mux file: written atomically inside the writable roots, restored from the journal at
start, and the files no channel names loaded as OME loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.actors.multiplexes import MuxFiles
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
