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
