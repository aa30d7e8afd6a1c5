"""Init segments: every field Kiln writes, read back with Kiln's parser and with PyAV (FFmpeg 8.1)."""

from __future__ import annotations

import io
import struct
from dataclasses import replace
from fractions import Fraction

import av
import pytest

from kiln.media.formats.bmff.entries import esds, hevc_parameter_sets_in_config, opus_head_to_dops
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.formats.bmff.init import build_init_segment, build_init_segment_multi
from kiln.media.formats.bmff.parse import (
    AudioSampleEntry,
    VisualSampleEntry,
    decode_dops,
    decode_esds,
    find,
    parse_boxes,
)
from kiln.media.formats.bmff.reader import read_init_segment
from kiln.media.model import Codec, MediaKind, Track
from tests.unit.bmff.media import Encoded

OME_BRANDS = ("iso6", "mp42", "avc1", "dash", "hlsf", "aid3")


def _pyav_stream(init: bytes, index: int = 0) -> tuple[int, int, int, int, bytes, str]:
    with av.open(io.BytesIO(init), format="mp4") as container:
        ctx = container.streams[index].codec_context
        if ctx.type == "video":
            return ctx.width, ctx.height, 0, 0, bytes(ctx.extradata), ctx.name
        return 0, 0, ctx.sample_rate, ctx.channels, bytes(ctx.extradata or b""), ctx.name


def test_h264_init_segment_fields(h264_bframes: Encoded) -> None:
    track = h264_bframes.track
    init = build_init_segment(track)
    info = read_init_segment(init)
    assert (info.ftyp.major_brand, info.ftyp.minor_version, info.ftyp.compatible_brands) == ("iso6", 0, OME_BRANDS)
    assert (info.mvhd.timescale, info.mvhd.duration, info.mvhd.rate, info.mvhd.volume,
            info.mvhd.next_track_id) == (1000, 0, 1.0, 1.0, 2)
    [t] = info.tracks
    assert (t.tkhd.flags, t.tkhd.track_id, t.tkhd.duration, t.tkhd.volume) == (3, 1, 0, 0.0)
    assert (t.tkhd.width, t.tkhd.height) == (320.0, 180.0)
    assert (t.mdhd.timescale, t.mdhd.duration, t.mdhd.language) == (15360, 0, "und")
    assert (t.hdlr.handler_type, t.hdlr.name) == ("vide", "VideoHandler")
    entry = t.sample_entry
    assert isinstance(entry, VisualSampleEntry)
    assert (entry.format, entry.data_reference_index, entry.width, entry.height, entry.depth) == (
        "avc1", 1, 320, 180, 24)
    assert entry.config("avcC") == track.config
    assert t.trex is not None
    assert (t.trex.track_id, t.trex.default_sample_description_index, t.trex.default_sample_duration,
            t.trex.default_sample_size, t.trex.default_sample_flags) == (1, 1, 0, 0, 0)
    # What PyAV sees when it uses the init segment as a template (kiln.media.publish.avbridge does this).
    assert _pyav_stream(init) == (320, 180, 0, 0, track.config, "h264")


def test_top_level_layout_and_empty_sample_tables(h264_no_bframes: Encoded) -> None:
    boxes = parse_boxes(build_init_segment(h264_no_bframes.track))
    assert [b.type for b in boxes] == ["ftyp", "moov"]
    moov = boxes[1]
    assert [c.type for c in moov.children] == ["mvhd", "trak", "mvex"]
    trak = moov.child("trak")
    assert [c.type for c in trak.children] == ["tkhd", "mdia"]
    assert [c.type for c in trak.path("mdia").children] == ["mdhd", "hdlr", "minf"]
    minf = trak.path("mdia/minf")
    assert [c.type for c in minf.children] == ["vmhd", "dinf", "stbl"]
    assert minf.child("vmhd").payload == b"\x00\x00\x00\x01" + bytes(8)
    dref = minf.path("dinf/dref")
    assert dref.payload[:8] == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    assert [(c.type, c.payload) for c in dref.children] == [("url ", b"\x00\x00\x00\x01")]
    stbl = minf.child("stbl")
    assert [c.type for c in stbl.children] == ["stsd", "stts", "stsc", "stsz", "stco"]
    assert {c.type: c.payload for c in stbl.children[1:]} == {
        "stts": bytes(8), "stsc": bytes(8), "stsz": bytes(12), "stco": bytes(8)}
    assert find(boxes, "moov/mvex/trex").payload == b"\x00" * 4 + struct.pack(">5I", 1, 1, 0, 0, 0)


