"""Turn a decoder configuration into a described Track (size, profile, level, rate, channels).

Every ingest protocol ends with "here is a codec and its config bytes"; this is the single place
that reads those bytes, so the API shows the same fields whichever protocol brought the stream.
"""

from __future__ import annotations

from fractions import Fraction

from kiln.media.formats.codecs import aac, h264, h265
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.opus import OPUS_RATE, parse_opus_head
from kiln.media.model import Codec, Track

LENGTH_SIZE_BYTE = {Codec.H264: 4, Codec.H265: 21}
"""Where avcC (ISO 14496-15 5.3.3.1) and hvcC (8.3.3.1) keep lengthSizeMinusOne, in the low two bits."""


def nal_length_size(codec: Codec, config: bytes) -> int:
    """The NAL length size (1, 2 or 4 bytes) an avcC/hvcC says its samples use; raises CodecConfigError."""
    try:
        if codec is Codec.H264:
            return h264.parse_avcc(config).nal_length_size
        return h265.parse_hvcc(config).nal_length_size
    except (ValueError, IndexError, KeyError, OverflowError) as exc:
        raise CodecConfigError(f"{codec.value} configuration could not be parsed: {exc}") from exc


def with_4_byte_lengths(codec: Codec, config: bytes) -> bytes:
    """``config`` (avcC/hvcC) saying 4-byte NAL lengths, as Kiln carries samples, every other byte kept: a record
    that says 1 or 2 must not go out with samples Kiln re-prefixed with 4 (players would misread every frame)."""
    at = LENGTH_SIZE_BYTE[codec]
    if len(config) <= at or config[at] & 0x03 == 0x03:
        return config
    return config[:at] + bytes([config[at] | 0x03]) + config[at + 1:]


def describe_track(track_id: int, codec: Codec, config: bytes, time_base: Fraction) -> Track:
    """A Track for ``codec`` filled from ``config``; raises CodecConfigError when it is malformed.

    Codecs without a parser here (VP8, MP3, ...) get a bare Track of the right kind.
    """
    track = Track(id=track_id, kind=codec.kind, codec=codec, time_base=time_base, config=bytes(config))
    try:
        if codec is Codec.H264:
            avc_sps = h264.parse_avcc(config).first_sps()
            track.width, track.height = avc_sps.width, avc_sps.height
            track.profile, track.level, track.codec_string = (avc_sps.profile_name, avc_sps.level_text,
                                                              avc_sps.codec_string)
        elif codec is Codec.H265:
            hevc_sps = h265.parse_hvcc(config).first_sps()
            track.width, track.height = hevc_sps.width, hevc_sps.height
            track.profile, track.level, track.codec_string = (hevc_sps.profile_name, hevc_sps.level_text,
                                                              hevc_sps.codec_string)
        elif codec is Codec.AAC:
            asc = aac.parse_asc(config)
            track.sample_rate, track.channels = asc.output_sample_rate, asc.output_channels
            track.samples_per_frame, track.codec_string = asc.samples_per_frame, asc.codec_string
            track.profile = asc.profile_name
        elif codec is Codec.OPUS:
            head = parse_opus_head(config)
            track.sample_rate, track.channels, track.codec_string = OPUS_RATE, head.channels, "opus"
    except CodecConfigError:
        raise
    except (ValueError, IndexError, KeyError, OverflowError) as exc:  # a parser bug must not escape as a crash
        raise CodecConfigError(f"{codec.value} configuration could not be parsed: {exc}") from exc
    return track
