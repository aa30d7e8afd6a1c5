"""Fuzz targets for the media parsers and builders outside RTMP: SRT streamid and caller URLs, ID3
(the builder behind ``sendEvent`` and the reader), BMFF, H.264/H.265/AAC configurations, and MPEG-TS
(sync detection, the timestamp clock, Kiln's bulk demuxer in any chunking, and the demux worker fed
mutated packets and PES headers).

Property of each: success or the parser's own ``ValueError`` subclass, within the time and memory
bounds of tests/fuzz/budget.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiln.media.formats import id3
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.parse import DECODERS, Box, decode, parse_boxes
from kiln.media.formats.bmff.reader import read_fragments, read_init_segment
from kiln.media.formats.codecs import aac, h264, h265, nal
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.mpegts.demux import TsDemuxer
from kiln.media.formats.mpegts.tsclock import TsClock
from kiln.media.ingest.demux.tsreader import TS_PACKET_SIZE, TsDemuxWorker, ts_sync_offset
from kiln.media.net.srt.streamid import StreamIdError, resolve_streamid
from kiln.media.net.srt.url import SrtUrlError, parse_srt_url
from tests.fuzz.budget import bounded, fuzz, only
from tests.fuzz.strategies import inputs, mutated
from tests.unit.bmff.test_parse_robustness import INIT, PART
from tests.unit.codecs.media import encode_aac, encode_video
from tests.unit.demux.test_tsreader import Glue, make_ts

# ---- SRT --------------------------------------------------------------------------------------------

_STREAMID_PARTS = st.sampled_from(["#!::", "u=", "r=", "m=publish", ",", "/", "srt://", "default", "app", "s",
                                   "?", "&", "=", "%2F", "%", "%zz", ":", "[", "]", "::1", "9999", "@", " ", "\x00",
                                   "h.example.com", "#!::u=", "?token=x"])
STREAMIDS = st.one_of(st.text(max_size=64), st.lists(_STREAMID_PARTS, max_size=16).map("".join))


@fuzz(3.0)
@given(STREAMIDS, st.integers(0, 65535))
def test_srt_streamid(streamid: str, port: int) -> None:
    target = only(StreamIdError, resolve_streamid, streamid, local_port=port, stream_map={9999: "default/app/mapped"})
    if target is not None:
        assert target.app and target.stream and "/" not in target.app + target.stream
        assert target.url.startswith("srt://")


_URL_PARTS = st.sampled_from(["srt://", "127.0.0.1", ":", "9000", "?", "&", "=", "latency", "mode", "caller",
                              "listener", "streamid", "#!::u=a/b/c", "passphrase", "pbkeylen", "timeout", "-1",
                              "99999999999999999999", "0x", "maxbw", "[::1]", "%", "mss", "true", "minversion"])


@fuzz(2.0)
@given(st.one_of(st.text(max_size=64), st.lists(_URL_PARTS, max_size=20).map("".join)))
def test_srt_caller_url(url: str) -> None:
    logging.getLogger("kiln.media.net.srt.url").setLevel(logging.ERROR)  # "option ignored" per example
    only(SrtUrlError, parse_srt_url, url)


# ---- ID3 (sendEvent) --------------------------------------------------------------------------------

FRAMES = st.one_of(
    st.builds(id3.Id3Frame.txxx, st.text(max_size=40), st.text(max_size=200)),
    st.builds(id3.Id3Frame.text, st.one_of(st.sampled_from(["TIT2", "TXXX", "T", "TIT2X", "Té", "PRIV"]),
                                            st.text(max_size=5)), st.text(max_size=200)),
    st.builds(id3.Id3Frame.priv, st.text(max_size=40), st.binary(max_size=200)),
)


@fuzz(3.0)
@given(st.lists(FRAMES, max_size=6))
def test_id3_builder_round_trip(frames: list[id3.Id3Frame]) -> None:
    """Whatever a sendEvent body asks for: a tag or Id3Error; a built tag reads back as what was asked,
    up to a NUL inside a description or owner, where readers split (as OME writes it)."""
    tag = only(id3.Id3Error, id3.build_id3v24_tag, frames)
    if tag is None:
        return
    read = only(id3.Id3Error, id3.parse_id3v24_tag, tag)
    nul_inside = any("\0" in getattr(f, "description", getattr(f, "owner", "")) for f in frames)
    if not nul_inside:
        assert read == frames


ID3_SEEDS = [id3.build_id3v24_tag([id3.Id3Frame.txxx("scene", "goal"), id3.Id3Frame.text("TIT2", "t"),
                                   id3.Id3Frame.priv("com.example", b"\x00\x01")])]


@fuzz(2.0)
@given(inputs(ID3_SEEDS))
def test_id3_reader(data: bytes) -> None:
    only(id3.Id3Error, id3.parse_id3v24_tag, data)


# ---- BMFF -------------------------------------------------------------------------------------------

def _walk(boxes: list[Box] | tuple[Box, ...]) -> None:
    for box in boxes:
        if box.type in DECODERS:
            only(BmffError, decode, box)
        _walk(box.children)


@fuzz(2.0)
@given(inputs([INIT, PART, INIT + PART], max_random=1024))
def test_bmff(data: bytes) -> None:
    only(BmffError, read_init_segment, data)
    only(BmffError, read_fragments, data)
    boxes = only(BmffError, parse_boxes, data)
    if boxes is not None:
        _walk(boxes)


# ---- codec configurations ---------------------------------------------------------------------------

_AVCC = [encode_video("libx264", options=(("preset", "veryfast"),)).extradata,
         encode_video("libx264", pix_fmt="yuv444p", options=(("x264-params", "cqm=jvt"),)).extradata]
_HVCC = [encode_video("libx265").extradata, encode_video("libx265", pix_fmt="yuv420p10le").extradata]
_ASC = [encode_aac(48000, "stereo").extradata, encode_aac(8000, "5.1").extradata,
        bytes([0x2B, 0x92, 0x08, 0x00]), bytes([0x10, 0x00]) + bytes(8)]  # SBR explicit; a PCE
_SPS = [bytes(n) for c in _AVCC for n in h264.parse_avcc(c).sps]
_HSPS = [n for c in _HVCC for n in h265.parse_hvcc(c).nals_of(h265.NAL_SPS)]
_ADTS = aac.build_adts_header(aac.parse_asc(_ASC[0]), 6) + b"abcdef"


@fuzz(2.0)
@given(inputs(_AVCC + _SPS))
def test_h264_config(data: bytes) -> None:
    config = only(CodecConfigError, h264.parse_avcc, data)
    if config is not None:
        only(CodecConfigError, config.first_sps)
    only(CodecConfigError, h264.parse_sps, data)
    only(CodecConfigError, h264.avcc_from_annexb, data)
    only(CodecConfigError, h264.is_keyframe, data)


@fuzz(2.0)
@given(inputs(_HVCC + _HSPS))
def test_h265_config(data: bytes) -> None:
    config = only(CodecConfigError, h265.parse_hvcc, data)
    if config is not None:
        only(CodecConfigError, config.first_sps)
    only(CodecConfigError, h265.parse_sps, data)
    only(CodecConfigError, h265.hvcc_from_annexb, data)
    only(CodecConfigError, h265.is_keyframe, data)


@fuzz(2.0)
@given(inputs(_ASC + [_ADTS * 3]))
def test_aac_config(data: bytes) -> None:
    only(CodecConfigError, aac.parse_asc, data)
    only(CodecConfigError, aac.parse_adts_header, data)
    only(CodecConfigError, lambda: list(aac.iter_adts_frames(data)))


@fuzz(2.0)
@given(inputs([b"\x00\x00\x00\x01" + _SPS[0] + b"\x00\x00\x01" + _SPS[1], nal.to_length_prefixed(_SPS),
               b"\x00\x00\x03" * 4]),
       st.sampled_from([1, 2, 3, 4]))
def test_nal_units(data: bytes, length_size: int) -> None:
    def run() -> None:
        nal.split_annexb(data)
        nal.unescape_rbsp(data)
        nal.annexb_to_length_prefixed(data)
        if nal.length_prefixed_is_valid(data, length_size):
            nal.convert_length_size(data, 4)
            nal.length_prefixed_to_annexb(data, length_size)
    only(CodecConfigError, run)


# ---- MPEG-TS ----------------------------------------------------------------------------------------

@fuzz(2.0)
@given(inputs([make_ts(2)[:4 * TS_PACKET_SIZE]], max_random=1024))
def test_ts_sync_offset(data: bytes) -> None:
    offset = only((), ts_sync_offset, data)
    if offset is not None:
        assert data[offset] == 0x47 and data[offset + TS_PACKET_SIZE] == 0x47


@fuzz(3.0)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-(1 << 34), 1 << 34), st.integers(-(1 << 34), 1 << 34),
                          st.integers(0, 1 << 20)), max_size=40))
def test_ts_clock(steps: list[tuple[int, int, int, int]]) -> None:
    """Any timestamps in (wraps, jumps, garbage): each track's output dts strictly increases."""
    logging.getLogger("kiln.media.formats.mpegts.tsclock").setLevel(logging.WARNING)
    clock = TsClock("fuzz")
    last: dict[int, int] = {}

    def run() -> None:
        for track, dts, pts, duration in steps:
            out_dts, _ = clock.place(track, dts, pts, duration)
            assert out_dts > last.get(track, -(1 << 62))
            last[track] = out_dts
    only((), run)


