"""Sample entries (the ``stsd`` children) for the codecs Kiln packages, with their config boxes.

- H.264: ``avc1`` + ``avcC`` (14496-15 §5.4), the record copied from ``Track.config`` as is.
- H.265: ``hvc1`` + ``hvcC`` (14496-15 §8.4) when the record holds VPS, SPS and PPS: players
  (Safari/AVFoundation in particular) only accept ``hvc1`` in HLS, and ``hvc1`` promises that the
  parameter sets are in the sample entry. A record without them can only be ``hev1`` (parameter
  sets in band), so that is what it gets.
- AAC and MP3: ``mp4a`` + ``esds`` (14496-14 §5.6, 14496-1 §7.2.6 descriptors).
- Opus: ``Opus`` + ``dOps`` (Opus in ISOBMFF §4.3), converted from the Ogg ``OpusHead``.
"""

from __future__ import annotations

import struct

from kiln.media.formats.bmff.boxes import box, full_box
from kiln.media.formats.bmff.errors import BmffError
from kiln.media.model import Codec, Track

# VisualSampleEntry after the 8-byte header: reserved(6) data_reference_index(2) pre_defined/reserved(16)
# width(2) height(2) horiz/vert resolution 72 dpi(8) reserved(4) frame_count(2) compressorname(32)
# depth(2) pre_defined(2) = 78 bytes.
_VISUAL = struct.Struct(">6xH16xHHIIIH32xHh")
# AudioSampleEntry: reserved(6) data_reference_index(2) reserved(8) channelcount(2) samplesize(2)
# pre_defined(2) reserved(2) samplerate 16.16(4) = 28 bytes.
_AUDIO = struct.Struct(">6xH8xHHHHI")
_DPI_72 = 0x00480000

OTI_AAC = 0x40    # Audio ISO/IEC 14496-3
OTI_MP3 = 0x6B    # Audio ISO/IEC 11172-3
_STREAM_TYPE_AUDIO = 0x05

_HEVC_PARAMETER_SETS = frozenset({32, 33, 34})  # VPS, SPS, PPS nal_unit_type


def sample_entry(track: Track) -> bytes:
    """The one sample entry of ``track``'s ``stsd``; :class:`BmffError` for codecs MP4 cannot carry here."""
    codec = track.codec
    if codec is Codec.H264:
        return _visual(b"avc1", track, box(b"avcC", _nal_config(track, min_size=7)))
    if codec is Codec.H265:
        config = _nal_config(track, min_size=23)
        entry_type = b"hvc1" if hevc_parameter_sets_in_config(config) else b"hev1"
        return _visual(entry_type, track, box(b"hvcC", config))
    if codec is Codec.AAC:
        if len(track.config) < 2:
            raise BmffError(f"AAC track {track.id} has no AudioSpecificConfig")
        return _audio(b"mp4a", track, _sample_rate(track), esds(OTI_AAC, track.config, track.bitrate_conf))
    if codec is Codec.MP3:
        return _audio(b"mp4a", track, _sample_rate(track), esds(OTI_MP3, b"", track.bitrate_conf))
    if codec is Codec.OPUS:
        dops = opus_head_to_dops(track.config) if track.config else _default_dops(track)
        return _audio(b"Opus", track, 48000, box(b"dOps", dops), channels=dops[1])
    raise BmffError(f"no ISO-BMFF sample entry for codec {codec.value} (track {track.id})")


def _nal_config(track: Track, *, min_size: int) -> bytes:
    config = track.config
    if len(config) < min_size or config[0] != 1:
        raise BmffError(f"{track.codec.value} track {track.id}: config is not a decoder configuration record "
                        f"(avcC/hvcC, version 1); Annex-B parameter sets must be converted first")
    return config


def hevc_parameter_sets_in_config(hvcc: bytes) -> bool:
    """Whether an hvcC record carries at least one VPS, SPS and PPS (which makes ``hvc1`` legal)."""
    found: set[int] = set()
    pos, end = 23, len(hvcc)
    try:
        for _ in range(hvcc[22]):
            nal_type = hvcc[pos] & 0x3F
            count = int.from_bytes(hvcc[pos + 1:pos + 3], "big")
            pos += 3
            for _ in range(count):
                length = int.from_bytes(hvcc[pos:pos + 2], "big")
                pos += 2 + length
                if pos > end:
                    raise BmffError("hvcC: NAL unit array runs past the end of the record")
            if count:
                found.add(nal_type)
    except IndexError as exc:
        raise BmffError("hvcC: truncated NAL unit arrays") from exc
    return _HEVC_PARAMETER_SETS.issubset(found)


