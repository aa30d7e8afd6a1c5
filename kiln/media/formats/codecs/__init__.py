"""Codec configuration parsing: avcC/SPS, hvcC/SPS, AudioSpecificConfig/ADTS, OpusHead."""

from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError

__all__ = ["CodecConfigError", "describe_track"]