def test_timescale_argument_overrides_the_time_base(h264_no_bframes: Encoded) -> None:
    info = read_init_segment(build_init_segment(h264_no_bframes.track, timescale=90000))
    assert info.tracks[0].mdhd.timescale == 90000
    track = replace(h264_no_bframes.track, time_base=Fraction(1, 1000))
    assert read_init_segment(build_init_segment(track)).tracks[0].mdhd.timescale == 1000


def test_h265_with_parameter_sets_in_hvcc_is_hvc1(h265: Encoded) -> None:
    track = h265.track
    assert hevc_parameter_sets_in_config(track.config)
    init = build_init_segment(track)
    entry = read_init_segment(init).tracks[0].sample_entry
    assert isinstance(entry, VisualSampleEntry)
    assert (entry.format, entry.width, entry.height) == ("hvc1", 320, 180)
    assert entry.config("hvcC") == track.config
    assert _pyav_stream(init) == (320, 180, 0, 0, track.config, "hevc")


def test_h265_without_parameter_sets_in_hvcc_is_hev1(h265: Encoded) -> None:
    bare = h265.track.config[:22] + b"\x00"  # same header, no NAL unit arrays
    assert not hevc_parameter_sets_in_config(bare)
    entry = read_init_segment(build_init_segment(replace(h265.track, config=bare))).tracks[0].sample_entry
    assert isinstance(entry, VisualSampleEntry)
    assert entry.format == "hev1"


def test_truncated_hvcc_arrays_are_rejected(h265: Encoded) -> None:
    with pytest.raises(BmffError):
        build_init_segment(replace(h265.track, config=h265.track.config[:40]))


def test_aac_init_segment_fields(aac: Encoded) -> None:
    track = replace(aac.track, bitrate_conf=128000)
    init = build_init_segment(track)
    t = read_init_segment(init).tracks[0]
    assert (t.tkhd.volume, t.tkhd.width, t.tkhd.height, t.mdhd.timescale) == (1.0, 0.0, 0.0, 48000)
    assert (t.hdlr.handler_type, t.hdlr.name) == ("soun", "SoundHandler")
    entry = t.sample_entry
    assert isinstance(entry, AudioSampleEntry)
    assert (entry.format, entry.data_reference_index, entry.channel_count, entry.sample_size,
            entry.sample_rate) == ("mp4a", 1, 2, 16, 48000)
    esds_box = next(b for b in entry.boxes if b.type == "esds")
    d = decode_esds(esds_box)
    assert (d.es_id, d.object_type, d.stream_type, d.buffer_size, d.max_bitrate, d.avg_bitrate,
            d.decoder_specific_info, d.sl_predefined) == (0, 0x40, 5, 0, 128000, 128000, track.config, 2)
    minf = find(parse_boxes(init), "moov/trak/mdia/minf")
    assert minf.child("smhd").payload == bytes(8)
    assert _pyav_stream(init) == (0, 0, 48000, 2, track.config, "aac")


def test_esds_bytes_match_hand_assembled_descriptors() -> None:
    expected = bytes.fromhex(
        "00000027" "65736473" "00000000"                # size 39, 'esds', version/flags
        "0319" "0000" "00"                              # ES_Descriptor (25 bytes): ES_ID 0, flags 0
        "0411" "40" "15" "000000" "0001f400" "0001f400"  # DecoderConfig (17): AAC, audio, buffer, max, avg
        "0502" "1190"                                   # DecoderSpecificInfo: the ASC
        "060102")                                       # SLConfig predefined 2
    assert esds(0x40, b"\x11\x90", 128000) == expected


def test_esds_descriptor_sizes_above_127_use_continuation_bytes() -> None:
    asc = bytes(range(200))
    data = esds(0x40, asc)
    assert b"\x05\x81\x48" + asc in data  # 200 = 1 * 128 + 72
    d = decode_esds(parse_boxes(data)[0])
    assert d.decoder_specific_info == asc


def test_opus_init_segment_converts_opus_head_to_dops(opus: Encoded) -> None:
    track = opus.track
    head = track.config
    assert head[:8] == b"OpusHead"
    channels, pre_skip, rate, gain, family = struct.unpack_from("<BHIhB", head, 9)
    init = build_init_segment(track)
    entry = read_init_segment(init).tracks[0].sample_entry
    assert isinstance(entry, AudioSampleEntry)
    assert (entry.format, entry.channel_count, entry.sample_rate) == ("Opus", 2, 48000)
    dops = decode_dops(next(b for b in entry.boxes if b.type == "dOps"))
    assert (dops.version, dops.output_channel_count, dops.pre_skip, dops.input_sample_rate, dops.output_gain,
            dops.channel_mapping_family, dops.channel_mapping_table) == (0, channels, pre_skip, rate, gain, 0, b"")
    assert pre_skip == 312 and channels == 2
    sample_rate, channel_count = _pyav_stream(init)[2:4]
    assert (sample_rate, channel_count) == (48000, 2)


