"""Init segments (``ftyp`` + ``moov``) for fragmented MP4, laid out as OME writes them (media-spec §2.7).

Every sample table is empty and ``mvex``/``trex`` announces that the media comes in movie fragments;
durations are 0 (unknown, live). Track ids are ISO-BMFF ``track_ID`` values and must be ≥ 1.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kiln.media.formats.bmff.boxes import box, full_box
from kiln.media.formats.bmff.entries import sample_entry
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.model import MediaKind, Track

MOVIE_TIMESCALE = 1000
_COMPATIBLE_BRANDS = (b"iso6", b"mp42", b"avc1", b"dash", b"hlsf", b"aid3")
FTYP = box(b"ftyp", b"iso6", struct.pack(">I", 0), *_COMPATIBLE_BRANDS)

_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_TRACK_ENABLED_IN_MOVIE = 0x000003
_LANGUAGE_UND = (ord("u") - 0x60) << 10 | (ord("n") - 0x60) << 5 | (ord("d") - 0x60)
_HANDLERS = {MediaKind.VIDEO: (b"vide", b"VideoHandler"), MediaKind.AUDIO: (b"soun", b"SoundHandler")}

# Sample tables with no entries: fragments carry every sample.
_EMPTY_STBL_TABLES = (
    full_box(b"stts", 0, 0, b"\0\0\0\0"),
    full_box(b"stsc", 0, 0, b"\0\0\0\0"),
    full_box(b"stsz", 0, 0, b"\0\0\0\0\0\0\0\0"),
    full_box(b"stco", 0, 0, b"\0\0\0\0"),
)
_DINF = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
_VMHD = full_box(b"vmhd", 0, 1, bytes(8))   # graphicsmode copy, opcolor 0
_SMHD = full_box(b"smhd", 0, 0, bytes(4))   # balance 0


def build_init_segment(track: Track, *, timescale: int | None = None) -> bytes:
    """The init segment of one track; ``timescale`` defaults to the track time base's denominator."""
    return FTYP + _moov([track], [timescale or track.time_base.denominator])


def build_init_segment_multi(tracks: Sequence[Track], timescales: Sequence[int] | None = None) -> bytes:
    """One init segment with a ``trak`` per track, in order (for muxers and recorders that interleave)."""
    if not tracks:
        raise BmffError("an init segment needs at least one track")
    if timescales is None:
        timescales = [t.time_base.denominator for t in tracks]
    if len(timescales) != len(tracks):
        raise BmffError(f"{len(timescales)} timescales for {len(tracks)} tracks")
    return FTYP + _moov(tracks, timescales)


def _moov(tracks: Sequence[Track], timescales: Sequence[int]) -> bytes:
    ids = [t.id for t in tracks]
    if len(set(ids)) != len(ids):
        raise BmffError(f"track ids are not unique: {ids}")
    for t, ts in zip(tracks, timescales, strict=True):
        if not 1 <= t.id <= 0xFFFFFFFE:
            raise BmffError(f"track id {t.id} is not a valid ISO-BMFF track_ID (1 .. 2^32-2)")
        if not 1 <= ts <= 0xFFFFFFFF:
            raise BmffError(f"track {t.id}: timescale {ts} out of range")
        if t.kind not in _HANDLERS:
            raise BmffError(f"track {t.id}: {t.kind.value} tracks are not packaged in ISO-BMFF")
    traks = [_trak(t, ts) for t, ts in zip(tracks, timescales, strict=True)]
    trexes = [full_box(b"trex", 0, 0, struct.pack(">5I", t.id, 1, 0, 0, 0)) for t in tracks]
    return box(b"moov", _mvhd(max(ids) + 1), *traks, box(b"mvex", *trexes))


def _mvhd(next_track_id: int) -> bytes:
    # creation, modification, timescale, duration, rate 1.0, volume 1.0, reserved(10), matrix,
    # pre_defined(24), next_track_ID
    return full_box(b"mvhd", 0, 0, struct.pack(">IIIIIH10x", 0, 0, MOVIE_TIMESCALE, 0, 0x00010000, 0x0100),
                    _UNITY_MATRIX, bytes(24), struct.pack(">I", next_track_id))


def _tkhd(track: Track) -> bytes:
    is_audio = track.kind is MediaKind.AUDIO
    width, height = (0, 0) if is_audio else (track.width, track.height)
    # creation, modification, track_ID, reserved, duration, reserved(8), layer, alternate_group, volume,
    # reserved(2), matrix, width and height in 16.16
    head = struct.pack(">IIIII8xhhH2x", 0, 0, track.id, 0, 0, 0, 0, 0x0100 if is_audio else 0)
    return full_box(b"tkhd", 0, _TRACK_ENABLED_IN_MOVIE, head, _UNITY_MATRIX,
                    struct.pack(">II", (width & 0xFFFF) << 16, (height & 0xFFFF) << 16))


def _trak(track: Track, timescale: int) -> bytes:
    handler_type, handler_name = _HANDLERS[track.kind]
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _LANGUAGE_UND, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, handler_type), handler_name, b"\0")
    media_header = _VMHD if track.kind is MediaKind.VIDEO else _SMHD
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry(track))
    stbl = box(b"stbl", stsd, *_EMPTY_STBL_TABLES)
    minf = box(b"minf", media_header, _DINF, stbl)
    return box(b"trak", _tkhd(track), box(b"mdia", mdhd, hdlr, minf))
