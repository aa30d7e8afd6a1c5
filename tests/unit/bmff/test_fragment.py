"""Fragments read back with Kiln's parser: every header field, data offsets, and random sample tables."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.media.formats.bmff import boxes
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.fragment import (
    NON_SYNC_SAMPLE_FLAGS,
    SYNC_SAMPLE_FLAGS,
    Sample,
    TrafData,
    build_fragment,
    build_track_fragment,
    sample_flags,
)
from kiln.media.formats.bmff.parse import parse_boxes
from kiln.media.formats.bmff.reader import read_fragments
from tests.unit.bmff.media import Encoded, ExpectedSample, fragments_for, sample_table, traf_for


def _check_track_fragments(data: bytes, rows: list[ExpectedSample], per_fragment: int, track_id: int) -> None:
    fragments = read_fragments(data)
    assert len(fragments) == -(-len(rows) // per_fragment)
    next_dts = 0
    for n, fragment in enumerate(fragments):
        assert fragment.sequence_number == n + 1
        assert fragment.emsgs == ()
        [traf] = fragment.trafs
        assert traf.tfhd.track_id == track_id
        assert traf.tfhd.flags == 0x020000 and traf.tfhd.default_base_is_moof
        assert traf.tfdt is not None and traf.tfdt.version == 1
        assert traf.tfdt.base_media_decode_time == next_dts  # continuity across fragments
        [trun] = traf.truns
        assert (trun.version, trun.flags, trun.first_sample_flags) == (1, 0xF01, None)
        expected = rows[n * per_fragment:(n + 1) * per_fragment]
        assert [(s.duration, s.size, s.flags, s.composition_offset) for s in trun.samples] == [
            (r.duration, len(r.data), SYNC_SAMPLE_FLAGS if r.keyframe else NON_SYNC_SAMPLE_FLAGS, r.pts - r.dts)
            for r in expected]
        assert [s.is_sync for s in trun.samples] == [r.keyframe for r in expected]
        assert list(traf.sample_data) == [r.data for r in expected]  # data offset points at the samples
        next_dts += sum(s.duration for s in trun.samples)


def test_h264_with_b_frames_fragments_read_back(h264_bframes: Encoded) -> None:
    rows = sample_table(h264_bframes)
    assert any(r.pts - r.dts > 512 for r in rows), "the encoder produced no reordered frames"
    data = b"".join(fragments_for(1, rows, 8))
    _check_track_fragments(data, rows, 8, 1)
    # The data offset is the moof size plus the 8-byte mdat header.
    top = parse_boxes(data)
    assert [b.type for b in top[:2]] == ["moof", "mdat"]
    first_trun = top[0].path("traf/trun")
    assert struct.unpack_from(">i", first_trun.payload, 8)[0] == top[0].size + 8


@pytest.mark.parametrize("media", ["h264_no_bframes", "h265", "aac", "opus"])
def test_other_tracks_fragments_read_back(media: str, request: pytest.FixtureRequest) -> None:
    encoded: Encoded = request.getfixturevalue(media)
    rows = sample_table(encoded)
    _check_track_fragments(b"".join(fragments_for(3, rows, 10)), rows, 10, 3)


def test_two_track_fragment_data_offsets(h264_bframes: Encoded, aac: Encoded) -> None:
    video, audio = sample_table(h264_bframes)[:15], sample_table(aac)[:24]
    data = build_fragment(7, [traf_for(1, video), traf_for(2, audio)])
    [fragment] = read_fragments(data)
    assert fragment.sequence_number == 7
    assert [t.tfhd.track_id for t in fragment.trafs] == [1, 2]
    assert list(fragment.trafs[0].sample_data) == [r.data for r in video]
    assert list(fragment.trafs[1].sample_data) == [r.data for r in audio]
    moof, mdat = parse_boxes(data)
    offsets = [t.truns[0].data_offset for t in fragment.trafs]
    assert offsets == [moof.size + 8, moof.size + 8 + sum(len(r.data) for r in video)]
    assert mdat.payload == b"".join(r.data for r in video + audio)


def test_data_given_as_one_bytes_object_equals_data_given_as_a_list(aac: Encoded) -> None:
    rows = sample_table(aac)[:5]
    traf = traf_for(1, rows)
    joined = TrafData(traf.track_id, traf.base_decode_time, traf.samples, b"".join(r.data for r in rows))
    assert build_fragment(1, [joined]) == build_fragment(1, [traf])


def test_mdat_over_4_gib_gets_a_largesize_header_and_offsets_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boxes, "MAX_COMPACT_SIZE", 20)  # stands in for 2^32 - 1
    samples = [Sample(10, 7, True), Sample(10, 9, False, -3)]
    data = build_fragment(1, [TrafData(1, 0, samples, [b"A" * 7, b"B" * 9])])
    [fragment] = read_fragments(data)
    moof_size = parse_boxes(data)[0].size
    assert data[moof_size:moof_size + 16] == struct.pack(">I4sQ", 1, b"mdat", 32)
    assert fragment.trafs[0].truns[0].data_offset == moof_size + 16
    assert fragment.trafs[0].sample_data == (b"A" * 7, b"B" * 9)


@pytest.mark.parametrize("trafs", [
    [],
    [TrafData(1, 0, [], b"")],
    [TrafData(0, 0, [Sample(1, 1, True)], b"x")],                   # track_ID 0
    [TrafData(1, 0, [Sample(1, 2, True)], b"x")],                   # sizes do not add up
    [TrafData(1, 0, [Sample(1, 1, True)], [b"x", b"y"])],
    [TrafData(1, -1, [Sample(1, 1, True)], b"x")],                  # negative decode time
    [TrafData(1, 1 << 64, [Sample(1, 1, True)], b"x")],
    [TrafData(1, 0, [Sample(-1, 1, True)], b"x")],                  # negative duration
    [TrafData(1, 0, [Sample(1, 1, True, 1 << 31)], b"x")],          # offset beyond signed 32 bits
])
def test_impossible_fragments_are_rejected(trafs: list[TrafData]) -> None:
    with pytest.raises(BmffError):
        build_fragment(1, trafs)


_sample = st.builds(Sample, duration=st.integers(0, 0xFFFFFFFF), size=st.integers(0, 40), keyframe=st.booleans(),
                    composition_offset=st.integers(-(1 << 31), (1 << 31) - 1))


@st.composite
def _trafs(draw: st.DrawFn) -> list[TrafData]:
    track_ids = draw(st.lists(st.integers(1, 0xFFFFFFFF), min_size=1, max_size=3, unique=True))
    out = []
    for track_id in track_ids:
        samples = draw(st.lists(_sample, min_size=1, max_size=30))
        chunks = [draw(st.binary(min_size=s.size, max_size=s.size)) for s in samples]
        data: bytes | list[bytes] = draw(st.sampled_from([chunks, b"".join(chunks)]))
        out.append(TrafData(track_id, draw(st.integers(0, (1 << 64) - 1)), samples, data))
    return out


@settings(max_examples=300, deadline=None)
@given(sequence_number=st.integers(0, 0xFFFFFFFF), trafs=_trafs())
def test_random_sample_tables_round_trip(sequence_number: int, trafs: list[TrafData]) -> None:
    [fragment] = read_fragments(build_fragment(sequence_number, trafs))
    assert fragment.sequence_number == sequence_number
    assert len(fragment.trafs) == len(trafs)
    for written, read in zip(trafs, fragment.trafs, strict=True):
        assert read.tfhd.track_id == written.track_id
        assert read.tfdt is not None and read.tfdt.base_media_decode_time == written.base_decode_time
        [trun] = read.truns
        assert [(s.duration, s.size, s.is_sync, s.composition_offset) for s in trun.samples] == [
            (s.duration, s.size, s.keyframe, s.composition_offset) for s in written.samples]
        joined = written.data if isinstance(written.data, bytes) else b"".join(written.data)
        starts = [sum(s.size for s in written.samples[:i]) for i in range(len(written.samples))]
        assert list(read.sample_data) == [joined[at:at + s.size] for at, s in zip(starts, written.samples,
                                                                                  strict=True)]


def _rows(samples: list[Sample]) -> list[int]:
    return [v for s in samples for v in (s.duration, s.size, sample_flags(s.keyframe), s.composition_offset)]


@settings(max_examples=200, deadline=None)
@given(sequence_number=st.integers(0, 0xFFFFFFFF), trafs=_trafs())
def test_a_fragment_from_flat_rows_is_the_same_bytes(sequence_number: int, trafs: list[TrafData]) -> None:
    traf = trafs[0]
    data = traf.data if isinstance(traf.data, list) else [traf.data]
    assert build_track_fragment(sequence_number, traf.track_id, traf.base_decode_time, _rows(traf.samples),
                                data) == build_fragment(sequence_number, [traf])


@pytest.mark.parametrize(("track_id", "base", "rows", "data"), [
    (1, 0, [], []),                                             # no sample
    (1, 0, [1, 1, SYNC_SAMPLE_FLAGS], [b"x"]),                  # a row cut short
    (0, 0, [1, 1, SYNC_SAMPLE_FLAGS, 0], [b"x"]),               # track_ID 0
    (1, 0, [1, 2, SYNC_SAMPLE_FLAGS, 0], [b"x"]),               # sizes do not add up
    (1, -1, [1, 1, SYNC_SAMPLE_FLAGS, 0], [b"x"]),              # negative decode time
    (1, 0, [-1, 1, SYNC_SAMPLE_FLAGS, 0], [b"x"]),              # negative duration
    (1, 0, [1, 1, SYNC_SAMPLE_FLAGS, 1 << 31], [b"x"]),         # offset beyond signed 32 bits
])
def test_impossible_flat_rows_are_rejected(track_id: int, base: int, rows: list[int], data: list[bytes]) -> None:
    with pytest.raises(BmffError):
        build_track_fragment(1, track_id, base, rows, data)
