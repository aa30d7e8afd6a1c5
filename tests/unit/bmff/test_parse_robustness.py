"""The reader on hostile input: random and mutated bytes end in a result or a BmffError, quickly."""

from __future__ import annotations

import struct
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.media.formats.bmff.emsg import build_emsg_v1
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.fragment import Sample, TrafData, build_fragment
from kiln.media.formats.bmff.init import build_init_segment_multi
from kiln.media.formats.bmff.parse import DECODERS, Box, decode, decode_trun, parse_boxes
from kiln.media.formats.bmff.reader import read_fragments, read_init_segment
from kiln.media.model import Codec, MediaKind, Track

_VIDEO = Track(id=1, kind=MediaKind.VIDEO, codec=Codec.H264, time_base=Fraction(1, 90000),
               config=bytes.fromhex("0164001fffe1000567640014ac01000468ee3cb0"), width=320, height=180)
_AUDIO = Track(id=2, kind=MediaKind.AUDIO, codec=Codec.AAC, time_base=Fraction(1, 48000), config=b"\x11\x90",
               sample_rate=48000, channels=2)
INIT = build_init_segment_multi([_VIDEO, _AUDIO])
PART = (build_emsg_v1(timescale=1000, presentation_time=40, event_duration=0xFFFFFFFF, event_id=1,
                      scheme_id_uri="https://aomedia.org/emsg/ID3", value="OvenMediaEngine", message_data=b"ID3")
        + build_fragment(5, [TrafData(1, 3000, [Sample(3000, 4, True, 6000), Sample(3000, 3, False, -3000)],
                                      b"abcdxyz"),
                             TrafData(2, 1024, [Sample(1024, 2, True)], [b"aa"])]))


def _walk(boxes: list[Box] | tuple[Box, ...]) -> None:
    for b in boxes:
        if b.type in DECODERS:
            try:
                decode(b)
            except BmffError:
                pass
        _walk(b.children)


def _read_everything(data: bytes) -> None:
    """Every entry point; each may succeed or raise BmffError, and nothing else."""
    for reader in (read_init_segment, read_fragments):
        try:
            reader(data)
        except BmffError:
            pass
    try:
        _walk(parse_boxes(data))
    except BmffError:
        pass


def test_the_fixtures_are_valid() -> None:
    assert [t.tkhd.track_id for t in read_init_segment(INIT).tracks] == [1, 2]
    [fragment] = read_fragments(PART)
    assert [t.sample_data for t in fragment.trafs] == [(b"abcd", b"xyz"), (b"aa",)]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _read_everything(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from([INIT, PART, INIT + PART]), data=st.data())
def test_mutated_segments(source: bytes, data: st.DataObject) -> None:
    mutated = bytearray(source)
    for _ in range(data.draw(st.integers(1, 6))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    _read_everything(bytes(mutated))
    _read_everything(bytes(mutated[:cut]))


def test_deep_nesting_is_an_error_not_a_recursion_crash() -> None:
    data = b""
    for _ in range(5000):
        data = struct.pack(">I4s", 8 + len(data), b"moov") + data
    with pytest.raises(BmffError, match="nested"):
        parse_boxes(data)


def test_huge_counts_are_checked_against_the_bytes_present() -> None:
    started = time.thread_time()  # CPU time: a huge count must not be looped over; preemption is not that
    trun = Box("trun", 0, 24, 8, struct.pack(">IIi", 0x01000F01, 0xFFFFFFFF, 0))
    with pytest.raises(BmffError, match="do not fit"):
        decode_trun(trun)
    no_fields = Box("trun", 0, 16, 8, struct.pack(">II", 0x01000000, 0xFFFFFFFF))
    with pytest.raises(BmffError):
        decode_trun(no_fields)
    assert time.thread_time() - started < 0.5


@pytest.mark.parametrize("data", [
    struct.pack(">I4s", 7, b"free"),                          # size smaller than the header
    struct.pack(">I4s", 100, b"free"),                        # size past the end
    struct.pack(">I4sQ", 1, b"free", 8),                      # largesize smaller than its header
    struct.pack(">I4s", 8, b"uuid"),                          # uuid without its 16-byte extended type
    struct.pack(">I4s", 16, b"moov") + struct.pack(">I4s", 0, b"trak"),  # size 0 below top level
    b"\x00\x00\x00",
])
def test_malformed_box_headers(data: bytes) -> None:
    with pytest.raises(BmffError):
        parse_boxes(data)


def test_samples_outside_the_mdat_are_reported() -> None:
    moof_end = parse_boxes(PART)[1].offset + parse_boxes(PART)[1].size
    with pytest.raises(BmffError, match="outside every mdat"):
        read_fragments(PART[:moof_end] + struct.pack(">I4s", 9, b"mdat") + b"a")


def test_emsg_after_the_last_moof_is_reported() -> None:
    with pytest.raises(BmffError, match="no moof after"):
        read_fragments(PART + PART[:parse_boxes(PART)[0].size])
