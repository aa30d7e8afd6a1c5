"""The mypyc-compiled hot modules (setup.py, kiln/compiled.py): the build's extensions are what runs, they
give the same results as their sources on real media, and a stale or disabled extension never runs.

Where the install is pure Python the compiled-vs-pure checks skip, saying so, unless
``KILN_REQUIRE_COMPILED=1`` (``make test`` sets it: there the build must have compiled).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kiln import compiled
from kiln.media.formats.rtmp.messages import VIDEO
from tests.unit.demux.test_tsreader import make_ts
from tests.unit.rtmp.media import make_flv, publish_stream, sorted_tags

STATE = compiled.install()


def _need_compiled() -> None:
    if STATE.compiled:
        return
    why = {compiled.ABSENT: f"the install is pure Python ({STATE.refused or 'nothing was compiled'})",
           compiled.STALE: f"sources changed since the build: {', '.join(STATE.changed)}; run `make install`",
           compiled.OFF: f"{compiled.PURE_ENV}=1"}[STATE.state]
    if os.environ.get("KILN_REQUIRE_COMPILED") == "1":
        pytest.fail(f"KILN_REQUIRE_COMPILED=1 but {why}")
    pytest.skip(why)


def _pure(name: str) -> ModuleType:
    """A fresh interpreted copy of a kiln module, loaded from its .py under a private name."""
    spec = importlib.util.spec_from_file_location(f"_pure_{name.replace('.', '_')}", compiled.source_path(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_every_module_the_build_compiled_is_imported_as_its_extension() -> None:
    _need_compiled()
    assert STATE.modules, "the manifest lists no modules"
    for name in STATE.modules:
        module = importlib.import_module(name)
        assert compiled.is_extension(module), f"{name} was imported from {module.__file__}"
    assert not compiled.is_extension(_pure("kiln.media.formats.flv"))


def _parse(chunk_mod: ModuleType, flv_mod: ModuleType, stream: bytes, read: int) -> list[str]:
    """Everything a publish turns into (messages, tracks, packets; or the error), as comparable text."""
    reader, conv, seen = chunk_mod.ChunkReader(), flv_mod.FlvConverter(), []
    try:
        for at in range(0, len(stream), read):
            for msg in reader.feed(stream[at:at + read]):
                seen.append(f"msg {msg.type_id} {msg.timestamp} {msg.stream_id} {msg.csid} {len(msg.payload)}")
                if msg.type_id in (8, 9):
                    convert = conv.convert_video if msg.type_id == VIDEO else conv.convert_audio
                    out = convert(msg.timestamp, msg.payload)
                    seen.append(repr(out) if out is None else repr(_fields(out)))
    except Exception as exc:  # noqa: BLE001 - the error is part of the result being compared
        seen.append(f"error {type(exc).__name__}: {exc}")
    return seen


def _fields(obj: Any) -> tuple[Any, ...]:
    return tuple((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "arrival")


@pytest.fixture(scope="module")
def publish() -> bytes:
    return publish_stream(sorted_tags(make_flv(frames=45)), chunk_size=1024)


def test_pure_and_compiled_rtmp_parsing_give_the_same_tracks_and_packets(publish: bytes) -> None:
    _need_compiled()
    from kiln.media.formats import flv
    from kiln.media.formats.rtmp import chunk

    pure_chunk, pure_flv = _pure("kiln.media.formats.rtmp.chunk"), _pure("kiln.media.formats.flv")
    for read in (1, 700, 16384):
        expected = _parse(pure_chunk, pure_flv, publish, read)
        assert sum(line.startswith("((") for line in expected) > 60  # tracks and packets came out
        assert _parse(chunk, flv, publish, read) == expected


def _damaged(data: bytes, rng: random.Random) -> Iterator[bytes]:
    for _ in range(40):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        yield bytes(buf)


def test_pure_and_compiled_fail_the_same_way_on_damaged_input(publish: bytes) -> None:
    _need_compiled()
    from kiln.media.formats import flv
    from kiln.media.formats.rtmp import chunk

    pure_chunk, pure_flv = _pure("kiln.media.formats.rtmp.chunk"), _pure("kiln.media.formats.flv")
    errors = 0
    for data in _damaged(publish, random.Random(16)):
        expected = _parse(pure_chunk, pure_flv, data, 4096)
        errors += expected[-1].startswith("error")
        assert _parse(chunk, flv, data, 4096) == expected
    assert errors > 0  # the damage did reach the error paths


def _demux(module: ModuleType, data: bytes) -> list[Any]:
    demuxer = module.TsDemuxer()
    units = []
    for at in range(0, len(data), 1316):
        units += demuxer.feed(data[at:at + 1316])
    units += demuxer.flush()
    counters = (demuxer.cc_errors, demuxer.duplicates, demuxer.resyncs, demuxer.skipped_bytes, demuxer.crc_errors)
    return [(u.pid, u.stream_type, u.pts, u.dts, u.random_access, u.corrupt, u.data) for u in units] + [counters]


def test_pure_and_compiled_ts_demux_give_the_same_pes_and_counters() -> None:
    _need_compiled()
    from kiln.media.formats.mpegts import demux

    data = make_ts(30)
    pure = _pure("kiln.media.formats.mpegts.demux")
    expected = _demux(pure, data)
    assert len(expected) > 30
    assert _demux(demux, data) == expected
    for damaged in _damaged(data, random.Random(7)):
        assert _demux(demux, damaged) == _demux(pure, damaged)


# ---- the guard (runs on every install) ---------------------------------------------------------------------

def _tree(tmp_path: Path, source: bytes = b"VALUE = 1\n") -> Path:
    pkg = tmp_path / "kilnguard"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "hot.py").write_bytes(source)
    (pkg / "_compiled.json").write_text(json.dumps(
        {"modules": {"kilnguard.sub.hot": hashlib.sha256(source).hexdigest()}}))
    return pkg


def test_state_is_on_absent_stale_or_off_as_the_manifest_and_sources_say(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    manifest = pkg / "_compiled.json"
    assert compiled.read_state(manifest, {}).state == compiled.ON
    assert compiled.read_state(manifest, {compiled.PURE_ENV: "1"}).state == compiled.OFF
    assert compiled.read_state(manifest, {compiled.PURE_ENV: "0"}).state == compiled.ON
    (pkg / "sub" / "hot.py").write_text("VALUE = 2\n")
    state = compiled.read_state(manifest, {})
    assert (state.state, state.changed) == (compiled.STALE, ("kilnguard.sub.hot",))
    manifest.write_text(json.dumps({"refused": "mypyc refused: flv.py:1: error: bad"}))
    assert compiled.read_state(manifest, {}) == compiled.CompiledState(compiled.ABSENT,
                                                                      refused="mypyc refused: flv.py:1: error: bad")
    manifest.unlink()
    assert compiled.read_state(manifest, {}) == compiled.CompiledState(compiled.ABSENT)


def test_the_source_finder_loads_the_py_where_an_extension_sits_beside_it(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (pkg / "sub" / f"hot{suffix}").write_bytes(b"not a shared object")  # what Python would try first
    finder = compiled.SourceFinder(["kilnguard.sub.hot"])
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ImportError):
            importlib.import_module("kilnguard.sub.hot")
        sys.meta_path.insert(0, finder)
        module = importlib.import_module("kilnguard.sub.hot")
        assert (module.VALUE, module.__file__) == (1, str(pkg / "sub" / "hot.py"))
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("kilnguard")]:
            del sys.modules[name]


def test_startup_logs_which_modules_run_compiled_or_why_none_do(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kiln.test_compiled")
    with caplog.at_level(logging.INFO, logger=log.name):
        state = compiled.log_startup(log)
    [line] = [r.getMessage() for r in caplog.records if "event=compiled_modules" in r.getMessage()]
    assert f"state={state.state}" in line
    if state.compiled:
        assert f"count={len(state.modules)} " in line
        assert all(name in line for name in state.modules)


def _ts_packets(convert_mod: ModuleType, clock_mod: ModuleType, data: bytes) -> list[Any]:
    """What the TS ingest makes of ``data`` (tracks and packets, in order) with the given converter and clock:
    PES from the (compiled) demuxer, then ``AvConverter`` over a ``TsClock``, as ``TsDemuxWorker`` does."""
    from kiln.media.formats.mpegts import demux
    from kiln.media.ingest.demux.tsreader import FAST_CODECS

    demuxer = demux.TsDemuxer()
    units = demuxer.feed(data) + demuxer.flush()
    converter = convert_mod.AvConverter(clock_mod.TsClock("test"))
    for es in demuxer.streams.values():
        converter.add_track(es.pid, FAST_CODECS[es.stream_type], convert_mod.TS_TIME_BASE)
    seen: list[Any] = []
    for unit in units:
        if unit.dts is None:
            track, packets = converter.continue_adts(unit.pid, unit.data)
        else:
            track, packets = converter.convert_data(unit.pid, unit.data, unit.dts,
                                                    unit.dts if unit.pts is None else unit.pts, 0,
                                                    True if unit.random_access else None)
        if track is not None:
            seen.append(repr(_fields(track)))
        seen += [repr(_fields(p)) for p in packets]
    return seen


@pytest.mark.parametrize("offset_s", [None, 2**33 / 90_000 - 0.5])  # the second wraps the 33-bit clock mid-stream
def test_pure_and_compiled_ts_conversion_give_the_same_tracks_and_packets(offset_s: float | None) -> None:
    _need_compiled()
    from kiln.media.formats.mpegts import tsclock
    from kiln.media.ingest.demux import convert

    data = make_ts(45, ts_offset_s=offset_s)
    expected = _ts_packets(_pure("kiln.media.ingest.demux.convert"), _pure("kiln.media.formats.mpegts.tsclock"), data)
    assert sum(line.startswith("(('id'") for line in expected) == 2  # a video and an audio track were described
    assert len(expected) > 60
    assert _ts_packets(convert, tsclock, data) == expected


def _replay_outcome(reader_mod: ModuleType, replay_mod: ModuleType, directory: Path) -> list[Any]:
    """What startup replay makes of a journal: the record lists read (or the error), then the projections'
    state and the replay's counts."""
    from kiln.projections.catalog import CatalogProjection
    from kiln.projections.tasks import TasksProjection

    lists: list[Any] = []
    try:
        for rows in reader_mod.iter_stored_batches(directory, 1, batch=7):
            lists.append(rows)
    except Exception as exc:  # noqa: BLE001 - the error is part of the result being compared
        lists.append(f"error {type(exc).__name__}: {exc}")
    projections = (CatalogProjection(), TasksProjection())
    replay = replay_mod.Replay(projections)
    replay.run([rows for rows in lists if isinstance(rows, list)])
    return [lists, [p.snapshot() for p in projections], replay.count, replay.failures]


def test_pure_and_compiled_replay_give_the_same_records_and_state(tmp_path: Path) -> None:
    _need_compiled()
    from kiln import replay
    from kiln.journal import reader
    from kiln.journal.segments import journal_dir, list_segments
    from tests.unit.journal.test_replay_lists import _history, _written

    _written(tmp_path, _history(120), segment_bytes=1 << 20)
    directory = journal_dir(tmp_path)
    pure_reader, pure_replay = _pure("kiln.journal.reader"), _pure("kiln.replay")
    expected = _replay_outcome(pure_reader, pure_replay, directory)
    assert expected[2] == len(_history(120)) and expected[1][1]["pushes"]  # records came out and were applied
    assert _replay_outcome(reader, replay, directory) == expected
    segment = list_segments(directory)[0][1]
    data = segment.read_bytes()
    for damaged in _damaged(data, random.Random(4)):
        segment.write_bytes(damaged)
        assert _replay_outcome(reader, replay, directory) == _replay_outcome(pure_reader, pure_replay, directory)