def _visual(entry_type: bytes, track: Track, *config_boxes: bytes) -> bytes:
    if not 0 <= track.width <= 0xFFFF or not 0 <= track.height <= 0xFFFF:
        raise BmffError(f"track {track.id}: size {track.width}x{track.height} does not fit a sample entry")
    fixed = _VISUAL.pack(1, track.width, track.height, _DPI_72, _DPI_72, 0, 1, 0x0018, -1)
    return box(entry_type, fixed, *config_boxes)


def _sample_rate(track: Track) -> int:
    if track.sample_rate <= 0:
        raise BmffError(f"audio track {track.id} has no sample rate")
    return track.sample_rate


def _audio(entry_type: bytes, track: Track, sample_rate: int, *config_boxes: bytes, channels: int = 0) -> bytes:
    """An AudioSampleEntry. The 16.16 rate field cannot hold ≥ 65536 Hz; 0 is written then, and
    decoders take the rate from the codec configuration (the timescale still carries it). A track
    with an unknown channel count says stereo; AAC and Opus decoders follow their config instead."""
    channels = channels or track.channels or 2
    rate_field = sample_rate << 16 if sample_rate <= 0xFFFF else 0
    return box(entry_type, _AUDIO.pack(1, channels, 16, 0, 0, rate_field), *config_boxes)


def _descriptor(tag: int, *parts: bytes) -> bytes:
    """An MPEG-4 descriptor: tag, size in 7-bit groups (continuation bit 0x80), body."""
    body = b"".join(parts)
    size = len(body)
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    if len(groups) > 4:
        raise BmffError("MPEG-4 descriptor larger than 256 MiB")
    return bytes((tag, *reversed(groups))) + body


def esds(object_type: int, decoder_specific_info: bytes, bitrate: int = 0) -> bytes:
    """``esds``: ES_Descriptor → DecoderConfigDescriptor (+ DecoderSpecificInfo) + SLConfig (predefined 2).

    ES_ID is 0 as 14496-14 asks for stored streams; the buffer size is unknown to a live server, so 0.
    """
    bitrate = max(0, min(bitrate, 0xFFFFFFFF))
    dsi = _descriptor(0x05, decoder_specific_info) if decoder_specific_info else b""
    decoder_config = _descriptor(0x04, struct.pack(">BBBHII", object_type, _STREAM_TYPE_AUDIO << 2 | 1,
                                                   0, 0, bitrate, bitrate), dsi)
    sl_config = _descriptor(0x06, b"\x02")
    return full_box(b"esds", 0, 0, _descriptor(0x03, struct.pack(">HB", 0, 0), decoder_config, sl_config))


def opus_head_to_dops(opus_head: bytes) -> bytes:
    """The ``dOps`` payload for an Ogg ``OpusHead`` (RFC 7845 §5.1): same fields, big-endian, version 0."""
    if len(opus_head) < 19 or opus_head[:8] != b"OpusHead":
        raise BmffError("Opus config is not an OpusHead")
    channels, pre_skip, rate, gain, family = struct.unpack_from("<BHIhB", opus_head, 9)
    dops = struct.pack(">BBHIhB", 0, channels, pre_skip, rate, gain, family)
    if family == 0:
        return dops
    table = opus_head[19:21 + channels]
    if len(table) != 2 + channels:
        raise BmffError("OpusHead: channel mapping table is truncated")
    return dops + table


def _default_dops(track: Track) -> bytes:
    """``dOps`` for an Opus track that came without an OpusHead (e.g. from RTP): mapping family 0."""
    channels = track.channels or 2
    if channels > 2:
        raise BmffError(f"Opus track {track.id}: {channels} channels need an OpusHead with a mapping table")
    return struct.pack(">BBHIhB", 0, channels, 0, track.sample_rate or 48000, 0, 0)
