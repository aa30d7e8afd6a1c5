"""Opus identification header ("OpusHead", RFC 7845 §5.1): the channel count a track needs."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kiln.media.formats.codecs.errors import CodecConfigError

OPUS_RATE = 48000  # Opus always decodes at 48 kHz, whatever the input rate was


@dataclass(frozen=True, slots=True)
class OpusHead:
    channels: int
    pre_skip: int
    input_sample_rate: int
    output_gain: int
    mapping_family: int


def parse_opus_head(data: bytes | memoryview) -> OpusHead:
    data = bytes(data)
    if len(data) < 19 or not data.startswith(b"OpusHead"):
        raise CodecConfigError("not an OpusHead identification header")
    version, channels, pre_skip, rate, gain, family = struct.unpack_from("<BBHIhB", data, 8)
    if version >> 4 != 0:
        raise CodecConfigError(f"OpusHead version {version} is not supported")
    if channels == 0:
        raise CodecConfigError("OpusHead declares 0 channels")
    return OpusHead(channels, pre_skip, rate, gain, family)
