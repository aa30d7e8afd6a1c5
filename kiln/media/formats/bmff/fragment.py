"""Movie fragments (``moof`` + ``mdat``), the body of every LL-HLS part (media-spec §2.7).

Layout per track fragment: ``tfhd`` (default-base-is-moof, so offsets are relative to the ``moof``),
``tfdt`` version 1 (64-bit decode time), ``trun`` version 1 (signed composition offsets, needed for
B-frames without an edit list) with a data offset and per-sample duration, size, flags and offset.
Each traf header is one ``struct.pack`` and its sample table one more: a 15-sample video part takes
about 8 µs, most of it the final copy of the samples into the output.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from kiln.media.formats.bmff.boxes import box_header
from kiln.media.formats.bmff.errors import BmffError

# sample_flags (14496-12 §8.8.3.1): sample_depends_on in bits 24-25, sample_is_non_sync_sample bit 16.
SYNC_SAMPLE_FLAGS = 0x02000000       # depends on no other sample
NON_SYNC_SAMPLE_FLAGS = 0x01010000   # depends on others, not a sync sample

TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_DATA_OFFSET = 0x000001
TRUN_SAMPLE_DURATION = 0x000100
TRUN_SAMPLE_SIZE = 0x000200
TRUN_SAMPLE_FLAGS = 0x000400
TRUN_SAMPLE_CTO = 0x000800
_TRUN_FLAGS = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS | TRUN_SAMPLE_CTO

# moof header + mfhd (size 16, version/flags 0, sequence_number)
_MOOF_HEAD = struct.Struct(">I4sI4sII")
# traf header; tfhd (size 16); tfdt v1 (size 20); trun v1 header with sample_count and data_offset
_TRAF_HEAD = struct.Struct(">I4s" "I4sII" "I4sIQ" "I4sIIi")
_TRAF_FIXED = _TRAF_HEAD.size      # 64
_ENTRY_SIZE = 16                   # duration, size, flags, composition offset
_TFHD = (16, b"tfhd", TFHD_DEFAULT_BASE_IS_MOOF)
_TFDT_V1 = 1 << 24
_TRUN_V1 = 1 << 24 | _TRUN_FLAGS


@dataclass(slots=True)
class Sample:
    """One sample's row in ``trun``; ``composition_offset`` is pts - dts in the track timescale."""

    duration: int
    size: int
    keyframe: bool
    composition_offset: int = 0


@dataclass(slots=True)
class TrafData:
    """One track's run in a fragment. ``data`` is the samples' bytes, concatenated or one item each,
    in the order of ``samples``; its total length must equal the sum of the sample sizes."""

    track_id: int
    base_decode_time: int
    samples: list[Sample]
    data: bytes | list[bytes]


@functools.lru_cache(maxsize=512)
def _entries_struct(count: int) -> struct.Struct:
    return struct.Struct(">" + "IIIi" * count)


def sample_flags(keyframe: bool) -> int:
    """A trun row's sample_flags for a sync (independent) or a non-sync sample."""
    return SYNC_SAMPLE_FLAGS if keyframe else NON_SYNC_SAMPLE_FLAGS


def _trun_entries(samples: list[Sample]) -> tuple[bytes, int]:
    """The packed sample rows and the sum of the sample sizes."""
    flat: list[int] = []
    extend = flat.extend
    for s in samples:
        extend((s.duration, s.size, SYNC_SAMPLE_FLAGS if s.keyframe else NON_SYNC_SAMPLE_FLAGS,
                s.composition_offset))
    return _pack_rows(flat)


def _pack_rows(rows: list[int]) -> tuple[bytes, int]:
    try:
        packed = _entries_struct(len(rows) // 4).pack(*rows)
    except struct.error as exc:
        raise BmffError(f"sample field out of range: {exc}") from exc
    return packed, sum(rows[1::4])


def _data_length(data: bytes | list[bytes]) -> int:
    return len(data) if isinstance(data, bytes | bytearray | memoryview) else sum(map(len, data))


def build_fragment(sequence_number: int, trafs: list[TrafData]) -> bytes:
    """``moof`` (mfhd + one ``traf`` per item) followed by one ``mdat`` holding every traf's data in order."""
    if not trafs:
        raise BmffError("a fragment needs at least one track run")
    runs = []
    for traf in trafs:
        if not traf.samples:
            raise BmffError(f"track {traf.track_id}: a track run needs at least one sample")
        runs.append(_Run(traf.track_id, traf.base_decode_time, len(traf.samples), *_trun_entries(traf.samples),
                         traf.data))
    return _write(sequence_number, runs)


def build_track_fragment(sequence_number: int, track_id: int, base_decode_time: int, rows: list[int],
                         data: list[bytes]) -> bytes:
    """A one-track fragment from its trun rows given flat, four ints a sample (duration, size,
    :func:`sample_flags`, composition offset) and each sample's bytes: the packager's hot path, which
    builds no :class:`Sample` per frame. Same checks and bytes as :func:`build_fragment`."""
    if not rows or len(rows) % 4:
        raise BmffError(f"track {track_id}: a track run needs at least one sample, as four ints each")
    return _write(sequence_number, [_Run(track_id, base_decode_time, len(rows) // 4, *_pack_rows(rows), data)])


@dataclass(slots=True)
class _Run:
    track_id: int
    base_decode_time: int
    count: int
    entries: bytes
    total: int
    data: bytes | list[bytes]


def _write(sequence_number: int, runs: list[_Run]) -> bytes:
    moof_size = _MOOF_HEAD.size
    for run in runs:
        if run.track_id < 1:
            raise BmffError(f"track_ID {run.track_id} is invalid in ISO-BMFF (must be >= 1)")
        if not 0 <= run.base_decode_time < 1 << 64:
            raise BmffError(f"track {run.track_id}: base decode time {run.base_decode_time} does not fit tfdt "
                            f"(unsigned 64-bit); timestamps must be rebased to start at or after 0")
        if run.total != _data_length(run.data):
            raise BmffError(f"track {run.track_id}: sample sizes add up to {run.total} bytes, "
                            f"data holds {_data_length(run.data)}")
        moof_size += _TRAF_FIXED + len(run.entries)
    mdat_size = sum(run.total for run in runs)
    mdat_head = box_header(b"mdat", mdat_size)
    offset = moof_size + len(mdat_head)
    try:
        out = [_MOOF_HEAD.pack(moof_size, b"moof", 16, b"mfhd", 0, sequence_number)]
        for run in runs:
            entries = run.entries
            out.append(_TRAF_HEAD.pack(_TRAF_FIXED + len(entries), b"traf", *_TFHD, run.track_id,
                                       20, b"tfdt", _TFDT_V1, run.base_decode_time,
                                       20 + len(entries), b"trun", _TRUN_V1, run.count, offset))
            out.append(entries)
            offset += run.total
    except struct.error as exc:
        raise BmffError(f"fragment header field out of range (sequence number, track id, decode time "
                        f"or a data offset beyond 2 GiB): {exc}") from exc
    out.append(mdat_head)
    for run in runs:
        if isinstance(run.data, list):
            out.extend(run.data)
        else:
            out.append(run.data)
    return b"".join(out)