_TS = make_ts(8)


@st.composite
def ts_streams(draw: st.DrawFn) -> bytes:
    """A real TS with packets dropped, duplicated or reordered, and mutations aimed at the packet
    header, adaptation field and PES header of a few packets (where lengths and flags live)."""
    packets = [bytearray(_TS[i:i + TS_PACKET_SIZE]) for i in range(0, len(_TS), TS_PACKET_SIZE)]
    for _ in range(draw(st.integers(0, 8))):
        index = draw(st.integers(0, len(packets) - 1))
        op = draw(st.sampled_from(("head", "head", "pes", "drop", "dup", "swap", "noise")))
        packet = packets[index]
        if op == "head":
            packet[draw(st.integers(1, 5))] = draw(st.integers(0, 255))
        elif op == "pes":
            at = draw(st.integers(4, 24))
            packet[at:at + 2] = draw(st.binary(min_size=2, max_size=2))
        elif op == "drop":
            del packets[index]
        elif op == "dup":
            packets.insert(index, bytearray(packet))
        elif op == "swap":
            other = draw(st.integers(0, len(packets) - 1))
            packets[index], packets[other] = packets[other], packets[index]
        else:
            packet[4:] = draw(st.binary(min_size=TS_PACKET_SIZE - 4, max_size=TS_PACKET_SIZE - 4))
        if not packets:
            break
    return b"".join(packets)