def test_opus_head_with_mapping_table_keeps_the_table() -> None:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 6, 312, 48000, -256, 1) + bytes([4, 2, 0, 4, 1, 2, 3, 5])
    dops = opus_head_to_dops(head)
    assert dops == struct.pack(">BBHIhB", 0, 6, 312, 48000, -256, 1) + bytes([4, 2, 0, 4, 1, 2, 3, 5])
    with pytest.raises(BmffError):
        opus_head_to_dops(head[:-1])
    with pytest.raises(BmffError):
        opus_head_to_dops(b"OpusTags" + head[8:])


def test_opus_without_opus_head_gets_a_family_0_dops(opus: Encoded) -> None:
    track = replace(opus.track, config=b"", channels=1)
    entry = read_init_segment(build_init_segment(track)).tracks[0].sample_entry
    assert isinstance(entry, AudioSampleEntry)
    dops = decode_dops(next(b for b in entry.boxes if b.type == "dOps"))
    assert (entry.channel_count, dops.output_channel_count, dops.pre_skip, dops.channel_mapping_family) == (
        1, 1, 0, 0)
    with pytest.raises(BmffError):
        build_init_segment(replace(track, channels=6))


def test_mp3_init_segment_uses_mp4a_with_object_type_0x6b(mp3: Encoded) -> None:
    init = build_init_segment(mp3.track)
    entry = read_init_segment(init).tracks[0].sample_entry
    assert isinstance(entry, AudioSampleEntry)
    d = decode_esds(next(b for b in entry.boxes if b.type == "esds"))
    assert (entry.format, d.object_type, d.decoder_specific_info) == ("mp4a", 0x6B, b"")
    assert _pyav_stream(init)[2:] == (48000, 2, b"", "mp3float")


def test_multi_track_init_segment(h264_bframes: Encoded, aac: Encoded) -> None:
    video, audio = h264_bframes.track, replace(aac.track, id=2)
    init = build_init_segment_multi([video, audio])
    info = read_init_segment(init)
    assert info.mvhd.next_track_id == 3
    assert [(t.tkhd.track_id, t.hdlr.handler_type, t.mdhd.timescale) for t in info.tracks] == [
        (1, "vide", 15360), (2, "soun", 48000)]
    assert [t.trex.track_id for t in info.tracks if t.trex] == [1, 2]
    assert _pyav_stream(init, 0)[:2] == (320, 180)
    assert _pyav_stream(init, 1)[2:4] == (48000, 2)
    custom = read_init_segment(build_init_segment_multi([video, audio], [90000, 44100]))
    assert [t.mdhd.timescale for t in custom.tracks] == [90000, 44100]


def _track(**changes: object) -> Track:
    base = Track(id=1, kind=MediaKind.VIDEO, codec=Codec.H264, time_base=Fraction(1, 90000),
                 config=bytes.fromhex("0164001fffe100"), width=320, height=180)
    return replace(base, **changes)


@pytest.mark.parametrize("changes", [
    {"id": 0},                                                    # track_ID 0 is invalid
    {"codec": Codec.VP8},                                         # no sample entry for it
    {"config": bytes.fromhex("00000001674d401f")},                # Annex-B, not avcC
    {"config": b""},
    {"width": 70000},
    {"kind": MediaKind.DATA, "codec": Codec.ID3},
    {"kind": MediaKind.AUDIO, "codec": Codec.AAC, "config": b"", "sample_rate": 48000},  # no ASC
    {"kind": MediaKind.AUDIO, "codec": Codec.AAC, "config": b"\x11\x90", "sample_rate": 0},
])
def test_impossible_tracks_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(BmffError):
        build_init_segment(_track(**changes))


def test_multi_rejects_duplicate_ids_and_bad_timescales() -> None:
    with pytest.raises(BmffError):
        build_init_segment_multi([_track(), _track()])
    with pytest.raises(BmffError):
        build_init_segment_multi([])
    with pytest.raises(BmffError):
        build_init_segment_multi([_track()], [0])
    with pytest.raises(BmffError):
        build_init_segment_multi([_track()], [90000, 1000])
    assert read_init_segment(build_init_segment(_track())).tracks[0].sample_entry.config("avcC") == bytes.fromhex(
        "0164001fffe100")
