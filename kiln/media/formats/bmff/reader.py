"""Whole-segment views over :mod:`kiln.media.formats.bmff.parse`: what an init segment declares, and what each
fragment of a part or segment holds, with every sample's bytes located through the data offsets.

This is how Kiln's tests and end-to-end checks verify its own output without trusting the writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.parse import (
    Box,
    Emsg,
    Ftyp,
    Hdlr,
    Mdhd,
    Mvhd,
    SampleEntry,
    Tfdt,
    Tfhd,
    Tkhd,
    Trex,
    Trun,
    decode_emsg,
    decode_ftyp,
    decode_hdlr,
    decode_mdhd,
    decode_mfhd,
    decode_mvhd,
    decode_stsd,
    decode_tfdt,
    decode_tfhd,
    decode_tkhd,
    decode_trex,
    decode_trun,
    find,
    parse_boxes,
)


@dataclass(frozen=True, slots=True)
class InitTrack:
    tkhd: Tkhd
    mdhd: Mdhd
    hdlr: Hdlr
    sample_entry: SampleEntry
    trex: Trex | None


@dataclass(frozen=True, slots=True)
class InitSegment:
    ftyp: Ftyp
    mvhd: Mvhd
    tracks: tuple[InitTrack, ...]


def read_init_segment(data: bytes) -> InitSegment:
    """``ftyp`` + ``moov`` decoded; each track with its one sample entry and its ``trex`` (if any)."""
    boxes = parse_boxes(data)
    moov = find(boxes, "moov")
    mvex = moov.first("mvex")
    trexes = {t.track_id: t for t in map(decode_trex, mvex.all("trex"))} if mvex is not None else {}
    tracks = []
    for trak in moov.all("trak"):
        tkhd = decode_tkhd(trak.child("tkhd"))
        entries = decode_stsd(trak.path("mdia/minf/stbl/stsd"))
        if len(entries) != 1:
            raise BmffError(f"track {tkhd.track_id}: {len(entries)} sample entries (expected 1)")
        tracks.append(InitTrack(tkhd, decode_mdhd(trak.path("mdia/mdhd")), decode_hdlr(trak.path("mdia/hdlr")),
                                entries[0], trexes.get(tkhd.track_id)))
    return InitSegment(decode_ftyp(find(boxes, "ftyp")), decode_mvhd(moov.child("mvhd")), tuple(tracks))


@dataclass(frozen=True, slots=True)
class TrackRun:
    """One ``traf``: its headers, its runs, and each sample's bytes cut out of the ``mdat``."""

    tfhd: Tfhd
    tfdt: Tfdt | None
    truns: tuple[Trun, ...]
    sample_data: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Fragment:
    """A ``moof`` with the ``emsg`` boxes written just before it and its runs."""

    offset: int
    sequence_number: int
    emsgs: tuple[Emsg, ...]
    trafs: tuple[TrackRun, ...]


def read_fragments(data: bytes) -> list[Fragment]:
    """Every fragment of a part or segment (``emsg``* ``moof`` ``mdat`` …), in order.

    Sample bytes are located as a reader does (tfhd base, default-base-is-moof, trun data offsets)
    and must lie inside a top-level ``mdat``; trailing ``emsg`` boxes with no ``moof`` after them
    are an error, since a player would never see them.
    """
    boxes = parse_boxes(data)
    mdats = [(b.offset + b.header_size, b.offset + b.size) for b in boxes if b.type == "mdat"]
    fragments: list[Fragment] = []
    pending: list[Emsg] = []
    for top in boxes:
        if top.type == "emsg":
            pending.append(decode_emsg(top))
        elif top.type == "moof":
            fragments.append(_fragment(top, tuple(pending), data, mdats))
            pending = []
    if pending:
        raise BmffError(f"{len(pending)} emsg box(es) with no moof after them")
    return fragments


def _fragment(moof: Box, emsgs: tuple[Emsg, ...], data: bytes, mdats: list[tuple[int, int]]) -> Fragment:
    trafs: list[TrackRun] = []
    next_base = moof.offset  # the first traf's implicit base is the moof; later ones follow the previous data
    for traf in moof.all("traf"):
        tfhd = decode_tfhd(traf.child("tfhd"))
        if tfhd.base_data_offset is not None:
            base = tfhd.base_data_offset
        elif tfhd.default_base_is_moof:
            base = moof.offset
        else:
            base = next_base
        tfdt_box = traf.first("tfdt")
        truns = tuple(decode_trun(t) for t in traf.all("trun"))
        samples: list[bytes] = []
        pos = base
        for trun in truns:
            if trun.data_offset is not None:
                pos = base + trun.data_offset
            for sample in trun.samples:
                size = sample.size if sample.size is not None else tfhd.default_sample_size
                if size is None:
                    raise BmffError(f"track {tfhd.track_id}: sample without a size and no default size")
                if not any(start <= pos and pos + size <= end for start, end in mdats):
                    raise BmffError(f"track {tfhd.track_id}: sample at {pos} (+{size}) is outside every mdat")
                samples.append(data[pos:pos + size])
                pos += size
        next_base = pos
        trafs.append(TrackRun(tfhd, decode_tfdt(tfdt_box) if tfdt_box else None, truns, tuple(samples)))
    return Fragment(moof.offset, decode_mfhd(moof.child("mfhd")).sequence_number, emsgs, tuple(trafs))