@fuzz(1.0)
@given(st.one_of(ts_streams(), mutated([_TS], max_mutations=6)), st.lists(st.integers(1, 4000), min_size=1, max_size=8))
def test_ts_bulk_demuxer(data: bytes, sizes: list[int]) -> None:
    """Kiln's bulk TS demuxer never raises, whatever the bytes and their chunking, and keeps what it holds
    back bounded (a partial packet, or the tail where a sync run may start)."""
    demuxer = TsDemuxer()
    at = step = 0
    total = 0
    while at < len(data):
        size = sizes[step % len(sizes)]
        for unit in demuxer.feed(data[at:at + size]):
            total += len(unit.data)
            assert unit.pts is None or 0 <= unit.pts < 1 << 33
        assert len(demuxer._rest) < 3 * TS_PACKET_SIZE
        at += size
        step += 1
    total += sum(len(unit.data) for unit in demuxer.flush())
    assert total <= len(data)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@fuzz(0.3)
@given(st.one_of(ts_streams(), mutated([_TS], max_mutations=4)))
def test_ts_demux_worker(data: bytes) -> None:
    """The SRT / MPEG-TS-over-UDP ingest worker: the stream ends with a reason, the thread exits,
    and nothing is logged as an error (an exception escaping PyAV or the converter)."""
    errors = _Errors()
    logging.getLogger("kiln").addHandler(errors)
    glue = Glue()
    worker: Any = None
    try:
        with bounded(seconds=30):
            worker = TsDemuxWorker("fuzz", glue.hooks()).start()
            for start in range(0, len(data), 1316):
                worker.push(data[start:start + 1316])
            worker.finish("disconnected")
            worker.join(20)
            assert not worker.alive, "the demux worker did not finish"
    finally:
        logging.getLogger("kiln").removeHandler(errors)
        if worker is not None and worker.alive:
            worker.abort("test over")
    assert glue.ended and isinstance(glue.ended[0], str)
    assert not errors.messages, errors.messages[0]
    assert threading.active_count() < 50
